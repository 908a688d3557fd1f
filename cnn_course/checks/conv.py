"""Checkers for Chapter 1: convolution.

Each ``check_*`` function prints one verdict line; each ``*_cases`` function lists the cases,
so that a grader can run them with other seeds (``hidden=True``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from cnn_course.arith import conv_output_size
from cnn_course.checks.core import (
    Case,
    CaseFailed,
    Exercise,
    Exercises,
    MethodViolation,
    OpCounter,
    as_tensor,
    case_seed,
    expect_close,
    expect_shape,
    observed,
    report,
)
from cnn_course.messages import N_, tr, translated

ConvFn = Callable[..., torch.Tensor]

# (description, input shape, weight shape, stride, padding, with bias)
_CONV_CONFIGS = [
    (N_("1 channel, 5x5 input, 3x3 kernel"), (1, 1, 5, 5), (1, 1, 3, 3), 1, 0, False),
    (N_("1 channel with a bias"), (1, 1, 5, 5), (1, 1, 3, 3), 1, 0, True),
    (N_("padding 1 keeps 5x5"), (1, 1, 5, 5), (1, 1, 3, 3), 1, 1, True),
    (N_("7x7 input, stride 2 gives 3x3"), (1, 1, 7, 7), (1, 1, 3, 3), 2, 0, False),
    (N_("6x6 input, stride 2 does not divide evenly"), (1, 1, 6, 6), (1, 1, 3, 3), 2, 0, True),
    (N_("3 input channels, 4 output channels"), (1, 3, 6, 6), (4, 3, 3, 3), 1, 0, True),
    (N_("non-square 7x5 input and 3x2 kernel"), (1, 2, 7, 5), (3, 2, 3, 2), 1, 1, True),
    (N_("batch of 2, stride 3, padding 2"), (2, 3, 8, 9), (2, 3, 4, 4), 3, 2, True),
]

# Shapes that only the hidden cases use, so that a function fitted to the visible ones fails.
_HIDDEN_CONV_CONFIGS = [
    (N_("5 input channels, 9x9 input, 5x5 kernel"), (1, 5, 9, 9), (1, 5, 5, 5), 1, 2, True),
    (N_("batch of 3, non-square 6x11 input, 2x4 kernel"), (3, 2, 6, 11), (5, 2, 2, 4), 2, 0, True),
    (N_("1x1 kernel that only mixes channels"), (2, 4, 5, 6), (3, 4, 1, 1), 1, 0, True),
    (N_("kernel as large as the padded input"), (1, 2, 4, 4), (2, 2, 6, 6), 1, 1, False),
    (N_("stride 4, larger than the kernel"), (1, 1, 13, 10), (2, 1, 3, 3), 4, 1, True),
    (N_("8 channels, 4x3 kernel, padding 3"), (2, 8, 7, 5), (4, 8, 4, 3), 2, 3, False),
    (N_("tall 12x3 input, 5x1 kernel"), (1, 3, 12, 3), (2, 3, 5, 1), 1, 0, True),
]


# ATen operators whose name mentions "conv" but that compute no convolution.
_NOT_CONVOLUTIONS = ("_convert_", "mkldnn_reorder_conv")


def _is_builtin_convolution(op_name: str) -> bool:
    """True for every ATen convolution operator: ``convolution``, ``_convolution``,
    ``conv2d``, ``thnn_conv2d``, ``_slow_conv2d_forward``, ``mkldnn_convolution``,
    ``convolution_overrideable``, ``slow_conv_dilated2d``, ``conv_transpose2d``,
    ``convolution_backward`` (whose weight gradient is a cross-correlation) and the rest."""
    namespace, _, name = op_name.partition("::")
    return (namespace == "aten" and ("conv" in name or "correlation" in name)
            and not name.startswith(_NOT_CONVOLUTIONS))


class _NoBuiltinConvolution(TorchDispatchMode):
    """Refuse PyTorch's convolution kernels, whichever Python function reached them."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if _is_builtin_convolution(func.name()):
            raise MethodViolation(tr("your function called PyTorch's built-in convolution; "
                                     "the exercise is to compute it yourself"))
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def _forbid_builtin_conv() -> Iterator[None]:
    """Make PyTorch's own convolution raise while the learner's code runs."""
    with _NoBuiltinConvolution():
        yield


