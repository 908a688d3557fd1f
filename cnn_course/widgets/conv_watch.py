"""Watch a convolution: an explorer that computes a convolution of real pixels in the browser.

Unlike the other static explorers, this one does not look values up in tables. Its JavaScript
(``js/conv_watch.js``) runs the loops of Chapter 1 on a small patch of the course's photo, one
output value per step, and writes each sum out in full. What it needs is computed here: the
patch (from :func:`cnn_course.images.sample_photo`), the named kernels (from
:func:`cnn_course.widgets.conv_explorer.preset_kernel`, so there is one definition of them) and
the output size, or the reason there is none, for every setting (from
:func:`cnn_course.arith.conv_output_size`).
"""

from __future__ import annotations

import math

import traitlets

from cnn_course.messages import tr
from cnn_course.widgets.conv_explorer import PRESETS, preset_kernel
from cnn_course.widgets.frontend import CSS, JS, Explorer, esm, in_every_language
from cnn_course.widgets.static import output_size_or_reason

#: The named kernels offered (every preset of the notebook explorer except "custom").
WATCH_KERNELS: tuple[str, ...] = tuple(name for name in PRESETS if name != "custom")
WATCH_KERNEL_SIZES: tuple[int, ...] = (1, 3, 5)
WATCH_RANGES: dict[str, tuple[int, int]] = {  # control: (lowest, highest), as in Chapter 1's
    "padding": (0, 4), "stride": (1, 4), "dilation": (1, 3),
}
#: Where the input comes from: an 8x8 patch of the photo resized to 24x24 pixels, where the
#: face meets the blue background below the cap (edges in both directions, and colour).
WATCH_PATCH: dict[str, int] = {"photo_size": 24, "top": 5, "left": 13, "size": 8}


def photo_patch(gray: bool, photo_size: int = 24, top: int = 5, left: int = 13,
                size: int = 8) -> list[list[list[float]]]:
    """A ``size`` x ``size`` patch of :func:`sample_photo` (``photo_size`` pixels wide), as
    nested lists [channel][row][column] rounded to 2 decimals (what the explorer shows is
    exactly what it computes with). One channel if ``gray``, else three (red, green, blue)."""
    from cnn_course.images import sample_photo

    if not 0 <= top <= photo_size - size or not 0 <= left <= photo_size - size:
        raise ValueError(tr("a {size}x{size} patch at row {top}, column {left} does not fit in "
                            "a {photo_size}x{photo_size} photo", size=size, top=top, left=left,
                            photo_size=photo_size))
    photo = sample_photo(photo_size, gray=gray)[:, top:top + size, left:left + size]
    return photo.double().round(decimals=2).tolist()


def watch_presets() -> dict[str, dict[str, list[list[float]]]]:
    """``presets[name][str(k)]``: the named k x k kernel of ``preset_kernel``, as lists.

    With 3 input channels the explorer uses this kernel divided by 3 in every channel, so
    that the three slices add up to it (as the notebook explorer does)."""
    return {name: {str(k): preset_kernel(name, k).double().tolist() for k in WATCH_KERNEL_SIZES}
            for name in WATCH_KERNELS}


def watch_output_sizes(n: int) -> dict[str, int | str]:
    """Output size, or ``conv_output_size``'s reason there is none, of an ``n`` x ``n`` input
    for every kernel size, padding, stride and dilation the controls allow; keys ``"k,p,s,d"``.
    """
    (p0, p1), (s0, s1), (d0, d1) = (WATCH_RANGES[name]
                                    for name in ("padding", "stride", "dilation"))
    table: dict[str, int | str] = {}
    for k in WATCH_KERNEL_SIZES:
        for p in range(p0, p1 + 1):
            for s in range(s0, s1 + 1):
                for d in range(d0, d1 + 1):
                    table[f"{k},{p},{s},{d}"] = output_size_or_reason(n, k, p, s, d)
    return table


