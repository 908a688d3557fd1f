"""Checkers for Chapter 3: pooling.

Each ``check_*`` function prints one verdict line; each ``*_cases`` function lists the cases,
so that a grader can run them with other seeds (``hidden=True``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from cnn_course.arith import SPEC_FORMATS, LayerSpec, spec_output_shapes
from cnn_course.checks.core import (
    Case,
    CaseFailed,
    Exercise,
    Exercises,
    as_tensor,
    case_seed,
    expect_close,
    expect_shape,
    forbid,
    report,
)
from cnn_course.messages import N_, tr, translated

PoolFn = Callable[..., torch.Tensor]
OMIT = object()  # the case calls the learner's function without a stride argument

# (description, input shape, kernel, stride or OMIT, padding, all-negative input)
_POOL_CONFIGS = [
    (N_("one 4x4 channel"), (1, 1, 4, 4), 2, 2, 0, False),
    (N_("stride left out (it defaults to the kernel size)"), (1, 1, 6, 6), 2, OMIT, 0, False),
    (N_("overlapping windows"), (1, 1, 5, 5), 3, 1, 0, False),
    (N_("the stride does not divide evenly"), (1, 1, 7, 7), 2, 2, 0, False),
    (N_("batch of 2, 3 channels"), (2, 3, 6, 6), 2, 2, 0, False),
    (N_("non-square input"), (1, 2, 6, 9), 3, 2, 0, False),
    (N_("a stride larger than the kernel leaves gaps"), (1, 1, 8, 7), 2, 3, 0, False),
    (N_("padding on an all-negative input"), (1, 2, 5, 5), 3, 2, 1, True),
    (N_("batch, channels, non-square input and padding"), (3, 4, 9, 6), 3, 2, 1, False),
    (N_("stride left out, padding, all-negative input"), (2, 2, 7, 8), 3, OMIT, 1, True),
]

_POOL_FUNCTIONS = ("max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "adaptive_max_pool2d",
                   "adaptive_avg_pool2d", "lp_pool2d", "fractional_max_pool2d")


_BUILTIN_POOLING = [(owner, name) for name in _POOL_FUNCTIONS for owner in (F, torch)]
_AUTOGRAD = [(torch.autograd, "backward"), (torch.autograd, "grad")]
_NO_BUILTIN_POOLING = N_("your function called PyTorch's built-in pooling; the exercise is to "
                         "compute it yourself")


def _make_input(shape: tuple[int, ...], negative: bool, generator: torch.Generator
                ) -> torch.Tensor:
    x = torch.randn(shape, generator=generator)
    return -(x.abs() + 0.1) if negative else x


def _random_configs(generator: torch.Generator, count: int) -> list[tuple]:
    """Extra cases for grading: random shapes, kernels, strides and legal paddings."""
    configs = []
    while len(configs) < count:
        kernel, stride = (int(v) for v in torch.randint(1, 5, (2,), generator=generator))
        padding = int(torch.randint(0, kernel // 2 + 1, (1,), generator=generator))
        n, c, h, w = (int(v) for v in torch.randint(1, 4, (4,), generator=generator))
        h, w = h + kernel + 3, w + kernel + 5
        negative = bool(torch.rand(1, generator=generator) < 0.3)
        configs.append((N_("random case"), (n, c, h, w), kernel, stride, padding, negative))
    return configs


def _pool_mistakes(kind: str, x: torch.Tensor, kernel: int, stride: int, padding: int,
                   stride_given: bool) -> list[tuple[str, torch.Tensor]]:
    """Outputs of plausible wrong answers, each with the explanation of the mistake."""
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    other = F.avg_pool2d if kind == "max" else F.max_pool2d
    mistakes: list[tuple[str, torch.Tensor]] = []
    if stride != 1:
        if stride_given:
            text = tr("your output is what stride 1 gives, but stride={stride} was asked for: "
                      "window (i, j) starts at row i*stride, column j*stride", stride=stride)
        else:
            text = tr("called without a stride, your function used stride 1; stride=None means "
                      "stride = kernel_size, as in PyTorch")
        mistakes.append((text, pool(x, kernel, 1, padding)))
    if stride_given and stride != kernel:
        mistakes.append((tr("your output is what stride = kernel_size = {kernel} gives, but "
                            "stride={stride} was asked for: kernel_size is only the default, "
                            "used when stride is None", kernel=kernel, stride=stride),
                         pool(x, kernel, kernel, padding)))
    ceil = pool(x, kernel, stride, padding, ceil_mode=True)
    if ceil.shape != pool(x, kernel, stride, padding).shape:
        mistakes.append((tr("your output has an extra row or column: when the windows do not "
                            "fit evenly, the last partial window is dropped (the size rounds "
                            "down; only ceil_mode=True keeps it)"), ceil))
    if padding:
        mistakes.append((tr("your output ignores the padding: add `padding` rows and columns "
                            "on every side before sliding the window"), pool(x, kernel, stride)))
    if kind == "max":
        if padding:
            zero_padded = F.pad(x, (padding,) * 4)
            mistakes.append((tr("you padded with zeros, so on a negative input a padded zero "
                                "wins the max; max pooling pads with -inf, so that padding "
                                "never wins (F.pad(x, ..., value=float('-inf')))"),
                             F.max_pool2d(zero_padded, kernel, stride)))
        mistakes.append((tr("your output is each window's average; max pooling keeps the "
                            "largest value"), F.avg_pool2d(x, kernel, stride, padding)))
    else:
        if padding:
            mistakes.append((tr("you divided each window by the number of real pixels in it; "
                                "F.avg_pool2d counts the padded zeros by default "
                                "(count_include_pad=True), so every window is divided by "
                                "kernel_size**2"), F.avg_pool2d(x, kernel, stride, padding,
                                                                count_include_pad=False)))
        mistakes.append((tr("you summed each window but did not divide by kernel_size**2"),
                         F.avg_pool2d(x, kernel, stride, padding) * kernel * kernel))
        mistakes.append((tr("your output is each window's maximum; average pooling takes the "
                            "mean"), other(x, kernel, stride, padding)))
    return mistakes


def _diagnose(got: torch.Tensor, mistakes: list[tuple[str, torch.Tensor]]) -> str:
    """The explanation of the first mistake whose output equals ``got``, or ''."""
    got64 = got.detach().to("cpu", torch.float64)
    for explanation, candidate in mistakes:
        if candidate.shape == got.shape and torch.allclose(got64, candidate.double(),
                                                           atol=1e-4, rtol=1e-4):
            return explanation
    return ""


def _pool_cases(kind: str, fn: PoolFn, hidden: bool) -> list[Case]:
    generator = torch.Generator().manual_seed(case_seed(3, hidden, f"{kind}_pool2d"))
    configs = list(_POOL_CONFIGS) + (_random_configs(generator, 12) if hidden else [])
    reference = F.max_pool2d if kind == "max" else F.avg_pool2d
    cases = []
    for description, shape, kernel, stride, padding, negative in configs:
        x = _make_input(shape, negative, generator)
        stride_given = stride is not OMIT
        effective = stride if stride_given else kernel

        def run(x=x, kernel=kernel, stride=stride, padding=padding, stride_given=stride_given,
                effective=effective) -> None:
            with forbid(_BUILTIN_POOLING, translated(_NO_BUILTIN_POOLING)):
                if stride_given:
                    got = fn(x.clone(), kernel, stride=stride, padding=padding)
                else:
                    got = fn(x.clone(), kernel, padding=padding)
            got = as_tensor(got, N_("the output"))
            expected = reference(x, kernel, effective, padding)
            try:
                expect_shape(got, tuple(expected.shape))
                expect_close(got, expected)
            except CaseFailed as failure:
                mistakes = _pool_mistakes(kind, x, kernel, effective, padding, stride_given)
                explanation = _diagnose(got, mistakes)
                raise CaseFailed(explanation or str(failure), diagnosed=bool(explanation)) \
                    from None

        stride_text = tr("stride {stride}", stride=stride) if stride_given else \
            tr("no stride given")
        cases.append(Case(tr("{description}: input {shape}, kernel {kernel}, {stride_text}, "
                             "padding {padding}", description=translated(description),
                             shape=tuple(shape), kernel=kernel, stride_text=stride_text,
                             padding=padding), run))
    return cases


def max_pool2d_cases(fn: PoolFn, hidden: bool = False) -> list[Case]:
    return _pool_cases("max", fn, hidden)


def avg_pool2d_cases(fn: PoolFn, hidden: bool = False) -> list[Case]:
    return _pool_cases("avg", fn, hidden)


# ---- where max pooling takes its values from ------------------------------------------------

# (description, input shape, kernel, stride or OMIT, kind of values)
# "distinct": random real numbers, so every window has one clear maximum; "ties": small whole
# numbers, so many windows hold their maximum twice or more; "constant": one value everywhere.
_WINNER_CONFIGS = [
    (N_("one 4x4 channel"), (1, 1, 4, 4), 2, 2, "distinct"),
    (N_("stride left out (it defaults to the kernel size)"), (1, 1, 6, 6), 2, OMIT, "distinct"),
    (N_("batch of 2, 3 channels"), (2, 3, 6, 6), 2, 2, "distinct"),
    (N_("ties: several values share a window's maximum"), (2, 2, 6, 8), 2, OMIT, "ties"),
    (N_("a constant input: every window is one big tie"), (1, 1, 4, 6), 2, OMIT, "constant"),
    (N_("the last row and column are in no window"), (1, 2, 5, 7), 2, 2, "distinct"),
    (N_("overlapping windows: one input can win several"), (1, 1, 6, 6), 3, 1, "distinct"),
    (N_("overlapping windows with ties"), (2, 2, 7, 9), 3, 2, "ties"),
    (N_("a stride larger than the kernel leaves gaps"), (1, 3, 8, 8), 2, 3, "distinct"),
]

_NO_AUTOGRAD_WINNERS = N_("your function used autograd; the exercise is to find the winning "
                          "positions yourself")
_TIE_RULE = N_("the first in reading order (row by row, left to right) wins, as argmax picks "
               "it and as PyTorch's max pooling does")


def _winner_input(shape: tuple[int, ...], values: str, generator: torch.Generator
                  ) -> torch.Tensor:
    if values == "ties":
        return torch.randint(0, 3, shape, generator=generator).float()
    if values == "constant":
        return torch.full(shape, 0.5)
    return torch.randn(shape, generator=generator)


def _count_winners(x: torch.Tensor, kernel: int, stride: int, *, ceil_mode: bool = False
                   ) -> torch.Tensor:
    """How often each input is the one that F.max_pool2d keeps (its first maximum)."""
    n, c, height, width = x.shape
    pooled, index = F.max_pool2d(x, kernel, stride, ceil_mode=ceil_mode, return_indices=True)
    counts = torch.zeros(n, c, height * width, dtype=torch.float64)
    counts.scatter_add_(2, index.flatten(2), torch.ones(pooled.flatten(2).shape,
                                                         dtype=torch.float64))
    return counts.view(x.shape)


def _window_origins(h_out: int, w_out: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.arange(h_out).view(h_out, 1) * stride,
            torch.arange(w_out).view(1, w_out) * stride)


def _mark_ties(x: torch.Tensor, kernel: int, stride: int, *, last: bool = False,
               every: bool = False) -> torch.Tensor:
    """Counts as a learner gets them by marking every tied maximum, or the last one."""
    windows = x.double().unfold(2, kernel, stride).unfold(3, kernel, stride)
    n, c, h_out, w_out = windows.shape[:4]
    flat = windows.reshape(n, c, h_out, w_out, kernel * kernel)
    best = flat.amax(dim=-1, keepdim=True)
    if every:
        chosen = (flat == best).double()
    else:  # the last maximum in reading order
        reverse_index = (flat == best).flip(-1).double().argmax(dim=-1)
        chosen = F.one_hot(kernel * kernel - 1 - reverse_index, kernel * kernel).double()
    # fold adds the marks of overlapping windows
    columns = chosen.permute(0, 1, 4, 2, 3).reshape(n, c * kernel * kernel, h_out * w_out)
    height, width = x.shape[-2:]
    usable = ((h_out - 1) * stride + kernel, (w_out - 1) * stride + kernel)
    folded = F.fold(columns, usable, kernel, stride=stride)
    return F.pad(folded, (0, width - usable[1], 0, height - usable[0]))


def _mark_without_offset(x: torch.Tensor, kernel: int, stride: int, *, at_output: bool
                         ) -> torch.Tensor:
    """Marks placed at the output position (i, j), or at the winner's place (r, c) inside its
    window without adding the window's top-left corner."""
    n, c = x.shape[:2]
    pooled, index = F.max_pool2d(x, kernel, stride, return_indices=True)
    h_out, w_out = pooled.shape[-2:]
    width = x.shape[-1]
    marks = torch.zeros(n, c, x.shape[-2] * width, dtype=torch.float64)
    if at_output:
        rows, cols = _window_origins(h_out, w_out, 1)
        rows, cols = rows.expand(h_out, w_out), cols.expand(h_out, w_out)
        flat = (rows * width + cols).expand(n, c, h_out, w_out)
    else:
        top, left = _window_origins(h_out, w_out, stride)
        flat = (index // width - top) * width + (index % width - left)
    marks.scatter_add_(2, flat.reshape(n, c, -1), torch.ones(n, c, h_out * w_out,
                                                             dtype=torch.float64))
    return marks.view(x.shape)


def _winner_mistakes(x: torch.Tensor, kernel: int, stride: int, stride_given: bool
                     ) -> list[tuple[str, torch.Tensor]]:
    """Results of plausible wrong answers, each with the explanation of the mistake."""
    expected = _count_winners(x, kernel, stride)
    tie_rule = translated(_TIE_RULE)
    mistakes: list[tuple[str, torch.Tensor]] = [
        (tr("in a window where several values tie for the maximum, you marked all of them; "
            "max pooling keeps ONE value, so mark one position: {tie_rule}", tie_rule=tie_rule),
         _mark_ties(x, kernel, stride, every=True)),
        (tr("where windows overlap, one input can be the maximum of several windows: count "
            "them (add 1 for every window it wins, += 1, rather than setting it to 1)"),
         (expected > 0).double()),
        (tr("in a window where several values tie for the maximum, you marked all of them "
            "(and overlapping windows did not add up); mark one position per window: "
            "{tie_rule}", tie_rule=tie_rule),
         (_mark_ties(x, kernel, stride, every=True) > 0).double()),
        (tr("in a window where several values tie for the maximum, you marked the last of "
            "them (a >= comparison, or a scan from the end); {tie_rule}", tie_rule=tie_rule),
         _mark_ties(x, kernel, stride, last=True)),
        (tr("your marks sit at the OUTPUT positions (i, j); mark the input position the value "
            "came from: row i*stride + r, column j*stride + c, where (r, c) is the maximum's "
            "place inside window (i, j)"),
         _mark_without_offset(x, kernel, stride, at_output=True)),
        (tr("your marks sit at the maximum's place (r, c) inside its window, but not at the "
            "window's place in the input: add the window's top-left corner, row i*stride and "
            "column j*stride"),
         _mark_without_offset(x, kernel, stride, at_output=False)),
    ]
    if stride != 1:
        text = tr("your marks are those of stride 1, but stride={stride} was asked for: window "
                  "(i, j) starts at row i*stride, column j*stride", stride=stride) \
            if stride_given else \
            tr("called without a stride, your function used stride 1; stride=None means "
               "stride = kernel_size, as in PyTorch")
        mistakes.append((text, _count_winners(x, kernel, 1)))
    if stride_given and stride != kernel:
        mistakes.append((tr("your marks are those of stride = kernel_size = {kernel}, but "
                            "stride={stride} was asked for: kernel_size is only the default, "
                            "used when stride is None", kernel=kernel, stride=stride),
                         _count_winners(x, kernel, kernel)))
    ceil = _count_winners(x, kernel, stride, ceil_mode=True)
    if not torch.equal(ceil, expected):
        mistakes.append((tr("you marked winners of partial windows at the border; a window "
                            "that does not fit whole is dropped, as max pooling drops it (the "
                            "output size rounds down)"), ceil))
    return mistakes


def max_pool2d_winners_cases(fn: Callable[..., torch.Tensor], hidden: bool = False
                             ) -> list[Case]:
    generator = torch.Generator().manual_seed(case_seed(5, hidden, "max_pool2d_winners"))
    configs = list(_WINNER_CONFIGS)
    if hidden:
        for index, (_, shape, kernel, stride, _, _) in enumerate(_random_configs(generator, 8)):
            values = ("ties", "distinct")[index % 2]
            label = N_("random case with ties") if values == "ties" else \
                N_("random case without ties")
            configs.append((label, shape, kernel, stride, values))
    cases = []
    for description, shape, kernel, stride, values in configs:
        x = _winner_input(shape, values, generator)
        stride_given = stride is not OMIT
        effective = stride if stride_given else kernel

        def run(x=x, kernel=kernel, stride=stride, stride_given=stride_given,
                effective=effective) -> None:
            with forbid(_BUILTIN_POOLING, translated(_NO_BUILTIN_POOLING)), \
                    forbid(_AUTOGRAD, translated(_NO_AUTOGRAD_WINNERS)):
                try:
                    got = fn(x.clone(), kernel, stride) if stride_given else \
                        fn(x.clone(), kernel)
                except TypeError as error:
                    if stride_given or "NoneType" not in str(error):
                        raise
                    raise CaseFailed(tr("your code raised TypeError: {error}; when the stride "
                                        "is left out it is None, which means stride = "
                                        "kernel_size: start with stride = kernel_size if stride "
                                        "is None else stride", error=error),
                                     diagnosed=True) from None
            got = as_tensor(got, N_("the result"))
            expected = _count_winners(x, kernel, effective)
            pooled_shape = tuple(F.max_pool2d(x, kernel, effective).shape)
            if tuple(got.shape) == pooled_shape != tuple(x.shape):
                raise CaseFailed(tr("the result has shape {pooled_shape}, the pooled "
                                    "output's; it marks positions of the INPUT, so give it x's "
                                    "shape, {x_shape}", pooled_shape=pooled_shape,
                                    x_shape=tuple(x.shape)), diagnosed=True)
            if tuple(got.shape) != tuple(x.shape):
                raise CaseFailed(tr("the result has shape {got_shape}; it marks positions of "
                                    "the input, so it has x's shape, {x_shape}",
                                    got_shape=tuple(got.shape), x_shape=tuple(x.shape)),
                                 diagnosed=True)
            got = got.detach().to("cpu", torch.float64)
            try:
                expect_close(got, expected, N_("the result"))
            except CaseFailed as failure:
                explanation = _diagnose(got, _winner_mistakes(x, kernel, effective,
                                                              stride_given))
                raise CaseFailed(explanation or str(failure), diagnosed=bool(explanation)) \
                    from None

        stride_text = tr("stride {stride}", stride=stride) if stride_given else \
            tr("no stride given")
        cases.append(Case(tr("{description}: input {shape}, kernel {kernel}, {stride_text}",
                             description=translated(description), shape=tuple(shape),
                             kernel=kernel, stride_text=stride_text), run))
    return cases


# ---- shapes through a conv-pool stack -------------------------------------------------------

# (description, input (C, H, W), layer specs: the format of cnn_course.arith)
_STACKS: list[tuple[str, tuple[int, int, int], list[LayerSpec]]] = [
    (N_("LeNet-5's feature extractor"), (1, 32, 32),
     [("conv", 6, 5, 1, 0), ("pool", 2, 2, 0), ("conv", 16, 5, 1, 0), ("pool", 2, 2, 0)]),
    (N_("padding 2 keeps 28x28"), (1, 28, 28),
     [("conv", 6, 5, 1, 2), ("pool", 2, 2, 0), ("conv", 16, 5, 1, 0), ("pool", 2, 2, 0)]),
    (N_("AlexNet's overlapping 3x3 pooling with stride 2"), (3, 227, 227),
     [("conv", 96, 11, 4, 0), ("pool", 3, 2, 0), ("conv", 256, 5, 1, 2), ("pool", 3, 2, 0)]),
    (N_("ResNet's stem: strided conv, padded pooling"), (3, 224, 224),
     [("conv", 64, 7, 2, 3), ("pool", 3, 2, 1)]),
    (N_("non-square 45x61 input"), (3, 45, 61),
     [("conv", 8, 3, 1, 1), ("pool", 2, 2, 0), ("conv", 16, 3, 2, 0), ("pool", 3, 3, 0)]),
    (N_("strides that do not divide evenly"), (2, 15, 20),
     [("pool", 2, 2, 0), ("conv", 4, 4, 3, 1), ("pool", 2, 1, 0)]),
]

# For code that unpacks a pool spec as three entries, without the padding. A template: show it
# with tr(POOL_SPEC_ADVICE, pool_format=SPEC_FORMATS["pool"]).
POOL_SPEC_ADVICE = N_("a pooling spec has four entries, {pool_format}: like a conv spec, it "
                      "ends with the padding; unpack it as _, kernel, stride, padding = spec")


def call_with_specs(fn: Callable, input_shape: Sequence[int], specs: Sequence[LayerSpec]
                    ) -> object:
    """``fn(input_shape, specs)`` on fresh copies. If it fails where it would run with each pool
    spec cut to three entries (no padding), say so instead of showing the bare error.

    The checkers of Chapters 4 and 8, whose exercises take the same layer specs, call it too.
    """
    try:
        return fn(tuple(input_shape), [tuple(spec) for spec in specs])
    except (ValueError, IndexError, TypeError) as error:
        if not any(spec[0] == "pool" for spec in specs):
            raise
        short = [tuple(spec[:3]) if spec[0] == "pool" else tuple(spec) for spec in specs]
        try:
            fn(tuple(input_shape), short)
        except Exception:
            raise error from None
        raise CaseFailed(tr("your code raised {error_type}: {error}; {advice}",
                            error_type=type(error).__name__, error=error,
                            advice=tr(POOL_SPEC_ADVICE, pool_format=SPEC_FORMATS["pool"])),
                         diagnosed=True) from None


def _mistaken_shapes(input_shape: Sequence[int], layers: Sequence[LayerSpec], *,
                     keep_channels: bool = False, pool_stride_one: bool = False,
                     round_up: bool = False, square: bool = False, no_padding: bool = False,
                     no_pool_padding: bool = False) -> list[tuple[int, int, int]]:
    channels, height, width = input_shape
    shapes = []
    for layer in layers:
        if layer[0] == "conv":
            _, out_channels, kernel, stride, padding = layer
            channels = channels if keep_channels else out_channels
        else:
            _, kernel, stride, padding = layer
            stride = 1 if pool_stride_one else stride
            padding = 0 if no_pool_padding else padding
        padding = 0 if no_padding else padding
        rounding = math.ceil if round_up else math.floor
        height = rounding((height + 2 * padding - kernel) / stride) + 1
        width = height if square else rounding((width + 2 * padding - kernel) / stride) + 1
        shapes.append((channels, height, width))
    return shapes


_SHAPE_MISTAKES = {
    "keep_channels": N_("a convolution's output has out_channels channels (one per kernel), "
                        "whatever the input had"),
    "pool_stride_one": N_("a pooling layer moves its window `stride` pixels at a time, so "
                          "('pool', 2, 2, 0) halves height and width"),
    "round_up": N_("when the windows do not fit evenly, the size rounds down: "
                   "o = (n + 2p - k) // s + 1"),
    "square": N_("the input is not square: compute the height and the width each with their "
                 "own size"),
    "no_padding": N_("you left out the padding: it adds 2p to the size before the window "
                     "slides"),
    "no_pool_padding": N_("you left out the pooling layer's padding: a pool spec's last entry "
                          "pads like a convolution's, o = (n + 2p - k) // s + 1"),
}


def _as_shape_list(got: object, count: int) -> list[tuple[int, ...]]:
    if not isinstance(got, list | tuple) or len(got) != count:
        size = len(got) if isinstance(got, list | tuple) else type(got).__name__
        raise CaseFailed(tr("return one shape per layer: a list of {count} (C, H, W) tuples "
                            "(got {size!r})", count=count, size=size), diagnosed=True)
    shapes = []
    for index, shape in enumerate(got):
        if not isinstance(shape, list | tuple | torch.Size) or len(shape) != 3:
            raise CaseFailed(tr("entry {index} is {shape!r}; each entry should be a "
                                "(C, H, W) tuple", index=index, shape=shape), diagnosed=True)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in shape):
            if all(isinstance(v, float) and v.is_integer() for v in shape):
                raise CaseFailed(tr("entry {index} is {shape!r}, floats; sizes are whole "
                                    "numbers: use floor division //", index=index,
                                    shape=tuple(shape)), diagnosed=True)
            raise CaseFailed(tr("entry {index} is {shape!r}; sizes should be ints",
                                index=index, shape=tuple(shape)), diagnosed=True)
        shapes.append(tuple(shape))
    return shapes