def _diagnose_conv(got: torch.Tensor, x, weight, bias, stride, padding) -> str:
    """Explain a wrong convolution output by matching it against common mistakes."""
    mistakes = {
        tr("you flipped the kernel: PyTorch's conv2d is cross-correlation, it slides the "
           "kernel as it is"): F.conv2d(x, weight.flip(-1, -2), bias, stride, padding),
        tr("the bias is missing: add bias[c_out] to every position of output channel c_out"):
            F.conv2d(x, weight, None, stride, padding),
    }
    got64 = got.detach().double()
    for explanation, candidate in mistakes.items():
        if candidate.shape == got.shape and torch.allclose(got64, candidate.double(),
                                                           atol=1e-4, rtol=1e-4):
            return explanation
    return ""


def conv2d_cases(fn: ConvFn, hidden: bool = False, forbid_builtin: bool = True) -> list[Case]:
    generator = torch.Generator().manual_seed(case_seed(0, hidden, "conv2d"))
    configs = _CONV_CONFIGS + (_HIDDEN_CONV_CONFIGS if hidden else [])
    cases = []
    for description, x_shape, w_shape, stride, padding, with_bias in configs:
        x = torch.randn(x_shape, generator=generator)
        weight = torch.randn(w_shape, generator=generator)
        bias = torch.randn(w_shape[0], generator=generator) if with_bias else None

        def run(x=x, weight=weight, bias=bias, stride=stride, padding=padding) -> None:
            guard = _forbid_builtin_conv() if forbid_builtin else contextlib.nullcontext()
            with guard:
                got = fn(x.clone(), weight.clone(), None if bias is None else bias.clone(),
                         stride=stride, padding=padding)
            expected = F.conv2d(x, weight, bias, stride=stride, padding=padding)
            got = as_tensor(got, N_("the output"))
            expect_shape(got, tuple(expected.shape))
            try:
                expect_close(got, expected)
            except CaseFailed as failure:
                explanation = _diagnose_conv(got, x, weight, bias, stride, padding)
                raise CaseFailed(explanation or str(failure), diagnosed=bool(explanation)) from None

        cases.append(Case(tr("{description}, stride {stride}, padding {padding}",
                             description=translated(description), stride=stride,
                             padding=padding), run))
    return cases


# ---- im2col without loops -------------------------------------------------------------------
# A loop over the images, the channels or the output positions calls PyTorch once per pass, so
# the number of PyTorch calls grows with that size; unfold and one matrix product do not.

# (what grows, what the small and the large input are, their x and weight shapes);
# stride 1, padding 1 and a bias in every run, so that only the named size changes
_BASE = ((1, 2, 6, 6), (2, 2, 3, 3))
_LOOP_PROBES = [
    (N_("output positions"), N_("a 6x6 output"), N_("an 18x18 output"),
     _BASE, ((1, 2, 18, 18), (2, 2, 3, 3))),
    (N_("images of the batch"), N_("1 image"), N_("8 images"),
     _BASE, ((8, 2, 6, 6), (2, 2, 3, 3))),
    (N_("input channels"), N_("1 input channel"), N_("8 input channels"),
     ((1, 1, 6, 6), (2, 1, 3, 3)), ((1, 8, 6, 6), (2, 8, 3, 3))),
    (N_("output channels"), N_("1 output channel"), N_("8 output channels"),
     ((1, 2, 6, 6), (1, 2, 3, 3)), ((1, 2, 6, 6), (8, 2, 3, 3))),
]
# A loop-free answer calls PyTorch equally often for both inputs; this leaves room for a
# few calls that depend on a size in some other way.
_SPARE_CALLS = 4


