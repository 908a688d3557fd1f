"""Shape and parameter arithmetic of convolution-style layers.

These are the course's reference formulas: checkers, widgets and the book all call them, and
tests compare them with real ``torch.nn`` layers.
"""

from __future__ import annotations

import math
from numbers import Integral

IntOrPair = int | tuple[int, int]


def _is_int(value: object) -> bool:
    """An integer of any kind (Python, NumPy, ...) but not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def _pair(value: IntOrPair, name: str) -> tuple[int, int]:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a pair of ints, not a bool")
    if _is_int(value):
        return int(value), int(value)
    if isinstance(value, tuple | list) and len(value) == 2 and all(map(_is_int, value)):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r} "
                    f"({type(value).__name__})")


def _count(value: object, name: str) -> int:
    """A positive integer argument as a Python int, or a clear error."""
    if not _is_int(value):
        raise TypeError(f"{name} must be a positive int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def _flag(value: object, name: str) -> bool:
    if value not in (True, False):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


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
    if isinstance(padding, str) and padding not in ("same", "valid"):
        raise ValueError(f"padding must be an int, a pair of ints, 'same' or 'valid', "
                         f"got {padding!r}")
    if padding == "same":
        if ss != (1, 1):
            raise ValueError("padding='same' needs stride 1 (PyTorch refuses it otherwise)")
        if min(ns + ks + ds) < 1:
            raise ValueError("sizes, kernel and dilation must be positive "
                             f"(got n={n!r}, kernel={kernel_size!r}, dilation={dilation!r})")
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
        raise ValueError(f"kernel_size must be positive, got {kernel_size!r}")
    c_in, c_out = _count(in_channels, "in_channels"), _count(out_channels, "out_channels")
    groups, bias = _count(groups, "groups"), _flag(bias, "bias")
    if c_in % groups or c_out % groups:
        raise ValueError(f"in_channels ({c_in}) and out_channels ({c_out}) must both be "
                         f"divisible by groups ({groups})")
    return kh * kw * (c_in // groups) * c_out + (c_out if bias else 0)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Number of learnable parameters of ``nn.Linear``: ``in*out + out``."""
    n_in, n_out = _count(in_features, "in_features"), _count(out_features, "out_features")
    return n_in * n_out + (n_out if _flag(bias, "bias") else 0)


def same_padding(kernel_size: int, dilation: int = 1) -> tuple[int, int]:
    """Padding (before, after) that keeps the size at stride 1, split as PyTorch splits it."""
    total = _count(dilation, "dilation") * (_count(kernel_size, "kernel_size") - 1)
    return total // 2, total - total // 2