def pooled_shapes_cases(fn: Callable[..., list], hidden: bool = False) -> list[Case]:
    stacks = list(_STACKS)
    if hidden:
        generator = torch.Generator().manual_seed(case_seed(2468, hidden, "pooled_shapes"))
        while len(stacks) < len(_STACKS) + 8:
            channels, height, width = (int(v) for v in torch.randint(1, 40, (3,),
                                                                    generator=generator))
            size = (channels % 3 + 1, height + 30, width + 30)
            layers: list[LayerSpec] = []
            for step in range(4):
                k, s = (int(v) for v in torch.randint(1, 5, (2,), generator=generator))
                p = int(torch.randint(0, k // 2 + 1, (1,), generator=generator))
                layers.append(("conv", 4 + step, k, s, p) if step % 2 == 0 else
                              ("pool", k, s, p))
            try:
                spec_output_shapes(size, layers)
            except ValueError:  # the random stack shrank below one pixel
                continue
            stacks.append((tr("random stack on {size}", size=size), size, layers))
    cases = []
    for description, input_shape, layers in stacks:
        def run(input_shape=input_shape, layers=layers) -> None:
            got = _as_shape_list(call_with_specs(fn, input_shape, layers), len(layers))
            expected = spec_output_shapes(input_shape, layers)
            if got == expected:
                return
            for flag, explanation in _SHAPE_MISTAKES.items():
                if got == _mistaken_shapes(input_shape, layers, **{flag: True}):
                    raise CaseFailed(translated(explanation), diagnosed=True)
            index = next(i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b)
            raise CaseFailed(tr("after layer {index} {layer}, you give {got}, but the real "
                                "stack gives {expected}", index=index, layer=layers[index],
                                got=got[index], expected=expected[index]))
        cases.append(Case(tr("{description}, input {input_shape}",
                             description=translated(description), input_shape=input_shape),
                          run))
    return cases


EXERCISES = Exercises({
    "max_pool2d": Exercise(
        max_pool2d_cases, N_("all {n} cases match F.max_pool2d."),
        N_("pad with -inf, then window (i, j) covers rows i*s .. i*s+k-1 and columns "
           "j*s .. j*s+k-1 of the padded input; the output size is (n + 2p - k) // s + 1.")),
    "avg_pool2d": Exercise(
        avg_pool2d_cases, N_("all {n} cases match F.avg_pool2d."),
        N_("pad with zeros, take the mean of each k x k window (dividing by k*k, padded zeros "
           "included); the output size is (n + 2p - k) // s + 1.")),
    "max_pool2d_winners": Exercise(
        max_pool2d_winners_cases, N_("all {n} cases mark the inputs that F.max_pool2d keeps."),
        N_("start from zeros shaped like x; for each output (i, j), find the flat position m "
           "of its window's maximum with argmax (the first one if several tie) and add 1 at "
           "row i*stride + m // k, column j*stride + m % k.")),
    "pooled_shapes": Exercise(
        pooled_shapes_cases, N_("all {n} stacks give the shapes the real layers produce."),
        N_("for every layer o = (n + 2p - k) // s + 1 for height and width separately; a conv "
           "sets the channels to out_channels, a pooling keeps them.")),
})
run_check = EXERCISES.run_check


def check_max_pool2d(fn: PoolFn) -> None:
    """Compare a max pooling written from scratch with ``F.max_pool2d``."""
    report(run_check("max_pool2d", fn))


def check_avg_pool2d(fn: PoolFn) -> None:
    """Compare an average pooling written from scratch with ``F.avg_pool2d``."""
    report(run_check("avg_pool2d", fn))


def check_max_pool2d_winners(fn: Callable[..., torch.Tensor]) -> None:
    """Compare the marked winners of max pooling with the inputs ``F.max_pool2d`` keeps."""
    report(run_check("max_pool2d_winners", fn))


def check_pooled_shapes(fn: Callable[..., list]) -> None:
    """Compare predicted shapes with those of the real conv-pool stack."""
    report(run_check("pooled_shapes", fn))