def _loop_free_cases(fn: ConvFn, hidden: bool) -> list[Case]:
    """Cases that refuse an answer whose number of PyTorch calls grows with the batch, the
    channels or the number of output positions (the exercise rules out loops)."""
    generator = torch.Generator().manual_seed(case_seed(4, hidden, "conv2d_im2col loops"))

    def operations(x_shape: tuple[int, ...], w_shape: tuple[int, ...]) -> int:
        x = torch.randn(x_shape, generator=generator)
        weight = torch.randn(w_shape, generator=generator)
        bias = torch.randn(w_shape[0], generator=generator)
        with _forbid_builtin_conv(), OpCounter() as counter:
            fn(x, weight, bias, stride=1, padding=1)
        return counter.calls

    cases = []
    for what, small_name, large_name, small, large in _LOOP_PROBES:
        # The counts are no return values of the learner's code: each is an observed unit.
        def run(what=what, small_name=small_name, large_name=large_name, small=small,
                large=large) -> None:
            few = observed(lambda: operations(*small))
            many = observed(lambda: operations(*large))
            if many > few + _SPARE_CALLS:
                raise MethodViolation(tr(
                    "your function called {few} PyTorch operations for {small_name} and "
                    "{many} for {large_name}: it loops over the {what}. The exercise rules "
                    "out loops: F.unfold gathers every patch of every image at once, and one "
                    "matrix product with the reshaped weights computes all outputs",
                    few=few, small_name=translated(small_name), many=many,
                    large_name=translated(large_name), what=translated(what)))
        cases.append(Case(tr("no loop over the {what} ({small_name}, then {large_name})",
                             what=translated(what), small_name=translated(small_name),
                             large_name=translated(large_name)), run))
    return cases


def conv2d_im2col_cases(fn: ConvFn, hidden: bool = False) -> list[Case]:
    """The convolution cases, then the rule of the exercise: no loops."""
    return conv2d_cases(fn, hidden) + _loop_free_cases(fn, hidden)


# ---- output size and parameter count --------------------------------------------------------

_SIZE_CONFIGS = [  # n, kernel, padding, stride, dilation
    (7, 3, 0, 1, 1), (7, 3, 0, 2, 1), (32, 5, 2, 1, 1), (28, 5, 0, 1, 1), (6, 3, 0, 2, 1),
    (224, 7, 3, 2, 1), (10, 3, 1, 3, 1), (9, 3, 0, 1, 2), (15, 3, 2, 2, 3), (5, 5, 0, 1, 1),
]


def conv_output_size_cases(fn: Callable[..., int], hidden: bool = False) -> list[Case]:
    configs = list(_SIZE_CONFIGS)
    if hidden:
        generator = torch.Generator().manual_seed(case_seed(99, hidden, "conv_output_size"))
        while len(configs) < 30:
            n, k, p, s, d = (int(v) for v in torch.randint(1, 8, (5,), generator=generator))
            n += 8
            if d * (k - 1) + 1 <= n + 2 * p:
                configs.append((n, k, p, s, d))
    cases = []
    for n, k, p, s, d in configs:
        def run(n=n, k=k, p=p, s=s, d=d) -> None:
            got = fn(n, k, padding=p, stride=s, dilation=d)
            expected = conv_output_size(n, k, padding=p, stride=s, dilation=d)
            if isinstance(got, float):
                raise CaseFailed(tr("returned {got!r}, a float; sizes are whole numbers: use "
                                    "floor division //", got=got), diagnosed=True)
            if type(got) is not int:  # exact: an int subclass could fake the comparison
                raise CaseFailed(tr("returned {got!r}; expected an int", got=got))
            if got != expected:
                raise CaseFailed(tr("returned {got}, but nn.Conv2d gives {expected}", got=got,
                                    expected=expected))
        cases.append(Case(f"n={n}, kernel={k}, padding={p}, stride={s}, dilation={d}", run))
    return cases


