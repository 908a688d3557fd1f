"""Checkers for Chapter 4: fully connected layers.

Each ``check_*`` function prints one verdict line; each ``*_cases`` function lists the cases,
so that a grader can run them with other seeds (``hidden=True``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import Permute

import cnn_course.summary as summary_module
from cnn_course.arith import LayerSpec, spec_output_shapes
from cnn_course.checks.core import (
    Case,
    CaseFailed,
    Exercise,
    Exercises,
    _where_in_learner_code,
    as_tensor,
    case_seed,
    expect_close,
    forbid,
    report,
)
from cnn_course.checks.pooling import call_with_specs
from cnn_course.summary import model_summary

# ---- reshapes that cannot work --------------------------------------------------------------

_INVALID_SHAPE = re.compile(r"shape '\[([^\]]*)\]' is invalid for input of size (\d+)")
_UNFLATTEN = re.compile(r"don't multiply up to the size of dim")
_NOT_CONTIGUOUS = "view size is not compatible with input tensor's size and stride"


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def reshape_failure(error: BaseException, expected: str, advice: str = "") -> CaseFailed | None:
    """A verdict for a learner's ``reshape``/``view``/``unflatten`` that cannot work, naming
    the shape the exercise expects (``expected``, e.g. "[N, 400] from [N, 16, 5, 5]"); None
    for any other error, which the checker then reports as it is."""
    if not isinstance(error, RuntimeError):
        return None
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    where = _where_in_learner_code(error)
    match = _INVALID_SHAPE.search(text)
    if match:
        target = [int(v) for v in match.group(1).split(",") if v.strip()]
        size = int(match.group(2))
        known = math.prod(v for v in target if v != -1)
        if -1 in target:
            why = (f"the other sizes multiply to {known:,}, which does not divide {size:,}, so "
                   "-1 cannot be filled in")
        else:
            why = f"that shape holds {known:,} values"
        problem = (f"your code could not reshape a tensor of {size:,} values to "
                   f"{_shape_text(target)}{where}: {why}. A reshape or view keeps every value, "
                   "so the sizes must multiply to the same number")
    elif _UNFLATTEN.search(text):
        problem = (f"your code could not unflatten a dimension{where}: {text}. The new sizes "
                   "must multiply to the size of the dimension they replace")
    elif _NOT_CONTIGUOUS in text:
        problem = (f"your code's view(...) failed{where}: after a transpose or permute the "
                   "values are no longer stored in reading order, and view cannot move them; "
                   "use reshape(...), which copies when it has to")
    else:
        return None
    tail = f"; {advice}" if advice else ""
    return CaseFailed(f"expected {expected}, but {problem}{tail}", diagnosed=True)


def _call_reshaping(call: Callable[[], object], expected: str, advice: str = "") -> object:
    """``call()``, with an impossible reshape in the learner's code reported by
    :func:`reshape_failure` instead of PyTorch's bare message."""
    try:
        return call()
    except RuntimeError as error:
        failure = reshape_failure(error, expected, advice)
        if failure is None:
            raise
        raise failure from None


# ---- integers -------------------------------------------------------------------------------


def _expect_int(got: object, what: str = "your function") -> int:
    """Accept Python and 0-d tensor integers; explain floats and shapes."""
    if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.is_floating_point():
        return int(got.item())
    if isinstance(got, bool):
        raise CaseFailed(f"{what} returned {got!r}, a bool; return the count as an int",
                         diagnosed=True)
    if isinstance(got, float):
        if got.is_integer():
            raise CaseFailed(f"{what} returned {got!r}, a float; counts and sizes are whole "
                             "numbers: use int arithmetic (// instead of /)", diagnosed=True)
        raise CaseFailed(f"{what} returned {got!r}, which is not a whole number; sizes come "
                         "from floor division //", diagnosed=True)
    if isinstance(got, tuple | list | torch.Size):
        raise CaseFailed(f"{what} returned {tuple(got)!r}, a shape; return the number of "
                         "values, the product of its entries, as one int", diagnosed=True)
    if not isinstance(got, int):
        raise CaseFailed(f"{what} returned {got!r} ({type(got).__name__}); expected an int")
    return got


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---- Exercise 1: parameters of one Linear layer ---------------------------------------------

_LINEAR_CONFIGS = [(1024, 64, True), (64, 10, True), (16, 133, True), (784, 128, True),
                   (3, 1, True), (1, 5, True), (10, 10, False), (400, 120, True),
                   (128, 7, False)]


