"""Shape and parameter arithmetic of convolution-style layers, and the layer-spec format.

These are the course's reference formulas: checkers, widgets and the book all call them, and
tests compare them with real ``torch.nn`` layers.

Chapters 3, 4 and 8 describe a stack of convolution and pooling layers as a list of *layer
specs*, one tuple per layer, first layer first:

- ``("conv", out_channels, kernel_size, stride, padding)`` is
  ``nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)``, its ``in_channels``
  those of the layer before;
- ``("pool", kernel_size, stride, padding)`` is ``nn.MaxPool2d(kernel_size, stride, padding)``.

Every number is an int: ``out_channels``, ``kernel_size`` and ``stride`` at least 1, ``padding``
at least 0 (and, for a pool, at most half the kernel size, as PyTorch requires). Both kinds map
a size ``n`` to ``(n + 2 * padding - kernel_size) // stride + 1`` along each axis; a conv sets
the channels to ``out_channels``, a pool keeps them. :func:`check_specs` validates a list,
:func:`layers_from_specs` builds the real layers and :func:`spec_output_shapes` measures what
they output.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from numbers import Integral

import torch
from torch import nn

from cnn_course.messages import tr

IntOrPair = int | tuple[int, int]


def _is_int(value: object) -> bool:
    """An integer of any kind (Python, NumPy, ...) but not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def _pair(value: IntOrPair, name: str) -> tuple[int, int]:
    if isinstance(value, bool):
        raise TypeError(tr("{name} must be an int or a pair of ints, not a bool", name=name))
    if _is_int(value):
        return int(value), int(value)
    if isinstance(value, tuple | list) and len(value) == 2 and all(map(_is_int, value)):
        return int(value[0]), int(value[1])
    raise TypeError(tr("{name} must be an int or a pair of ints, got {value!r} ({type_name})",
                       name=name, value=value, type_name=type(value).__name__))


def _count(value: object, name: str) -> int:
    """A positive integer argument as a Python int, or a clear error."""
    if not _is_int(value):
        raise TypeError(tr("{name} must be a positive int, got {value!r} ({type_name})",
                           name=name, value=value, type_name=type(value).__name__))
    if value < 1:
        raise ValueError(tr("{name} must be a positive int, got {value}", name=name, value=value))
    return int(value)


def _flag(value: object, name: str) -> bool:
    if value not in (True, False):
        raise TypeError(tr("{name} must be True or False, got {value!r}", name=name, value=value))
    return bool(value)


def _output_size_1d(n: int, k: int, p: int, s: int, d: int) -> int:
    if n < 1 or k < 1 or s < 1 or d < 1 or p < 0:
        raise ValueError(tr("sizes, kernel, stride and dilation must be positive and padding >= 0 "
                            "(got n={n}, kernel={k}, padding={p}, stride={s}, dilation={d})",
                            n=n, k=k, p=p, s=s, d=d))
    span = d * (k - 1) + 1
    if span > n + 2 * p:
        raise ValueError(tr("the kernel spans {span} pixels but the padded input has only "
                            "{padded}: no output position fits", span=span, padded=n + 2 * p))
    return math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1