_PARAM_CONFIGS = [(3, 16, 2, True), (3, 32, 5, True), (1, 6, 5, True), (6, 16, 5, True),
                  (16, 8, 3, False), (64, 128, 1, True), (32, 32, 5, True)]


def conv_params_cases(fn: Callable[..., int], hidden: bool = False) -> list[Case]:
    configs = list(_PARAM_CONFIGS)
    if hidden:
        generator = torch.Generator().manual_seed(case_seed(7, hidden, "conv_params"))
        for _ in range(10):
            c_in, c_out, k = (int(v) for v in torch.randint(1, 20, (3,), generator=generator))
            configs.append((c_in, c_out, k % 7 + 1, bool(c_out % 2)))
    cases = []
    for c_in, c_out, k, bias in configs:
        def run(c_in=c_in, c_out=c_out, k=k, bias=bias) -> None:
            got = fn(c_in, c_out, k, bias=bias)
            if type(got) is not int:
                raise CaseFailed(tr("returned {got!r}; expected an int", got=got),
                                 diagnosed=True)
            layer = nn.Conv2d(c_in, c_out, k, bias=bias)
            expected = sum(p.numel() for p in layer.parameters())
            if got == expected:
                return
            if bias and got == expected - c_out:
                raise CaseFailed(tr("returned {got}, which leaves out the {c_out} biases (one "
                                    "per output channel)", got=got, c_out=c_out),
                                 diagnosed=True)
            if got == k * k * c_out + (c_out if bias else 0):
                raise CaseFailed(tr("returned {got}: each kernel spans all {c_in} input "
                                    "channels, so it has {k}x{k}x{c_in} weights", got=got,
                                    c_in=c_in, k=k), diagnosed=True)
            raise CaseFailed(tr("returned {got!r}, but nn.Conv2d({c_in}, {c_out}, {k}, "
                                "bias={bias}) has {expected} parameters", got=got, c_in=c_in,
                                c_out=c_out, k=k, bias=bias, expected=expected))
        cases.append(Case(f"Conv2d({c_in}, {c_out}, {k}, bias={bias})", run))
    return cases


# ---- designing a kernel ---------------------------------------------------------------------

