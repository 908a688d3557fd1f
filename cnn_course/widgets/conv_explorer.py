"""The kernel / stride / padding explorer of Chapter 1.

Every number it shows comes from :mod:`cnn_course.arith`; the feature map comes from
``F.conv2d`` on a real photo, and its shape is checked against the formula.
"""

from __future__ import annotations

import html

import ipywidgets as W
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import display

from cnn_course.arith import conv_output_size, conv_params, same_padding
from cnn_course.figure_translation import figure_tr, set_title
from cnn_course.images import sample_photo
from cnn_course.messages import N_, tr
from cnn_course.plots import draw_conv_grid

PRESETS = (N_("identity"), N_("vertical edge"), N_("horizontal edge"), N_("blur"), N_("sharpen"),
           N_("custom"))


def preset_kernel(name: str, k: int) -> torch.Tensor:
    """A k x k kernel for a named preset (``custom`` is not a preset: parse it instead)."""
    identity = torch.zeros(k, k)
    identity[k // 2, k // 2] = 1.0
    if name == "identity":
        return identity
    if name in ("vertical edge", "horizontal edge"):
        kernel = torch.zeros(k, k)
        if k > 1:
            kernel[:, 0], kernel[:, -1] = 1.0, -1.0
        return kernel if name == "vertical edge" else kernel.T.contiguous()
    if name == "blur":
        return torch.full((k, k), 1.0 / (k * k))
    if name == "sharpen":
        return 2 * identity - torch.full((k, k), 1.0 / (k * k))
    raise ValueError(tr("unknown preset {name!r}; choose one of {names}", name=name,
                        names=", ".join(PRESETS)))


def parse_kernel(text: str) -> torch.Tensor:
    """Parse rows separated by ';' and values by ',' or spaces, e.g. ``1,0,-1; 2,0,-2; 1,0,-1``."""
    rows = [row.replace(",", " ").split() for row in text.split(";") if row.strip()]
    if not rows:
        raise ValueError(tr("type the kernel's rows separated by ';', e.g. 1,0,-1; 2,0,-2; "
                            "1,0,-1"))
    if len({len(row) for row in rows}) != 1 or len(rows) != len(rows[0]):
        raise ValueError(tr("the custom kernel must be square; got {count} rows of lengths "
                            "{lengths}", count=len(rows), lengths=[len(row) for row in rows]))
    try:
        kernel = torch.tensor([[float(v) for v in row] for row in rows])
    except ValueError:
        raise ValueError(tr("could not read every value of {text!r} as a number",
                            text=text)) from None
    if not torch.isfinite(kernel).all():
        raise ValueError(tr("every value of the custom kernel must be a finite number; {text!r} "
                            "holds nan or inf", text=text))
    return kernel


class ConvExplorer:
    """Controls for a Conv2d layer, its arithmetic, and its effect on a real photo.

    ``explorer.controls[name].value = ...`` drives it from code; ``explorer.summary.value``
    holds the displayed text and ``explorer.last_feature_map`` the latest ``F.conv2d`` output.
    """

    def __init__(self, photo_size: int = 64) -> None:
        self.photo = sample_photo(photo_size)            # [1, H, W] in [0, 1]
        slider = dict(continuous_update=False, style={"description_width": "110px"})
        self.controls: dict[str, W.ValueWidget] = {
            "n": W.IntSlider(7, min=3, max=16, description=tr("input size n"), **slider),
            "kernel_size": W.IntSlider(3, min=1, max=7, description=tr("kernel k"), **slider),
            "padding": W.IntSlider(0, min=0, max=4, description=tr("padding p"), **slider),
            "same": W.Checkbox(False, description="padding='same'", indent=False),
            "stride": W.IntSlider(1, min=1, max=4, description=tr("stride s"), **slider),
            "dilation": W.IntSlider(1, min=1, max=3, description=tr("dilation d"), **slider),
            "in_channels": W.IntSlider(1, min=1, max=8, description="in_channels", **slider),
            "out_channels": W.IntSlider(1, min=1, max=64, description="out_channels", **slider),
            "preset": W.Dropdown(options=[(tr(name), name) for name in PRESETS],
                                 value="vertical edge", description=tr("kernel"),
                                 style={"description_width": "110px"}),
            "custom": W.Text("1,0,-1; 2,0,-2; 1,0,-1", description=tr("custom values"),
                             style={"description_width": "110px"}),
            "out_row": W.IntSlider(0, min=0, max=4, description=tr("output row"), **slider),
            "out_col": W.IntSlider(0, min=0, max=4, description=tr("output column"), **slider),
        }
        self.summary = W.HTML()
        self.grid_view = W.Output()
        self.feature_view = W.Output()
        self.last_feature_map: torch.Tensor | None = None
        self.error: str | None = None
        self._updating = False
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        c = self.controls
        self.widget = W.VBox([
            W.HBox([W.VBox([c["n"], c["kernel_size"], c["padding"], c["same"], c["stride"],
                            c["dilation"]]),
                    W.VBox([c["in_channels"], c["out_channels"], c["preset"], c["custom"],
                            c["out_row"], c["out_col"]])]),
            self.summary,
            W.HBox([self.grid_view, self.feature_view]),
        ])
        self.update()

    def _ipython_display_(self) -> None:
        display(self.widget)

    def _on_change(self, change: dict) -> None:
        if not self._updating:  # lowering a slider's max inside update() changes its value
            self.update()

    def _kernel(self, k: int) -> torch.Tensor:
        preset = self.controls["preset"].value
        if preset != "custom":
            return preset_kernel(preset, k)
        kernel = parse_kernel(self.controls["custom"].value)
        if kernel.shape[0] != k:
            raise ValueError(tr("the custom kernel is {k}x{k}; set kernel k to {k}",
                                k=kernel.shape[0]))
        return kernel

    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def update(self) -> None:
        """Recompute everything from the controls; a bad combination shows a plain message."""
        v = self.values()
        n, k, s, d = v["n"], v["kernel_size"], v["stride"], v["dilation"]
        padding = "same" if v["same"] else v["padding"]
        try:
            o = conv_output_size(n, k, padding=padding, stride=s, dilation=d)
            kernel = self._kernel(k)
        except (ValueError, TypeError) as problem:
            self._show_problem(str(problem))
            return
        self.error = None
        # (before, after): 'same' splits k - 1 as PyTorch does, the odd extra one after
        p = (v["padding"],) * 2 if padding != "same" else same_padding(k, d)
        params = conv_params(v["in_channels"], v["out_channels"], k)
        if padding == "same":
            if p[0] == p[1]:
                formula = tr("padding='same' keeps the size at stride 1: o = n = {o}; it pads "
                             "{before} before and {after} after", o=f"<b>{o}</b>",
                             before=p[0], after=p[1])
            else:
                formula = tr("padding='same' keeps the size at stride 1: o = n = {o}; it pads "
                             "{before} before and {after} after (the total d(k−1) is odd, so "
                             "the padding cannot be split evenly; PyTorch puts the extra row "
                             "and column after)", o=f"<b>{o}</b>", before=p[0], after=p[1])
        else:
            formula = (f"o = ⌊(n + 2p − d(k−1) − 1) / s⌋ + 1 = "
                       f"⌊({n} + 2·{p[0]} − {d}·({k}−1) − 1) / {s}⌋ + 1 = <b>{o}</b>")
        ci, co = v["in_channels"], v["out_channels"]
        shape = tr("output: {c} × {o} × {o} (channels × height × width)", c=co, o=o)
        self.summary.value = (
            f"<div class='conv-explorer-summary'>{formula}<br>{shape}<br>"
            f"{tr('parameters')} = k·k·c_in·c_out + c_out = "
            f"{k}·{k}·{ci}·{co} + {co} = <b>{params:,}</b></div>")
        self._updating = True
        try:
            for name in ("out_row", "out_col"):
                self.controls[name].max = o - 1
        finally:
            self._updating = False
        self._draw(n, k, p, s, d, padding, kernel)

    def _show_problem(self, message: str) -> None:
        self.error = message
        self.last_feature_map = None
        self.summary.value = (f"<div class='conv-explorer-problem'><b>"
                              f"{tr('This combination does not work:')}</b> "
                              f"{html.escape(message)}</div>")
        self.grid_view.clear_output()
        self.feature_view.clear_output()

    def _draw(self, n: int, k: int, p: tuple[int, int], s: int, d: int, padding,
              kernel: torch.Tensor) -> None:
        v = self.values()
        c_in = v["in_channels"]
        photo = self.photo.expand(c_in, -1, -1).unsqueeze(0)        # [1, c_in, H, W]
        weight = (kernel / c_in).expand(1, c_in, k, k)                # sums to the kernel
        # Pad explicitly, (before, after) on each axis: the same zeros as padding='same' (and
        # without the warning PyTorch prints for an even 'same' kernel).
        padded = F.pad(photo, (p[0], p[1], p[0], p[1]))
        self.last_feature_map = F.conv2d(padded, weight, stride=s, dilation=d)
        expected = conv_output_size(photo.shape[-1], k, padding=padding, stride=s, dilation=d)
        assert self.last_feature_map.shape[-1] == expected, "formula and F.conv2d disagree"
        self.grid_view.clear_output(wait=True)
        with self.grid_view:
            fig, ax = plt.subplots(figsize=(3.6, 3.6))
            draw_conv_grid(ax, n, k, p, s, d, v["out_row"], v["out_col"])
            set_title(ax, figure_tr("padded input {size}x{size} (grey = zero padding); kernel at "
                                    "output ({row}, {column})", size=p[0] + n + p[1],
                                    row=v["out_row"], column=v["out_col"]), fontsize=9)
            display(fig)
            plt.close(fig)
        self.feature_view.clear_output(wait=True)
        with self.feature_view:
            fig, axes = plt.subplots(1, 2, figsize=(6, 3.2))
            axes[0].imshow(self.photo[0].numpy(), cmap="gray")
            set_title(axes[0], figure_tr("photo {n}×{n}", n=self.photo.shape[-1]), fontsize=9)
            feature = self.last_feature_map[0, 0]
            limit = float(feature.abs().max()) or 1.0
            axes[1].imshow(feature.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
            set_title(axes[1], figure_tr("F.conv2d output {height}×{width}",
                                         height=feature.shape[0], width=feature.shape[1]),
                      fontsize=9)
            for ax in axes:
                ax.axis("off")
            fig.tight_layout()
            display(fig)
            plt.close(fig)


def explore_convolution() -> ConvExplorer:
    """Show the explorer in a notebook."""
    return ConvExplorer()
