"""Shape and parameter arithmetic of convolution-style layers.

These are the course's reference formulas: checkers, widgets and the book all call them, and
tests compare them with real ``torch.nn`` layers.
"""

from __future__ import annotations

import math

IntOrPair = int | tuple[int, int]


def _pair(value: IntOrPair, name: str) -> tuple[int, int]:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a pair of ints, not a bool")
    if isinstance(value, int):
        return value, value
    if isinstance(value, tuple | list) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def _output_size_1d(n: int, k: int, p: int, s: int, d: int) -> int:
    if n < 1 or k < 1 or s < 1 or d < 1 or p < 0:
        raise ValueError("sizes, kernel, stride and dilation must be positive and padding >= 0 "
                         f"(got n={n}, kernel={k}, padding={p}, stride={s}, dilation={d})")
    span = d * (k - 1) + 1
    if span > n + 2 * p:
        raise ValueError(f"the kernel spans {span} pixels but the padded input has only "
                         f"{n + 2 * p}: no output position fits")
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
    if padding == "same":
        if ss != (1, 1):
            raise ValueError("padding='same' needs stride 1 (PyTorch refuses it otherwise)")
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
    if in_channels % groups or out_channels % groups:
        raise ValueError("in_channels and out_channels must both be divisible by groups")
    return kh * kw * (in_channels // groups) * out_channels + (out_channels if bias else 0)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Number of learnable parameters of ``nn.Linear``: ``in*out + out``."""
    return in_features * out_features + (out_features if bias else 0)


def same_padding(kernel_size: int, dilation: int = 1) -> tuple[int, int]:
    """Padding (before, after) that keeps the size at stride 1, split as PyTorch splits it."""
    total = dilation * (kernel_size - 1)
    return total // 2, total - total // 2