def conv_output_size(n: IntOrPair, kernel_size: IntOrPair, padding: IntOrPair | str = 0,
                     stride: IntOrPair = 1, dilation: IntOrPair = 1) -> int | tuple[int, int]:
    """Output size of a convolution (or pooling) along one or two axes.

    ``o = floor((n + 2p - d(k-1) - 1) / s) + 1``. ``padding='same'`` keeps ``o = n`` (stride 1
    only, as in PyTorch); ``'valid'`` means no padding. Returns an int for int ``n`` and a pair
    when any argument is a pair.
    """
    pairs = any(isinstance(v, tuple | list) for v in (n, kernel_size, padding, stride, dilation))
    ns, ks = _pair(n, "n"), _pair(kernel_size, "kernel_size")
    ss, ds = _pair(stride, "stride"), _pair(dilation, "dilation")
    if isinstance(padding, str) and padding not in ("same", "valid"):
        raise ValueError(tr("padding must be an int, a pair of ints, 'same' or 'valid', "
                            "got {padding!r}", padding=padding))
    if padding == "same":
        if ss != (1, 1):
            raise ValueError(tr("padding='same' needs stride 1 (PyTorch refuses it otherwise)"))
        if min(ns + ks + ds) < 1:
            raise ValueError(tr("sizes, kernel and dilation must be positive "
                                "(got n={n!r}, kernel={kernel!r}, dilation={dilation!r})",
                                n=n, kernel=kernel_size, dilation=dilation))
        out = ns
    else:
        ps = (0, 0) if padding == "valid" else _pair(padding, "padding")
        out = tuple(_output_size_1d(*args) for args in zip(ns, ks, ps, ss, ds, strict=True))
    return out if pairs else out[0]


def conv_params(in_channels: int, out_channels: int, kernel_size: IntOrPair,
                bias: bool = True, groups: int = 1) -> int:
    """Number of learnable parameters of ``nn.Conv2d``: ``k*k*c_in*c_out + c_out``.

    Each output channel has one kernel spanning all ``c_in / groups`` input channels, plus
    one bias.
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    if kh < 1 or kw < 1:
        raise ValueError(tr("kernel_size must be positive, got {kernel_size!r}",
                            kernel_size=kernel_size))
    c_in, c_out = _count(in_channels, "in_channels"), _count(out_channels, "out_channels")
    groups, bias = _count(groups, "groups"), _flag(bias, "bias")
    if c_in % groups or c_out % groups:
        raise ValueError(tr("in_channels ({c_in}) and out_channels ({c_out}) must both be "
                            "divisible by groups ({groups})", c_in=c_in, c_out=c_out,
                            groups=groups))
    return kh * kw * (c_in // groups) * c_out + (c_out if bias else 0)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Number of learnable parameters of ``nn.Linear``: ``in*out + out``."""
    n_in, n_out = _count(in_features, "in_features"), _count(out_features, "out_features")
    return n_in * n_out + (n_out if _flag(bias, "bias") else 0)


def same_padding(kernel_size: int, dilation: int = 1) -> tuple[int, int]:
    """Padding (before, after) that keeps the size at stride 1, split as PyTorch splits it."""
    total = _count(dilation, "dilation") * (_count(kernel_size, "kernel_size") - 1)
    return total // 2, total - total // 2


# ---- layer specs: the format is described in the module's docstring -------------------------

ConvSpec = tuple[str, int, int, int, int]   # ("conv", out_channels, kernel_size, stride, padding)
PoolSpec = tuple[str, int, int, int]        # ("pool", kernel_size, stride, padding)
LayerSpec = ConvSpec | PoolSpec

SPEC_FORMATS = {"conv": '("conv", out_channels, kernel_size, stride, padding)',
                "pool": '("pool", kernel_size, stride, padding)'}
_SPEC_FIELDS = {"conv": ("out_channels", "kernel_size", "stride", "padding"),
                "pool": ("kernel_size", "stride", "padding")}


def check_spec(spec: object) -> LayerSpec:
    """One layer spec as a tuple of its kind and Python ints, or a ``ValueError`` naming it."""
    kind = spec[0] if isinstance(spec, tuple | list) and spec else None
    if not isinstance(kind, str) or kind not in SPEC_FORMATS:
        raise ValueError(tr("layer spec {spec!r} is neither {conv} nor {pool}", spec=spec,
                            conv=SPEC_FORMATS["conv"], pool=SPEC_FORMATS["pool"]))
    values = spec[1:]
    if len(values) != len(_SPEC_FIELDS[kind]):
        raise ValueError(tr("{kind} spec {spec!r} has {count} entries; a {kind} spec is "
                            "{format}, {wanted} entries", kind=kind, spec=spec, count=len(spec),
                            format=SPEC_FORMATS[kind], wanted=len(_SPEC_FIELDS[kind]) + 1))
    for name, value in zip(_SPEC_FIELDS[kind], values, strict=True):
        lowest = 0 if name == "padding" else 1
        if not _is_int(value) or value < lowest:
            raise ValueError(tr("{kind} spec {spec!r}: {name} must be an int of at least "
                                "{lowest}, got {value!r}", kind=kind, spec=spec, name=name,
                                lowest=lowest, value=value))
    checked = (kind, *(int(v) for v in values))
    if kind == "pool" and 2 * checked[3] > checked[1]:
        raise ValueError(tr("pool spec {spec!r}: padding {padding} is more than half the kernel "
                            "size {kernel}, which nn.MaxPool2d refuses", spec=spec,
                            padding=checked[3], kernel=checked[1]))
    return checked