def linear_params_cases(fn: Callable[..., int], hidden: bool = False) -> list[Case]:
    configs = list(_LINEAR_CONFIGS)
    if hidden:
        generator = torch.Generator().manual_seed(case_seed(41, hidden, "linear_params"))
        for _ in range(10):
            a, b = (int(v) for v in torch.randint(1, 600, (2,), generator=generator))
            configs.append((a, b, bool(a % 3)))
    cases = []
    for n_in, n_out, bias in configs:
        def run(n_in=n_in, n_out=n_out, bias=bias) -> None:
            got = _expect_int(fn(n_in, n_out, bias=bias))
            expected = _count(nn.Linear(n_in, n_out, bias=bias, device="meta"))
            if got == expected:
                return
            if bias and got == n_in * n_out:
                raise CaseFailed(f"returned {got} = {n_in}x{n_out}, the weights only: add the "
                                 f"{n_out} biases, one per output feature", diagnosed=True)
            if bias and got == n_in * n_out + n_in:
                raise CaseFailed(f"returned {got}: there is one bias per OUTPUT feature "
                                 f"({n_out}), not per input feature ({n_in})", diagnosed=True)
            if not bias and got == n_in * n_out + n_out:
                raise CaseFailed(f"returned {got}, but with bias=False the layer has no biases, "
                                 f"only {n_in}x{n_out} weights", diagnosed=True)
            if got == (n_in + 1) * (n_out + 1):
                raise CaseFailed(f"returned {got} = ({n_in}+1)x({n_out}+1); the weight matrix "
                                 f"is {n_out}x{n_in}, plus {n_out} biases", diagnosed=True)
            raise CaseFailed(f"returned {got}, but nn.Linear({n_in}, {n_out}, bias={bias}) has "
                             f"{expected} parameters")
        cases.append(Case(f"Linear({n_in}, {n_out}, bias={bias})", run))
    return cases


# ---- Exercise 2: parameters of a whole MLP --------------------------------------------------

_MLP_CONFIGS = [[784, 10], [784, 128, 10], [1024, 64, 10], [784, 256, 128, 64, 10],
                [2, 3, 1], [400, 120, 84, 10], [10]]


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    return nn.Sequential(*(nn.Linear(a, b, device="meta") for a, b in pairwise(sizes)))


def mlp_params_cases(fn: Callable[[list[int]], int], hidden: bool = False) -> list[Case]:
    configs = [list(c) for c in _MLP_CONFIGS]
    if hidden:
        generator = torch.Generator().manual_seed(case_seed(42, hidden, "mlp_params"))
        for depth in range(2, 7):
            configs.append([int(v) for v in torch.randint(1, 300, (depth,), generator=generator)])
    cases = []
    for sizes in configs:
        def run(sizes=sizes) -> None:
            got = _expect_int(fn(list(sizes)))
            expected = _count(_mlp(sizes))
            if got == expected:
                return
            pairs = list(pairwise(sizes))
            weights = sum(a * b for a, b in pairs)
            if len(sizes) == 1:
                raise CaseFailed(f"returned {got}, but a single size [{sizes[0]}] is only an "
                                 "input: there is no Linear layer, so 0 parameters",
                                 diagnosed=True)
            if got == weights:
                raise CaseFailed(f"returned {got}, the weights only: each Linear layer also "
                                 "has one bias per output unit", diagnosed=True)
            if got == weights + sum(sizes):
                raise CaseFailed(f"returned {got}: that gives the {sizes[0]} inputs biases too; "
                                 "biases belong to the layers, one per output unit, so the "
                                 "input size adds none", diagnosed=True)
            if got == weights + sum(a for a, _ in pairs):
                raise CaseFailed(f"returned {got}: a Linear layer has one bias per OUTPUT unit, "
                                 "not per input unit", diagnosed=True)
            if got == math.prod(sizes) or got == math.prod(sizes) + sum(sizes[1:]):
                raise CaseFailed(f"returned {got}: a network's count is the SUM over its Linear "
                                 "layers, each joining two consecutive sizes", diagnosed=True)
            layers = ", ".join(f"Linear({a}, {b})" for a, b in pairs)
            verb = "has" if len(pairs) == 1 else "together have"
            raise CaseFailed(f"returned {got}, but {layers} {verb} {expected} parameters")
        cases.append(Case(f"sizes {sizes}", run))
    return cases


# ---- Exercise 3: the in_features of the first Linear layer ----------------------------------