def check_watch_values(values: dict) -> None:
    """Raise a ``ValueError`` that names the problem if ``values`` is not a setting the
    explorer can show (the output size may still be missing: the explorer says why)."""
    if values.get("channels") not in (1, 3):
        raise ValueError(tr("channels must be 1 (gray) or 3 (colour), got {got!r}",
                            got=values.get("channels")))
    k = values.get("kernel_size")
    if k not in WATCH_KERNEL_SIZES:
        raise ValueError(tr("kernel_size must be one of {sizes}, got {got!r}",
                            sizes=WATCH_KERNEL_SIZES, got=k))
    for name, (low, high) in WATCH_RANGES.items():
        value = values.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(tr("{name} must be an int from {low} to {high}, got {got!r}",
                                name=name, low=low, high=high, got=value))
    bias = values.get("bias")
    if isinstance(bias, bool) or not isinstance(bias, int | float) or not math.isfinite(bias):
        raise ValueError(tr("bias must be a finite number, got {got!r}", got=bias))
    kernel = values.get("kernel")
    if kernel == "custom":
        weights = values.get("weights")
        shape = (values["channels"], k, k)
        try:
            ok = (len(weights) == shape[0]
                  and all(len(plane) == k and all(len(row) == k for row in plane)
                          for plane in weights)
                  and all(math.isfinite(float(w)) for plane in weights for row in plane
                          for w in row))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(tr("a custom kernel needs weights as nested lists of shape {shape} "
                                "(channels, rows, columns) of finite numbers, got {got!r}",
                                shape=shape, got=weights))
    elif kernel not in WATCH_KERNELS:
        raise ValueError(tr("kernel must be one of {names} or 'custom', got {got!r}",
                            names=", ".join(WATCH_KERNELS), got=kernel))
    if values.get("speed") not in ("slow", "normal", "fast"):
        raise ValueError(tr("speed must be 'slow', 'normal' or 'fast', got {got!r}",
                            got=values.get("speed")))


class ConvWatchExplorer(Explorer):
    """A convolution of a small patch of the photo, computed step by step in the browser.

    ``values`` holds the settings: ``channels`` (1 or 3), ``kernel`` (a name of
    :data:`WATCH_KERNELS`, or ``"custom"`` with the weights in ``weights``, [channel][row]
    [column]), ``kernel_size``, ``padding``, ``stride``, ``dilation``, ``bias`` and ``speed``.
    """

    _esm = esm("conv_watch.js")
    _css = CSS.read_text() + (JS / "conv_watch.css").read_text()
    images = traitlets.Dict().tag(sync=True)        # {"1": gray patch, "3": colour patch}
    patch = traitlets.Dict(WATCH_PATCH).tag(sync=True)
    presets = traitlets.Dict().tag(sync=True)
    kernel_sizes = traitlets.List(list(WATCH_KERNEL_SIZES)).tag(sync=True)
    ranges = traitlets.Dict({k: list(v) for k, v in WATCH_RANGES.items()}).tag(sync=True)
    output_sizes = traitlets.Dict().tag(sync=True)
    reasons = traitlets.Dict().tag(sync=True)   # language -> "k,p,s,d" -> why there is no output
    values = traitlets.Dict({"channels": 1, "kernel": "vertical edge", "weights": None,
                             "kernel_size": 3, "padding": 0, "stride": 1, "dilation": 1,
                             "bias": 0.0, "speed": "normal"}).tag(sync=True)

    @traitlets.validate("values")
    def _check_values(self, proposal: dict) -> dict:
        values = {**self.values, **proposal["value"]}
        check_watch_values(values)
        return values

    def __init__(self, **kwargs) -> None:
        patch = WATCH_PATCH
        images = {"1": photo_patch(True, **patch), "3": photo_patch(False, **patch)}
        reasons = in_every_language(lambda: {key: reason for key, reason
                                             in watch_output_sizes(patch["size"]).items()
                                             if isinstance(reason, str)})
        super().__init__(images=images, presets=watch_presets(),
                         output_sizes=watch_output_sizes(patch["size"]), reasons=reasons,
                         **kwargs)