def _edge_images(size: int = 12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    vertical = torch.zeros(1, 1, size, size)
    vertical[..., size // 2:] = 1.0          # dark left half, bright right half
    horizontal = vertical.transpose(-1, -2)  # dark top, bright bottom
    flat = torch.full((1, 1, size, size), 0.7)
    return vertical, horizontal, flat


_LARGEST_KERNEL = 15


def _as_kernel(value: object) -> torch.Tensor:
    """The exercise's return value: a float32 tensor of shape [k, k]. Anything else is
    refused with what to change (a [1, 1, k, k] tensor, a list, integers, float64...)."""
    if value is None:
        raise CaseFailed(tr("your function returned None (is the return statement missing?); "
                            "return the kernel as a float32 tensor of shape [k, k]"),
                         diagnosed=True)
    if isinstance(value, list | tuple):
        raise CaseFailed(tr("your function returned a Python {type_name}; return a tensor: "
                            "wrap the rows in torch.tensor([[...], [...], [...]])",
                            type_name=type(value).__name__), diagnosed=True)
    kernel = as_tensor(value, N_("your kernel"))
    shape = tuple(kernel.shape)
    if kernel.dim() > 2 and all(size == 1 for size in shape[:-2]):
        raise CaseFailed(tr("your kernel has shape {shape}; return only its height and "
                            "width, a 2-D tensor of shape [k, k] such as [3, 3] (for example "
                            "kernel.squeeze()): the checker and the cells below add the channel "
                            "dimensions themselves", shape=shape), diagnosed=True)
    if kernel.dim() != 2 or shape[0] != shape[1] or not kernel.numel():
        raise CaseFailed(tr("your kernel has shape {shape}; return a 2-D square tensor of "
                            "shape [k, k] (as many rows as columns), such as [3, 3]",
                            shape=shape), diagnosed=True)
    if not kernel.is_floating_point():
        raise CaseFailed(tr("your kernel has dtype {dtype}; F.conv2d needs float32 numbers: "
                            "write them with a decimal point, torch.tensor([[1.0, 0.0, "
                            "-1.0], ...]), or add .float()", dtype=kernel.dtype),
                         diagnosed=True)
    if kernel.dtype != torch.float32:
        raise CaseFailed(tr("your kernel has dtype {dtype}, but the images it is applied to "
                            "are float32, and F.conv2d refuses to mix the two: return float32 "
                            "(add .float())", dtype=kernel.dtype), diagnosed=True)
    return kernel


def vertical_edge_kernel_cases(fn: Callable[[], torch.Tensor], hidden: bool = False
                               ) -> list[Case]:
    """Any square float32 kernel [k, k] passes that answers a vertical edge, is silent on a
    flat image and (nearly) silent on a horizontal edge; k may be odd or even."""
    state: dict[str, torch.Tensor] = {}

    def get_kernel() -> torch.Tensor:
        if "kernel" not in state:
            kernel = _as_kernel(fn())
            if kernel.shape[0] > _LARGEST_KERNEL:
                raise CaseFailed(tr("your kernel is {size}x{size}; an edge detector is small: "
                                    "use at most {largest}x{largest}", size=kernel.shape[0],
                                    largest=_LARGEST_KERNEL), diagnosed=True)
            if not torch.isfinite(kernel).all():
                raise CaseFailed(tr("your kernel contains nan or inf; use finite numbers"),
                                 diagnosed=True)
            state["kernel"] = kernel.detach().cpu()
        return state["kernel"]

    def images() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # large enough for the kernel to fit at several positions on each side of the edge
        return _edge_images(max(16 if hidden else 12, 2 * get_kernel().shape[0] + 2))

    def response(image: torch.Tensor) -> torch.Tensor:
        return F.conv2d(image, get_kernel()[None, None])

    def responds_to_vertical() -> None:
        vertical, _, _ = images()
        if response(vertical).abs().max() < 1e-3:
            raise CaseFailed(tr("the kernel gives no response on an image with a vertical "
                                "edge"))

    def silent_on_flat() -> None:
        _, _, flat = images()
        if response(flat).abs().max() > 1e-4:
            raise CaseFailed(tr("the kernel responds to a flat grey image; an edge detector's "
                                "weights should sum to zero"))

    def silent_on_horizontal() -> None:
        vertical, horizontal, _ = images()
        strongest = response(vertical).abs().max()
        if response(horizontal).abs().max() > 0.1 * strongest:
            raise CaseFailed(tr("the kernel responds to a horizontal edge as strongly as to a "
                                "vertical one; it should compare left with right, not top with "
                                "bottom"))

    def is_a_kernel() -> None:
        get_kernel()

    # the hidden images' grey levels and edge position, drawn from the hidden seed
    generator = torch.Generator().manual_seed(case_seed(0, hidden, "vertical_edge_kernel"))
    bright, dark, edge, flat_level = torch.rand(4, generator=generator).tolist()
    bright, dark, flat_level = 0.7 + 0.3 * bright, 0.2 - 0.4 * dark, round(-1 - 2 * flat_level, 2)

    def other_images() -> tuple[torch.Tensor, torch.Tensor]:
        """A non-square image with a bright-to-dark vertical edge off its centre, and the same
        image turned a quarter (a horizontal edge); for the hidden cases only."""
        size = get_kernel().shape[0]
        height, width = max(20, 2 * size + 4), max(13, 2 * size + 3)
        vertical = torch.full((1, 1, height, width), bright)
        # the edge leaves room for a whole kernel on either side
        vertical[..., size + int(edge * (width - 2 * size)):] = dark
        return vertical, vertical.transpose(-1, -2).contiguous()

    def responds_to_other_vertical() -> None:
        vertical, _ = other_images()
        if response(vertical).abs().max() < 1e-3:
            raise CaseFailed(tr("the kernel gives no response on a non-square image whose "
                                "vertical edge goes from bright to dark"))

    def silent_on_other_horizontal() -> None:
        vertical, horizontal = other_images()
        if response(horizontal).abs().max() > 0.1 * response(vertical).abs().max():
            raise CaseFailed(tr("the kernel responds to a horizontal edge on a non-square image "
                                "as strongly as to a vertical one"))

    def silent_on_other_flat() -> None:
        flat = torch.full((1, 1, 17, 2 * get_kernel().shape[0] + 5), flat_level)
        if response(flat).abs().max() > 1e-4:
            raise CaseFailed(tr("the kernel responds to a flat image at level {level}; an "
                                "edge detector's weights should sum to zero", level=flat_level))

    hidden_cases = [
        Case(N_("a non-square image with a bright-to-dark vertical edge"),
             responds_to_other_vertical),
        Case(N_("a non-square image with a horizontal edge"), silent_on_other_horizontal),
        Case(tr("a flat non-square image at level {level}", level=flat_level),
             silent_on_other_flat),
    ]
    return [Case(N_("a float32 tensor of shape [k, k], finite numbers"), is_a_kernel),
            Case(N_("an image with a vertical edge"), responds_to_vertical),
            Case(N_("a flat grey image"), silent_on_flat),
            Case(N_("an image with a horizontal edge"), silent_on_horizontal)
            ] + (hidden_cases if hidden else [])


EXERCISES = Exercises({
    "conv2d_loops": Exercise(
        conv2d_cases, N_("all {n} cases match F.conv2d."),
        N_("the output size is (n + 2p - k) // s + 1; each output value sums input * kernel "
           "over all input channels and kernel positions.")),
    "conv2d_im2col": Exercise(
        conv2d_im2col_cases, N_("all {n} cases pass: the outputs match F.conv2d, and nothing "
                                "loops over the images, channels or output positions."),
        N_("F.unfold gives [N, C_in*kH*kW, L]; multiply by the weight reshaped to "
           "[C_out, C_in*kH*kW], then reshape L into (H_out, W_out).")),
    "conv_output_size": Exercise(
        conv_output_size_cases, N_("all {n} cases agree with nn.Conv2d."),
        N_("o = floor((n + 2p - d(k-1) - 1) / s) + 1; dilation d spreads the kernel over "
           "d(k-1)+1 pixels.")),
    "conv_params": Exercise(
        conv_params_cases, N_("all {n} layers agree with nn.Conv2d."),
        N_("k*k*c_in weights per kernel, c_out kernels, one bias per kernel.")),
    "vertical_edge_kernel": Exercise(
        vertical_edge_kernel_cases,
        N_("responds to vertical edges only, and not to flat regions."),
        N_("put positive weights in one column and negative weights in the opposite column.")),
})
run_check = EXERCISES.run_check


def check_conv2d_loops(fn: ConvFn) -> None:
    """Compare a loop-based conv2d with ``F.conv2d`` (padding, stride, channels, batches)."""
    report(run_check("conv2d_loops", fn))


def check_conv2d_im2col(fn: ConvFn) -> None:
    """Compare the unfold (im2col) conv2d with ``F.conv2d`` on the same cases, and refuse
    loops over the images, channels or output positions."""
    report(run_check("conv2d_im2col", fn))


def check_conv_output_size(fn: Callable[..., int]) -> None:
    """Compare an output-size function with ``nn.Conv2d`` (stride, padding, dilation)."""
    report(run_check("conv_output_size", fn))


def check_conv_params(fn: Callable[..., int]) -> None:
    """Compare a parameter-count function with ``nn.Conv2d``."""
    report(run_check("conv_params", fn))


def check_vertical_edge_kernel(fn: Callable[[], torch.Tensor]) -> None:
    """Apply the learner's kernel to vertical-edge, horizontal-edge and flat images."""
    report(run_check("vertical_edge_kernel", fn))