def _shape_after(input_shape: tuple[int, int, int], specs: Sequence[LayerSpec]
                 ) -> tuple[int, ...]:
    """(C, H, W) that the real layers output, or the input's own shape if there are none."""
    shapes = spec_output_shapes(input_shape, specs)
    return shapes[-1] if shapes else tuple(input_shape)


# (description, input (C, H, W), layer specs: the format of cnn_course.arith)
_FLATTEN_CONFIGS: list[tuple[str, tuple[int, int, int], list[LayerSpec]]] = [
    ("the CIFAR-10 model", (3, 32, 32),
     [("conv", 32, 5, 1, 2), ("pool", 2, 2, 0), ("conv", 32, 5, 1, 2), ("pool", 2, 2, 0),
      ("conv", 64, 5, 1, 2), ("pool", 2, 2, 0)]),
    ("LeNet-5 style, no padding", (1, 32, 32),
     [("conv", 6, 5, 1, 0), ("pool", 2, 2, 0), ("conv", 16, 5, 1, 0), ("pool", 2, 2, 0)]),
    ("MNIST, padding 2 then none", (1, 28, 28),
     [("conv", 6, 5, 1, 2), ("pool", 2, 2, 0), ("conv", 16, 5, 1, 0), ("pool", 2, 2, 0)]),
    ("no layers: Flatten on the input itself", (3, 8, 8), []),
    ("non-square 40x24 input", (3, 40, 24), [("conv", 8, 3, 1, 1), ("pool", 2, 2, 0)]),
    ("stride 2 that does not divide evenly", (1, 28, 28),
     [("conv", 4, 3, 2, 0), ("pool", 2, 2, 0)]),
    ("overlapping pooling, AlexNet's first stage", (3, 227, 227),
     [("conv", 96, 11, 4, 0), ("pool", 3, 2, 0)]),
    ("padded pooling first, as in ResNet's stem", (1, 15, 15),
     [("pool", 3, 2, 1), ("conv", 5, 3, 1, 0)]),
]