def check_specs(specs: Iterable[object]) -> list[LayerSpec]:
    """Every spec of a list checked by :func:`check_spec`; the error also gives its position."""
    if isinstance(specs, str | bytes) or not isinstance(specs, Iterable):
        raise ValueError(tr("layer specs must be a list of tuples, got {specs!r}", specs=specs))
    checked = []
    for index, spec in enumerate(specs):
        try:
            checked.append(check_spec(spec))
        except ValueError as error:
            raise ValueError(tr("layer {index}: {error}", index=index, error=error)) from None
    return checked


def layers_from_specs(in_channels: int, specs: Iterable[LayerSpec]) -> nn.Sequential:
    """The real layers that ``specs`` describe: ``nn.Conv2d`` for each conv spec (the first one
    with ``in_channels`` inputs) and ``nn.MaxPool2d`` for each pool spec, in order.

    The result maps [N, in_channels, H, W] to [N, C_out, H_out, W_out].
    """
    channels = _count(in_channels, "in_channels")
    layers: list[nn.Module] = []
    for spec in check_specs(specs):
        if spec[0] == "conv":
            _, out_channels, kernel_size, stride, padding = spec
            layers.append(nn.Conv2d(channels, out_channels, kernel_size, stride, padding))
            channels = out_channels
        else:
            _, kernel_size, stride, padding = spec
            layers.append(nn.MaxPool2d(kernel_size, stride, padding))
    return nn.Sequential(*layers)


def spec_output_shapes(input_shape: Sequence[int], specs: Iterable[LayerSpec]
                       ) -> list[tuple[int, int, int]]:
    """(C, H, W) after each layer of ``specs``, measured on the real layers.

    ``input_shape`` is one image's (C, H, W). One zero image [1, C, H, W] runs through
    :func:`layers_from_specs`; the global random state is left as it was. A layer whose input
    is too small for it raises a ``ValueError`` that names it.
    """
    shape = tuple(input_shape) if isinstance(input_shape, tuple | list) else ()
    if len(shape) != 3 or not all(_is_int(v) and v >= 1 for v in shape):
        raise ValueError(tr("input_shape must be (C, H, W), three positive ints, "
                            "got {input_shape!r}", input_shape=input_shape))
    return list(_measured_shapes(tuple(int(v) for v in shape), tuple(check_specs(specs))))


@functools.lru_cache(maxsize=128)
def _measured_shapes(input_shape: tuple[int, int, int], specs: tuple[LayerSpec, ...]
                     ) -> tuple[tuple[int, int, int], ...]:
    shapes = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():  # layer init draws random numbers
        x = torch.zeros(1, *input_shape)
        for index, (spec, layer) in enumerate(
                zip(specs, layers_from_specs(input_shape[0], specs), strict=True)):
            try:
                x = layer(x)
            except RuntimeError as error:
                height, width = x.shape[-2:]
                reason = str(error).strip().splitlines()[0]
                raise ValueError(tr("layer {index} {spec!r} does not fit its {height}x{width} "
                                    "input (PyTorch: {reason})", index=index, spec=spec,
                                    height=height, width=width, reason=reason)) from None
            shapes.append(tuple(x.shape[1:]))
    return tuple(shapes)