def _random_specs(generator: torch.Generator
                  ) -> tuple[tuple[int, int, int], list[LayerSpec]]:
    def rand(low: int, high: int) -> int:
        return int(torch.randint(low, high, (1,), generator=generator))
    shape = (rand(1, 5), rand(20, 70), rand(20, 70))
    specs: list[LayerSpec] = []
    height, width = shape[1], shape[2]
    for _ in range(rand(1, 5)):
        if rand(0, 2):
            kernel, stride, padding = rand(1, 6), rand(1, 3), rand(0, 3)
            spec: LayerSpec = ("conv", rand(1, 40), kernel, stride, padding)
        else:
            kernel, stride = rand(2, 4), rand(1, 4)
            padding = rand(0, kernel // 2 + 1)
            spec = ("pool", kernel, stride, padding)
        if kernel > min(height, width) + 2 * padding or 2 * padding > kernel:
            continue
        specs.append(spec)
        height = (height + 2 * padding - kernel) // stride + 1
        width = (width + 2 * padding - kernel) // stride + 1
    return shape, specs


def _size_with_pools(input_shape: tuple[int, int, int], specs: Sequence[LayerSpec],
                     change: Callable[[LayerSpec], LayerSpec]) -> int | None:
    """C * H * W from the real layers with each pool spec replaced by ``change(spec)``: what a
    learner's rule for pooling computes (None if a map shrinks away)."""
    try:
        return math.prod(_shape_after(input_shape, [
            change(spec) if spec[0] == "pool" else spec for spec in specs]))
    except ValueError:  # the output would be below one pixel
        return None


def _pool_rule(spec: LayerSpec) -> str:
    _, kernel, stride, padding = spec
    padded = f"n + 2*{padding}" if padding else "n"
    return f"({padded} - {kernel}) // {stride} + 1"


def _diagnose_pooling(got: int, expected: int, real: str, input_shape: tuple[int, int, int],
                      specs: Sequence[LayerSpec]) -> None:
    """Name a pooling rule that leaves out the stride (windows one pixel apart, or the size
    divided by the kernel: right only where stride == kernel) or the padding."""
    stride_rules = (lambda s: (*s[:2], 1, s[3]),      # windows one pixel apart
                    lambda s: (*s[:2], s[1], s[3]))   # the size divided by the kernel
    for changed in stride_rules:
        if got != _size_with_pools(input_shape, specs, changed):
            continue
        spec = next(spec for spec in specs if spec[0] == "pool" and changed(spec) != spec)
        _, kernel, stride, _ = spec
        pixels = f"{stride} pixel{'s' * (stride > 1)}"
        raise CaseFailed(f"returned {got}: your code ignores the pooling stride. {spec!r} moves "
                         f"its {kernel}x{kernel} window {pixels} at a time, so it maps a "
                         f"size n to {_pool_rule(spec)}; the real layers output "
                         f"{real} = {expected}", diagnosed=True)
    if got == _size_with_pools(input_shape, specs, lambda s: (*s[:3], 0)):
        spec = next(spec for spec in specs if spec[0] == "pool" and spec[3])
        raise CaseFailed(f"returned {got}: your code leaves out the pooling padding. {spec!r} "
                         f"adds {spec[3]} pixel(s) on every side before its window slides, as a "
                         f"convolution's padding does, so it maps a size n to {_pool_rule(spec)}; "
                         f"the real layers output {real} = {expected}", diagnosed=True)


def flatten_size_cases(fn: Callable[..., int], hidden: bool = False) -> list[Case]:
    configs = list(_FLATTEN_CONFIGS)
    if hidden:
        generator = torch.Generator().manual_seed(case_seed(43, hidden, "flatten_size"))
        configs += [(f"random layers #{i}", *_random_specs(generator)) for i in range(12)]
    cases = []
    for description, input_shape, specs in configs:
        def run(input_shape=input_shape, specs=specs) -> None:
            # The learner's function runs first, so that what it returns is recorded even if
            # the notebook has tampered with the layers the expected size is measured with.
            try:
                answer, error = call_with_specs(fn, input_shape, specs), None
            except RuntimeError as raised:
                answer, error = None, raised
            channels, *spatial = _shape_after(input_shape, specs)
            expected = channels * math.prod(spatial)
            maps = _shape_text((1, channels, *spatial))
            if error is not None:
                failure = reshape_failure(error, f"{expected} values per image (Flatten turns "
                                                 f"{maps} into [1, {expected}])")
                if failure is None:
                    raise error
                raise failure from None
            got = _expect_int(answer)
            if got == expected:
                return
            real = " x ".join(map(str, (channels, *spatial)))
            _diagnose_pooling(got, expected, real, input_shape, specs)
            if got == math.prod(spatial) and channels > 1:
                raise CaseFailed(f"returned {got} = {' x '.join(map(str, spatial))}, the size of "
                                 f"one feature map; Flatten keeps all {channels} channels, so "
                                 f"there are {real} = {expected} values", diagnosed=True)
            if got == input_shape[0] * math.prod(spatial) and input_shape[0] != channels:
                raise CaseFailed(f"returned {got}: you kept the input's {input_shape[0]} "
                                 f"channel(s), but after a conv layer the channel count is its "
                                 f"out_channels; the real output is {real} = {expected}",
                                 diagnosed=True)
            if got > expected and expected and got % expected == 0:
                raise CaseFailed(f"returned {got} = {got // expected} x {expected}: in_features "
                                 "counts the values of ONE image; leave the batch dimension "
                                 "out", diagnosed=True)
            raise CaseFailed(f"returned {got}, but the real layers output {real} = {expected} "
                             "values per image")
        cases.append(Case(f"{description}: input {input_shape}, layers {specs}", run))
    return cases


# ---- Exercise 4: a summary table ------------------------------------------------------------

def _keras_example() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 16, 2), nn.MaxPool2d(2), Permute([0, 2, 3, 1]),
                         nn.Linear(16, 133))


def _cifar_model() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(2), nn.Conv2d(32, 32, 5, padding=2),
        nn.MaxPool2d(2), nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(1024, 64), nn.Linear(64, 10))


_TABLE_MODELS: list[tuple[str, Callable[[], nn.Sequential], tuple[int, ...]]] = [
    ("an MLP on plain vectors", lambda: nn.Sequential(nn.Linear(10, 5), nn.ReLU(),
                                                      nn.Linear(5, 1)), (10,)),
    ("an MLP on MNIST", lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(),
                                              nn.Linear(128, 10)), (1, 28, 28)),
    ("the CIFAR-10 model", _cifar_model, (3, 32, 32)),
    ("a Linear layer on a 4-D tensor (Keras' Dense(133) example)", _keras_example,
     (3, 224, 224)),
    ("Linear on the width axis of feature maps", lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.Linear(26, 5)), (1, 28, 28)),
    ("non-square input, stride 2, Linear without bias, Dropout", lambda: nn.Sequential(
        nn.Conv2d(2, 3, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(135, 7, bias=False),
        nn.Dropout(0.5)), (2, 12, 20)),
    ("LeNet-5 style with average pooling and tanh", lambda: nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84),
        nn.Tanh(), nn.Linear(84, 10)), (1, 32, 32)),
]

def _frozen(module: nn.Module) -> nn.Module:
    """``module`` with every parameter frozen (requires_grad=False): still parameters."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


_TABLE_MODELS += [
    ("batch normalization: running mean and variance are buffers, not parameters",
     lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                           nn.Linear(4 * 8 * 8, 3)), (1, 10, 10)),
    ("a frozen first layer (requires_grad=False) still has its parameters",
     lambda: nn.Sequential(_frozen(nn.Conv2d(1, 6, 5)), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                           nn.Linear(6 * 6 * 6, 10)), (1, 16, 16)),
]

_HIDDEN_TABLE_MODELS: list[tuple[str, Callable[[], nn.Sequential], tuple[int, ...]]] = [
    ("frozen batch normalization after a strided conv", lambda: nn.Sequential(
        nn.Conv2d(3, 6, 3, stride=2), _frozen(nn.BatchNorm2d(6)), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), _frozen(nn.Linear(6, 4)), nn.Linear(4, 2)),
     (3, 15, 13)),
    ("a global-average-pooling head", lambda: nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 4)), (3, 17, 23)),
    ("Linear layers on a sequence of vectors", lambda: nn.Sequential(
        nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 2, bias=False)), (5, 6)),
    ("stride 3 with padding", lambda: nn.Sequential(
        nn.Conv2d(1, 5, 4, stride=3, padding=2), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(5 * 5 * 5, 3)), (1, 28, 29)),
]

_RUN_BATCHED = ("run a batch of one image, torch.zeros(1, *input_shape): nn.Flatten keeps "
                "dimension 0 as the batch, so an image WITHOUT a batch dimension gets flattened "
                "along the wrong axes")


# model_summary builds its rows with summary.LayerRow: refusing it refuses model_summary however
# the learner imported it.
_MODEL_SUMMARY = [(summary_module, "LayerRow")]
_NO_MODEL_SUMMARY = ("your function used cnn_course.summary.model_summary; the exercise is to "
                     "walk the layers yourself")


def _run_unbatched(model: nn.Sequential, input_shape: tuple[int, ...]
                   ) -> tuple[list[tuple[int, ...]] | None, str | None]:
    """What a learner gets by feeding one image without a batch dimension: the output shapes
    if every layer accepts it, else the error message of the first layer that refuses."""
    shapes, x = [], torch.zeros(*input_shape)
    try:
        with torch.no_grad():
            for layer in model:
                x = layer(x)
                shapes.append(tuple(x.shape))
    except Exception as error:
        return None, str(error)
    return shapes, None


def _as_row(row: object, index: int) -> tuple[object, tuple, object]:
    if not isinstance(row, tuple | list) or len(row) != 3:
        raise CaseFailed(f"row {index} is {row!r}; each row should be a tuple "
                         "(class name, output shape, parameter count)", diagnosed=True)
    kind, shape, params = row
    if not isinstance(shape, tuple | list | torch.Size) or not all(
            isinstance(v, int) for v in shape):
        raise CaseFailed(f"row {index} has output shape {shape!r}; give a tuple of ints such as "
                         "tuple(x.shape[1:])", diagnosed=True)
    return kind, tuple(shape), params


def _table_shapes_text(rows: Sequence[tuple[str, tuple[int, ...], int]]) -> str:
    """The output shapes the exercise expects, batch dimension included, for a message."""
    shapes = ", ".join(f"{kind} {_shape_text((1, *shape))}" for kind, shape, _ in rows)
    return f"the layers' outputs {shapes}"


def _diagnose_count(params: object, expected: int, layer: nn.Module, model: nn.Module,
                    where: str) -> None:
    """Name the mistake behind a wrong parameter count, if it is a known one."""
    weights_only = sum(p.numel() for n, p in layer.named_parameters() if n != "bias")
    trainable = sum(p.numel() for p in layer.parameters() if p.requires_grad)
    buffers = dict(layer.named_buffers())
    in_buffers = sum(b.numel() for b in buffers.values())
    if buffers and params in (expected + in_buffers, in_buffers):
        names = ", ".join(buffers)
        raise CaseFailed(f"{where}: {params} counts the layer's buffers ({names}: "
                         f"{in_buffers} values). Buffers are statistics the layer keeps, not "
                         "parameters: nothing learns them, although state_dict() lists them. "
                         f"Count layer.parameters() only: {expected}", diagnosed=True)
    if trainable != expected and params == trainable:
        raise CaseFailed(f"{where}: {params} leaves out the frozen parameters "
                         "(requires_grad=False). Frozen parameters are still parameters, "
                         "training only leaves them alone: count every tensor in "
                         f"layer.parameters(), {expected}", diagnosed=True)
    if expected != weights_only and params == weights_only:
        raise CaseFailed(f"{where}: {params} parameters counts the weights only; the bias adds "
                         f"{expected - weights_only}", diagnosed=True)
    total = sum(p.numel() for p in model.parameters())
    if total != expected and params == total:
        raise CaseFailed(f"{where}: {params} is the whole model's count; count the parameters "
                         "of this layer alone, layer.parameters()", diagnosed=True)


def layer_table_cases(fn: Callable[..., list], hidden: bool = False) -> list[Case]:
    seed = case_seed(0, hidden, "layer_table")
    cases = []
    for description, make, input_shape in _TABLE_MODELS + (_HIDDEN_TABLE_MODELS if hidden else []):
        def run(make=make, input_shape=input_shape) -> None:
            with torch.random.fork_rng(devices=[]):  # leave the learner's seed alone
                torch.manual_seed(seed)
                model = make()
                expected = [(r.kind, r.output_shape, r.params)
                            for r in model_summary(model, input_shape).rows]
                unbatched, unbatched_error = _run_unbatched(model, input_shape)
                with forbid(_MODEL_SUMMARY, _NO_MODEL_SUMMARY):
                    try:
                        got = fn(model, tuple(input_shape))
                    except (NotImplementedError, CaseFailed):
                        raise
                    except Exception as error:
                        if unbatched_error is None or str(error) != unbatched_error:
                            failure = reshape_failure(error, _table_shapes_text(expected))
                            if failure is None:
                                raise
                            raise failure from None
                        raise CaseFailed(f"your code raised {type(error).__name__}: {error}. "
                                         f"That is what happens without a batch dimension: "
                                         f"{_RUN_BATCHED}", diagnosed=True) from None
            if not isinstance(got, list | tuple):
                raise CaseFailed(f"returned a {type(got).__name__}; return a list with one "
                                 "tuple per layer", diagnosed=True)
            if len(got) != len(expected):
                raise CaseFailed(f"your table has {len(got)} rows, but the model has "
                                 f"{len(expected)} layers: one row per layer, in order",
                                 diagnosed=True)
            rows = [_as_row(row, i) for i, row in enumerate(got)]
            for i, ((kind, shape, params), (kind_e, shape_e, params_e), layer) in enumerate(
                    zip(rows, expected, model, strict=True)):
                where = f"row {i} ({kind_e})"
                if kind != kind_e:
                    raise CaseFailed(f"{where}: the first entry is {kind!r}; give the layer's "
                                     f"class name, type(layer).__name__, here {kind_e!r}",
                                     diagnosed=True)
                if shape != shape_e:
                    batch_kept = shape == (1, *shape_e)
                    unbatched_run = unbatched is not None and shape in (unbatched[i],
                                                                        unbatched[i][1:])
                    if batch_kept and unbatched_run:
                        raise CaseFailed(f"{where}: shape {shape}, expected {shape_e}. Either the "
                                         "shapes still hold the batch dimension (leave it out), "
                                         f"or the model ran on an image without one: "
                                         f"{_RUN_BATCHED}", diagnosed=True)
                    if batch_kept:
                        raise CaseFailed(f"{where}: shape {shape} includes the batch dimension; "
                                         f"leave it out: {shape_e}", diagnosed=True)
                    if unbatched_run:
                        raise CaseFailed(f"{where}: shape {shape}, expected {shape_e}: "
                                         f"{_RUN_BATCHED}", diagnosed=True)
                    raise CaseFailed(f"{where}: output shape {shape}, expected {shape_e}")
                if params != params_e:
                    _diagnose_count(params, params_e, layer, model, where)
                    raise CaseFailed(f"{where}: {params!r} parameters, expected {params_e}")
        cases.append(Case(f"{description}, input {input_shape}", run))
    return cases


# ---- Exercise 5: hand-made features ---------------------------------------------------------

_INK_CONFIGS = [  # description, (N, H, W), grid
    ("one 4x4 image, 2x2 grid", (1, 4, 4), 2),
    ("three 28x28 digits, 4x4 grid", (3, 28, 28), 4),
    ("28x28, 7x7 grid", (2, 28, 28), 7),
    ("a 1x1 grid is the mean of the image", (2, 28, 28), 1),
    ("non-square 12x8 images, 4x4 grid of 3x2 cells", (2, 12, 8), 4),
    ("a 28x28 grid gives the pixels themselves", (1, 28, 28), 28),
]


# Shapes and grids that only the hidden cases use.
_HIDDEN_INK_CONFIGS = [
    ("five 30x20 images, 5x5 grid of 6x4 cells", (5, 30, 20), 5),
    ("a 6x6 grid of 2x5 cells", (3, 12, 30), 6),
    ("one 18x18 image, 3x3 grid", (1, 18, 18), 3),
    ("a 2x2 grid of 9x9 cells", (4, 18, 18), 2),
]


def _pooled(images: torch.Tensor, cell: tuple[int, int]) -> torch.Tensor:
    return F.avg_pool2d(images[:, None], cell)[:, 0]


def ink_features_cases(fn: Callable[..., torch.Tensor], hidden: bool = False) -> list[Case]:
    generator = torch.Generator().manual_seed(case_seed(4, hidden, "ink_features"))
    cases = []
    configs = list(_INK_CONFIGS) + [("blank paper gives 0 everywhere", (2, 8, 8), 4),
                                    ("solid ink gives 1 everywhere", (2, 8, 8), 2)]
    if hidden:
        configs += _HIDDEN_INK_CONFIGS
    for description, shape, grid in configs:
        images = torch.rand(shape, generator=generator)
        if description.startswith("blank"):
            images.zero_()
        elif description.startswith("solid"):
            images.fill_(1.0)

        def run(images=images, grid=grid) -> None:
            n, height, width = images.shape
            cell = (height // grid, width // grid)
            grid_map = _pooled(images, cell)                 # PyTorch's average pooling
            expected = grid_map.reshape(n, grid * grid)
            cells = _shape_text((n, grid, height // grid, grid, width // grid))
            got = as_tensor(_call_reshaping(
                lambda: fn(images.clone(), grid),
                f"features {_shape_text((n, grid * grid))} from images "
                f"{_shape_text((n, height, width))}",
                f"split each axis into cells first, {cells}, average dimensions 2 and 4, "
                f"then reshape the {n} x {grid} x {grid} means to {_shape_text((n, grid * grid))}"),
                "the output")
            if tuple(got.shape) == (n, grid, grid):
                raise CaseFailed(f"the output has shape {tuple(got.shape)}: flatten the grid "
                                 f"into one row of {grid * grid} features per image",
                                 diagnosed=True)
            cells_if_grid_were_cell_size = (height // grid) * (width // grid)
            if got.dim() == 2 and got.shape[0] == n and \
                    got.shape[1] == cells_if_grid_were_cell_size != grid * grid:
                raise CaseFailed(f"the output has {got.shape[1]} features: `grid` is the "
                                 "number of cells along each side, not the size of a cell",
                                 diagnosed=True)
            try:
                expect_close(got, expected, "the features")
            except CaseFailed as failure:
                got64 = got.detach().double()
                if torch.allclose(got64, grid_map.transpose(1, 2).reshape(n, -1).double(),
                                  atol=1e-5):
                    raise CaseFailed("the cells are in the wrong order: go row by row, so that "
                                     "cell (r, c) is feature r * grid + c", diagnosed=True
                                     ) from None
                if torch.allclose(got64, expected.double() * cell[0] * cell[1], atol=1e-4):
                    raise CaseFailed("you summed each cell; the share of ink is the MEAN over "
                                     f"the cell's {cell[0] * cell[1]} pixels, between 0 and 1",
                                     diagnosed=True) from None
                raise failure from None
        cases.append(Case(f"{description} (images {tuple(shape)}, grid {grid})", run))
    return cases


# ---- Exercise 6: one-hot targets ------------------------------------------------------------

_ONE_HOT_CONFIGS = [  # labels, num_classes
    ([3, 0, 9], 10), ([7], 10), ([1, 1, 0, 1], 2), ([0, 1], 5), ([4, 2, 2, 8, 5], 9), ([], 10),
]


def one_hot_cases(fn: Callable[..., torch.Tensor], hidden: bool = False) -> list[Case]:
    configs = list(_ONE_HOT_CONFIGS)
    if hidden:
        generator = torch.Generator().manual_seed(case_seed(45, hidden, "one_hot"))
        configs.append((torch.randint(0, 10, (50,), generator=generator).tolist(), 10))
        configs.append((torch.randint(0, 3, (7,), generator=generator).tolist(), 133))
    cases = []
    for labels_list, num_classes in configs:
        def run(labels_list=labels_list, num_classes=num_classes) -> None:
            labels = torch.tensor(labels_list, dtype=torch.long)
            expected = F.one_hot(labels, num_classes).float()
            got = as_tensor(fn(labels.clone(), num_classes), "the targets")
            n = len(labels)
            if tuple(got.shape) == (num_classes, n) and n != num_classes:
                raise CaseFailed(f"the targets have shape {tuple(got.shape)}: one ROW per label, "
                                 f"so [{n}, {num_classes}]", diagnosed=True)
            if got.dim() == 2 and got.shape[0] == n and got.shape[1] != num_classes and n and \
                    got.shape[1] == int(labels.max()) + 1:
                raise CaseFailed(f"the targets have {got.shape[1]} columns (the largest label "
                                 f"+ 1); there must be num_classes = {num_classes} columns "
                                 "whatever labels this batch holds", diagnosed=True)
            if tuple(got.shape) == tuple(expected.shape) and not got.is_floating_point():
                raise CaseFailed(f"the targets have dtype {got.dtype}; loss functions compare "
                                 "them with probabilities, so return floats (.float())",
                                 diagnosed=True)
            try:
                expect_close(got, expected, "the targets")
            except CaseFailed as failure:
                for shift in (-1, 1):
                    moved = (labels + shift) % num_classes  # -1 wraps round, as indexing does
                    if torch.equal(got.detach().float(), F.one_hot(moved, num_classes).float()):
                        raise CaseFailed(f"each 1 sits at position label {shift:+d}: class k "
                                         "goes in column k (classes count from 0)",
                                         diagnosed=True) from None
                raise failure from None
        cases.append(Case(f"labels {labels_list}, num_classes {num_classes}", run))
    return cases


EXERCISES = Exercises({
    "linear_params": Exercise(
        linear_params_cases, "all {n} layers agree with nn.Linear.",
        "a Linear(in, out) layer has an out x in weight matrix and one bias per output."),
    "mlp_params": Exercise(
        mlp_params_cases, "all {n} networks agree with a stack of nn.Linear layers.",
        "add up linear_params(a, b) over consecutive pairs of sizes (a, b)."),
    "flatten_size": Exercise(
        flatten_size_cases, "all {n} cases agree with the real layers.",
        "track (C, H, W) layer by layer: a conv sets C to its out_channels, a pool keeps C, and "
        "both map H and W by (n + 2p - k) // s + 1; the answer is C * H * W."),
    "layer_table": Exercise(
        layer_table_cases, "all {n} models match the layers' real shapes and counts.",
        "start from x = torch.zeros(1, *input_shape); for each layer, x = layer(x), then record "
        "type(layer).__name__, tuple(x.shape[1:]) and the sum of p.numel() over "
        "layer.parameters()."),
    "ink_features": Exercise(
        ink_features_cases, "all {n} cases match PyTorch's average pooling.",
        "reshape [N, H, W] to [N, grid, H // grid, grid, W // grid], take the mean over "
        "dimensions 2 and 4, then reshape to [N, grid * grid]."),
    "one_hot": Exercise(
        one_hot_cases, "all {n} cases match F.one_hot.",
        "start from torch.zeros(len(labels), num_classes) and set a 1 in column labels[i] of "
        "each row i."),
})
run_check = EXERCISES.run_check


def check_linear_params(fn: Callable[..., int]) -> None:
    """Compare a Linear parameter count with ``nn.Linear`` (with and without bias)."""
    report(run_check("linear_params", fn))


def check_mlp_params(fn: Callable[[list[int]], int]) -> None:
    """Compare an MLP's parameter count with a real stack of ``nn.Linear`` layers."""
    report(run_check("mlp_params", fn))


def check_flatten_size(fn: Callable[..., int]) -> None:
    """Compare ``flatten_size(input_shape, specs)`` with real conv and pooling layers."""
    report(run_check("flatten_size", fn))


def check_layer_table(fn: Callable[..., list]) -> None:
    """Compare a learner's layer table with the real output shapes and parameter counts."""
    report(run_check("layer_table", fn))


def check_ink_features(fn: Callable[..., torch.Tensor]) -> None:
    """Compare grid ink features with PyTorch's average pooling."""
    report(run_check("ink_features", fn))


def check_one_hot(fn: Callable[..., torch.Tensor]) -> None:
    """Compare one-hot targets with ``F.one_hot``."""
    report(run_check("one_hot", fn))
