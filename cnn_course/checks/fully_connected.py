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
from cnn_course.messages import N_, tr, translated
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
            why = tr("the other sizes multiply to {known:,}, which does not divide {size:,}, so "
                     "-1 cannot be filled in", known=known, size=size)
        else:
            why = tr("that shape holds {known:,} values", known=known)
        problem = tr("your code could not reshape a tensor of {size:,} values to "
                     "{target}{where}: {why}. A reshape or view keeps every value, "
                     "so the sizes must multiply to the same number",
                     size=size, target=_shape_text(target), where=where, why=why)
    elif _UNFLATTEN.search(text):
        problem = tr("your code could not unflatten a dimension{where}: {error}. The new sizes "
                     "must multiply to the size of the dimension they replace",
                     where=where, error=text)
    elif _NOT_CONTIGUOUS in text:
        problem = tr("your code's view(...) failed{where}: after a transpose or permute the "
                     "values are no longer stored in reading order, and view cannot move them; "
                     "use reshape(...), which copies when it has to", where=where)
    else:
        return None
    tail = tr("; {advice}", advice=advice) if advice else ""
    return CaseFailed(tr("expected {expected}, but {problem}{tail}", expected=expected,
                         problem=problem, tail=tail), diagnosed=True)


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


def _expect_int(got: object, what: str = N_("your function")) -> int:
    """Accept Python and 0-d tensor integers; explain floats and shapes. ``what`` names the
    function in English (marked with ``N_``); it is shown translated."""
    if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.is_floating_point():
        return int(got.item())
    what = translated(what)
    if isinstance(got, bool):
        raise CaseFailed(tr("{what} returned {got!r}, a bool; return the count as an int",
                            what=what, got=got), diagnosed=True)
    if isinstance(got, float):
        if got.is_integer():
            raise CaseFailed(tr("{what} returned {got!r}, a float; counts and sizes are whole "
                                "numbers: use int arithmetic (// instead of /)",
                                what=what, got=got), diagnosed=True)
        raise CaseFailed(tr("{what} returned {got!r}, which is not a whole number; sizes come "
                            "from floor division //", what=what, got=got), diagnosed=True)
    if isinstance(got, tuple | list | torch.Size):
        raise CaseFailed(tr("{what} returned {got!r}, a shape; return the number of "
                            "values, the product of its entries, as one int",
                            what=what, got=tuple(got)), diagnosed=True)
    if not isinstance(got, int):
        raise CaseFailed(tr("{what} returned {got!r} ({type_name}); expected an int",
                            what=what, got=got, type_name=type(got).__name__))
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
                raise CaseFailed(tr("returned {got} = {n_in}x{n_out}, the weights only: add the "
                                    "{n_out} biases, one per output feature",
                                    got=got, n_in=n_in, n_out=n_out), diagnosed=True)
            if bias and got == n_in * n_out + n_in:
                raise CaseFailed(tr("returned {got}: there is one bias per OUTPUT feature "
                                    "({n_out}), not per input feature ({n_in})",
                                    got=got, n_in=n_in, n_out=n_out), diagnosed=True)
            if not bias and got == n_in * n_out + n_out:
                raise CaseFailed(tr("returned {got}, but with bias=False the layer has no "
                                    "biases, only {n_in}x{n_out} weights",
                                    got=got, n_in=n_in, n_out=n_out), diagnosed=True)
            if got == (n_in + 1) * (n_out + 1):
                raise CaseFailed(tr("returned {got} = ({n_in}+1)x({n_out}+1); the weight matrix "
                                    "is {n_out}x{n_in}, plus {n_out} biases",
                                    got=got, n_in=n_in, n_out=n_out), diagnosed=True)
            raise CaseFailed(tr("returned {got}, but nn.Linear({n_in}, {n_out}, bias={bias}) "
                                "has {expected} parameters",
                                got=got, n_in=n_in, n_out=n_out, bias=bias, expected=expected))
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
                raise CaseFailed(tr("returned {got}, but a single size [{size}] is only an "
                                    "input: there is no Linear layer, so 0 parameters",
                                    got=got, size=sizes[0]), diagnosed=True)
            if got == weights:
                raise CaseFailed(tr("returned {got}, the weights only: each Linear layer also "
                                    "has one bias per output unit", got=got), diagnosed=True)
            if got == weights + sum(sizes):
                raise CaseFailed(tr("returned {got}: that gives the {inputs} inputs biases too; "
                                    "biases belong to the layers, one per output unit, so the "
                                    "input size adds none", got=got, inputs=sizes[0]),
                                 diagnosed=True)
            if got == weights + sum(a for a, _ in pairs):
                raise CaseFailed(tr("returned {got}: a Linear layer has one bias per OUTPUT "
                                    "unit, not per input unit", got=got), diagnosed=True)
            if got == math.prod(sizes) or got == math.prod(sizes) + sum(sizes[1:]):
                raise CaseFailed(tr("returned {got}: a network's count is the SUM over its "
                                    "Linear layers, each joining two consecutive sizes",
                                    got=got), diagnosed=True)
            layers = ", ".join(f"Linear({a}, {b})" for a, b in pairs)
            if len(pairs) == 1:
                raise CaseFailed(tr("returned {got}, but {layers} has {expected} parameters",
                                    got=got, layers=layers, expected=expected))
            raise CaseFailed(tr("returned {got}, but {layers} together have {expected} "
                                "parameters", got=got, layers=layers, expected=expected))
        cases.append(Case(tr("sizes {sizes}", sizes=sizes), run))
    return cases


# ---- Exercise 3: the in_features of the first Linear layer ----------------------------------

def _shape_after(input_shape: tuple[int, int, int], specs: Sequence[LayerSpec]
                 ) -> tuple[int, ...]:
    """(C, H, W) that the real layers output, or the input's own shape if there are none."""
    shapes = spec_output_shapes(input_shape, specs)
    return shapes[-1] if shapes else tuple(input_shape)


# (description, input (C, H, W), layer specs: the format of cnn_course.arith)
_FLATTEN_CONFIGS: list[tuple[str, tuple[int, int, int], list[LayerSpec]]] = [
    (N_("the CIFAR-10 model"), (3, 32, 32),
     [("conv", 32, 5, 1, 2), ("pool", 2, 2, 0), ("conv", 32, 5, 1, 2), ("pool", 2, 2, 0),
      ("conv", 64, 5, 1, 2), ("pool", 2, 2, 0)]),
    (N_("LeNet-5 style, no padding"), (1, 32, 32),
     [("conv", 6, 5, 1, 0), ("pool", 2, 2, 0), ("conv", 16, 5, 1, 0), ("pool", 2, 2, 0)]),
    (N_("MNIST, padding 2 then none"), (1, 28, 28),
     [("conv", 6, 5, 1, 2), ("pool", 2, 2, 0), ("conv", 16, 5, 1, 0), ("pool", 2, 2, 0)]),
    (N_("no layers: Flatten on the input itself"), (3, 8, 8), []),
    (N_("non-square 40x24 input"), (3, 40, 24), [("conv", 8, 3, 1, 1), ("pool", 2, 2, 0)]),
    (N_("stride 2 that does not divide evenly"), (1, 28, 28),
     [("conv", 4, 3, 2, 0), ("pool", 2, 2, 0)]),
    (N_("overlapping pooling, AlexNet's first stage"), (3, 227, 227),
     [("conv", 96, 11, 4, 0), ("pool", 3, 2, 0)]),
    (N_("padded pooling first, as in ResNet's stem"), (1, 15, 15),
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
        pixels = tr("{stride} pixels", stride=stride) if stride > 1 \
            else tr("{stride} pixel", stride=stride)
        raise CaseFailed(tr("returned {got}: your code ignores the pooling stride. {spec!r} "
                            "moves its {kernel}x{kernel} window {pixels} at a time, so it maps a "
                            "size n to {rule}; the real layers output {real} = {expected}",
                            got=got, spec=spec, kernel=kernel, pixels=pixels,
                            rule=_pool_rule(spec), real=real, expected=expected),
                         diagnosed=True)
    if got == _size_with_pools(input_shape, specs, lambda s: (*s[:3], 0)):
        spec = next(spec for spec in specs if spec[0] == "pool" and spec[3])
        raise CaseFailed(tr("returned {got}: your code leaves out the pooling padding. {spec!r} "
                            "adds {padding} pixel(s) on every side before its window slides, as "
                            "a convolution's padding does, so it maps a size n to {rule}; "
                            "the real layers output {real} = {expected}",
                            got=got, spec=spec, padding=spec[3], rule=_pool_rule(spec),
                            real=real, expected=expected), diagnosed=True)


def flatten_size_cases(fn: Callable[..., int], hidden: bool = False) -> list[Case]:
    configs = list(_FLATTEN_CONFIGS)
    if hidden:
        generator = torch.Generator().manual_seed(case_seed(43, hidden, "flatten_size"))
        configs += [(tr("random layers #{i}", i=i), *_random_specs(generator))
                    for i in range(12)]
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
                failure = reshape_failure(error, tr("{expected} values per image (Flatten turns "
                                                    "{maps} into [1, {expected}])",
                                                    expected=expected, maps=maps))
                if failure is None:
                    raise error
                raise failure from None
            got = _expect_int(answer)
            if got == expected:
                return
            real = " x ".join(map(str, (channels, *spatial)))
            _diagnose_pooling(got, expected, real, input_shape, specs)
            if got == math.prod(spatial) and channels > 1:
                raise CaseFailed(tr("returned {got} = {spatial}, the size of one feature map; "
                                    "Flatten keeps all {channels} channels, so there are "
                                    "{real} = {expected} values",
                                    got=got, spatial=" x ".join(map(str, spatial)),
                                    channels=channels, real=real, expected=expected),
                                 diagnosed=True)
            if got == input_shape[0] * math.prod(spatial) and input_shape[0] != channels:
                raise CaseFailed(tr("returned {got}: you kept the input's {channels} "
                                    "channel(s), but after a conv layer the channel count is its "
                                    "out_channels; the real output is {real} = {expected}",
                                    got=got, channels=input_shape[0], real=real,
                                    expected=expected), diagnosed=True)
            if got > expected and expected and got % expected == 0:
                raise CaseFailed(tr("returned {got} = {times} x {expected}: in_features "
                                    "counts the values of ONE image; leave the batch dimension "
                                    "out", got=got, times=got // expected, expected=expected),
                                 diagnosed=True)
            raise CaseFailed(tr("returned {got}, but the real layers output {real} = {expected} "
                                "values per image", got=got, real=real, expected=expected))
        cases.append(Case(tr("{description}: input {input_shape}, layers {specs}",
                             description=translated(description), input_shape=input_shape,
                             specs=specs), run))
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
    (N_("an MLP on plain vectors"), lambda: nn.Sequential(nn.Linear(10, 5), nn.ReLU(),
                                                      nn.Linear(5, 1)), (10,)),
    (N_("an MLP on MNIST"), lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(),
                                              nn.Linear(128, 10)), (1, 28, 28)),
    (N_("the CIFAR-10 model"), _cifar_model, (3, 32, 32)),
    (N_("a Linear layer on a 4-D tensor (Keras' Dense(133) example)"), _keras_example,
     (3, 224, 224)),
    (N_("Linear on the width axis of feature maps"), lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.Linear(26, 5)), (1, 28, 28)),
    (N_("non-square input, stride 2, Linear without bias, Dropout"), lambda: nn.Sequential(
        nn.Conv2d(2, 3, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(135, 7, bias=False),
        nn.Dropout(0.5)), (2, 12, 20)),
    (N_("LeNet-5 style with average pooling and tanh"), lambda: nn.Sequential(
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
    (N_("batch normalization: running mean and variance are buffers, not parameters"),
     lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                           nn.Linear(4 * 8 * 8, 3)), (1, 10, 10)),
    (N_("a frozen first layer (requires_grad=False) still has its parameters"),
     lambda: nn.Sequential(_frozen(nn.Conv2d(1, 6, 5)), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                           nn.Linear(6 * 6 * 6, 10)), (1, 16, 16)),
]

_HIDDEN_TABLE_MODELS: list[tuple[str, Callable[[], nn.Sequential], tuple[int, ...]]] = [
    (N_("frozen batch normalization after a strided conv"), lambda: nn.Sequential(
        nn.Conv2d(3, 6, 3, stride=2), _frozen(nn.BatchNorm2d(6)), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), _frozen(nn.Linear(6, 4)), nn.Linear(4, 2)),
     (3, 15, 13)),
    (N_("a global-average-pooling head"), lambda: nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 4)), (3, 17, 23)),
    (N_("Linear layers on a sequence of vectors"), lambda: nn.Sequential(
        nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 2, bias=False)), (5, 6)),
    (N_("stride 3 with padding"), lambda: nn.Sequential(
        nn.Conv2d(1, 5, 4, stride=3, padding=2), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(5 * 5 * 5, 3)), (1, 28, 29)),
]

_RUN_BATCHED = N_("run a batch of one image, torch.zeros(1, *input_shape): nn.Flatten keeps "
                  "dimension 0 as the batch, so an image WITHOUT a batch dimension gets "
                  "flattened along the wrong axes")


# model_summary builds its rows with summary.LayerRow: refusing it refuses model_summary however
# the learner imported it.
_MODEL_SUMMARY = [(summary_module, "LayerRow")]
_NO_MODEL_SUMMARY = N_("your function used cnn_course.summary.model_summary; the exercise is "
                       "to walk the layers yourself")


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
        raise CaseFailed(tr("row {index} is {row!r}; each row should be a tuple "
                            "(class name, output shape, parameter count)", index=index, row=row),
                         diagnosed=True)
    kind, shape, params = row
    if not isinstance(shape, tuple | list | torch.Size) or not all(
            isinstance(v, int) for v in shape):
        raise CaseFailed(tr("row {index} has output shape {shape!r}; give a tuple of ints such "
                            "as tuple(x.shape[1:])", index=index, shape=shape), diagnosed=True)
    return kind, tuple(shape), params


def _table_shapes_text(rows: Sequence[tuple[str, tuple[int, ...], int]]) -> str:
    """The output shapes the exercise expects, batch dimension included, for a message."""
    shapes = ", ".join(f"{kind} {_shape_text((1, *shape))}" for kind, shape, _ in rows)
    return tr("the layers' outputs {shapes}", shapes=shapes)


def _diagnose_count(params: object, expected: int, layer: nn.Module, model: nn.Module,
                    where: str) -> None:
    """Name the mistake behind a wrong parameter count, if it is a known one."""
    weights_only = sum(p.numel() for n, p in layer.named_parameters() if n != "bias")
    trainable = sum(p.numel() for p in layer.parameters() if p.requires_grad)
    buffers = dict(layer.named_buffers())
    in_buffers = sum(b.numel() for b in buffers.values())
    if buffers and params in (expected + in_buffers, in_buffers):
        names = ", ".join(buffers)
        raise CaseFailed(tr("{where}: {params} counts the layer's buffers ({names}: "
                            "{in_buffers} values). Buffers are statistics the layer keeps, not "
                            "parameters: nothing learns them, although state_dict() lists "
                            "them. Count layer.parameters() only: {expected}",
                            where=where, params=params, names=names, in_buffers=in_buffers,
                            expected=expected), diagnosed=True)
    if trainable != expected and params == trainable:
        raise CaseFailed(tr("{where}: {params} leaves out the frozen parameters "
                            "(requires_grad=False). Frozen parameters are still parameters, "
                            "training only leaves them alone: count every tensor in "
                            "layer.parameters(), {expected}",
                            where=where, params=params, expected=expected), diagnosed=True)
    if expected != weights_only and params == weights_only:
        raise CaseFailed(tr("{where}: {params} parameters counts the weights only; the bias "
                            "adds {bias}", where=where, params=params,
                            bias=expected - weights_only), diagnosed=True)
    total = sum(p.numel() for p in model.parameters())
    if total != expected and params == total:
        raise CaseFailed(tr("{where}: {params} is the whole model's count; count the parameters "
                            "of this layer alone, layer.parameters()", where=where,
                            params=params), diagnosed=True)


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
                with forbid(_MODEL_SUMMARY, translated(_NO_MODEL_SUMMARY)):
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
                        raise CaseFailed(tr("your code raised {error_type}: {error}. "
                                            "That is what happens without a batch dimension: "
                                            "{advice}", error_type=type(error).__name__,
                                            error=error, advice=translated(_RUN_BATCHED)),
                                         diagnosed=True) from None
            if not isinstance(got, list | tuple):
                raise CaseFailed(tr("returned a {type_name}; return a list with one "
                                    "tuple per layer", type_name=type(got).__name__),
                                 diagnosed=True)
            if len(got) != len(expected):
                raise CaseFailed(tr("your table has {rows} rows, but the model has "
                                    "{layers} layers: one row per layer, in order",
                                    rows=len(got), layers=len(expected)), diagnosed=True)
            rows = [_as_row(row, i) for i, row in enumerate(got)]
            for i, ((kind, shape, params), (kind_e, shape_e, params_e), layer) in enumerate(
                    zip(rows, expected, model, strict=True)):
                where = tr("row {i} ({kind})", i=i, kind=kind_e)
                if kind != kind_e:
                    raise CaseFailed(tr("{where}: the first entry is {got!r}; give the layer's "
                                        "class name, type(layer).__name__, here {expected!r}",
                                        where=where, got=kind, expected=kind_e), diagnosed=True)
                if shape != shape_e:
                    batch_kept = shape == (1, *shape_e)
                    unbatched_run = unbatched is not None and shape in (unbatched[i],
                                                                        unbatched[i][1:])
                    if batch_kept and unbatched_run:
                        raise CaseFailed(tr("{where}: shape {got}, expected {expected}. Either "
                                            "the shapes still hold the batch dimension (leave it "
                                            "out), or the model ran on an image without one: "
                                            "{advice}", where=where, got=shape, expected=shape_e,
                                            advice=translated(_RUN_BATCHED)), diagnosed=True)
                    if batch_kept:
                        raise CaseFailed(tr("{where}: shape {got} includes the batch dimension; "
                                            "leave it out: {expected}", where=where, got=shape,
                                            expected=shape_e), diagnosed=True)
                    if unbatched_run:
                        raise CaseFailed(tr("{where}: shape {got}, expected {expected}: "
                                            "{advice}", where=where, got=shape, expected=shape_e,
                                            advice=translated(_RUN_BATCHED)), diagnosed=True)
                    raise CaseFailed(tr("{where}: output shape {got}, expected {expected}",
                                        where=where, got=shape, expected=shape_e))
                if params != params_e:
                    _diagnose_count(params, params_e, layer, model, where)
                    raise CaseFailed(tr("{where}: {got!r} parameters, expected {expected}",
                                        where=where, got=params, expected=params_e))
        cases.append(Case(tr("{description}, input {input_shape}",
                             description=translated(description), input_shape=input_shape), run))
    return cases


# ---- Exercise 5: hand-made features ---------------------------------------------------------

_INK_CONFIGS = [  # description, (N, H, W), grid
    (N_("one 4x4 image, 2x2 grid"), (1, 4, 4), 2),
    (N_("three 28x28 digits, 4x4 grid"), (3, 28, 28), 4),
    (N_("28x28, 7x7 grid"), (2, 28, 28), 7),
    (N_("a 1x1 grid is the mean of the image"), (2, 28, 28), 1),
    (N_("non-square 12x8 images, 4x4 grid of 3x2 cells"), (2, 12, 8), 4),
    (N_("a 28x28 grid gives the pixels themselves"), (1, 28, 28), 28),
]


# Shapes and grids that only the hidden cases use.
_HIDDEN_INK_CONFIGS = [
    (N_("five 30x20 images, 5x5 grid of 6x4 cells"), (5, 30, 20), 5),
    (N_("a 6x6 grid of 2x5 cells"), (3, 12, 30), 6),
    (N_("one 18x18 image, 3x3 grid"), (1, 18, 18), 3),
    (N_("a 2x2 grid of 9x9 cells"), (4, 18, 18), 2),
]


def _pooled(images: torch.Tensor, cell: tuple[int, int]) -> torch.Tensor:
    return F.avg_pool2d(images[:, None], cell)[:, 0]


def ink_features_cases(fn: Callable[..., torch.Tensor], hidden: bool = False) -> list[Case]:
    generator = torch.Generator().manual_seed(case_seed(4, hidden, "ink_features"))
    cases = []
    configs = list(_INK_CONFIGS) + [(N_("blank paper gives 0 everywhere"), (2, 8, 8), 4),
                                    (N_("solid ink gives 1 everywhere"), (2, 8, 8), 2)]
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
            features = _shape_text((n, grid * grid))
            got = as_tensor(_call_reshaping(
                lambda: fn(images.clone(), grid),
                tr("features {features} from images {images}", features=features,
                   images=_shape_text((n, height, width))),
                tr("split each axis into cells first, {cells}, average dimensions 2 and 4, "
                   "then reshape the {n} x {grid} x {grid} means to {features}",
                   cells=cells, n=n, grid=grid, features=features)),
                N_("the output"))
            if tuple(got.shape) == (n, grid, grid):
                raise CaseFailed(tr("the output has shape {got}: flatten the grid "
                                    "into one row of {count} features per image",
                                    got=tuple(got.shape), count=grid * grid), diagnosed=True)
            cells_if_grid_were_cell_size = (height // grid) * (width // grid)
            if got.dim() == 2 and got.shape[0] == n and \
                    got.shape[1] == cells_if_grid_were_cell_size != grid * grid:
                raise CaseFailed(tr("the output has {count} features: `grid` is the "
                                    "number of cells along each side, not the size of a cell",
                                    count=got.shape[1]), diagnosed=True)
            try:
                expect_close(got, expected, N_("the features"))
            except CaseFailed as failure:
                got64 = got.detach().double()
                if torch.allclose(got64, grid_map.transpose(1, 2).reshape(n, -1).double(),
                                  atol=1e-5):
                    raise CaseFailed(tr("the cells are in the wrong order: go row by row, so "
                                        "that cell (r, c) is feature r * grid + c"),
                                     diagnosed=True) from None
                if torch.allclose(got64, expected.double() * cell[0] * cell[1], atol=1e-4):
                    raise CaseFailed(tr("you summed each cell; the share of ink is the MEAN over "
                                        "the cell's {pixels} pixels, between 0 and 1",
                                        pixels=cell[0] * cell[1]), diagnosed=True) from None
                raise failure from None
        cases.append(Case(tr("{description} (images {shape}, grid {grid})",
                             description=translated(description), shape=tuple(shape),
                             grid=grid), run))
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
            got = as_tensor(fn(labels.clone(), num_classes), N_("the targets"))
            n = len(labels)
            if tuple(got.shape) == (num_classes, n) and n != num_classes:
                raise CaseFailed(tr("the targets have shape {got}: one ROW per label, "
                                    "so [{n}, {num_classes}]", got=tuple(got.shape), n=n,
                                    num_classes=num_classes), diagnosed=True)
            if got.dim() == 2 and got.shape[0] == n and got.shape[1] != num_classes and n and \
                    got.shape[1] == int(labels.max()) + 1:
                raise CaseFailed(tr("the targets have {columns} columns (the largest label "
                                    "+ 1); there must be num_classes = {num_classes} columns "
                                    "whatever labels this batch holds", columns=got.shape[1],
                                    num_classes=num_classes), diagnosed=True)
            if tuple(got.shape) == tuple(expected.shape) and not got.is_floating_point():
                raise CaseFailed(tr("the targets have dtype {dtype}; loss functions compare "
                                    "them with probabilities, so return floats (.float())",
                                    dtype=got.dtype), diagnosed=True)
            try:
                expect_close(got, expected, N_("the targets"))
            except CaseFailed as failure:
                for shift in (-1, 1):
                    moved = (labels + shift) % num_classes  # -1 wraps round, as indexing does
                    if torch.equal(got.detach().float(), F.one_hot(moved, num_classes).float()):
                        raise CaseFailed(tr("each 1 sits at position label {shift:+d}: class "
                                            "k goes in column k (classes count from 0)",
                                            shift=shift), diagnosed=True) from None
                raise failure from None
        cases.append(Case(tr("labels {labels}, num_classes {num_classes}", labels=labels_list,
                             num_classes=num_classes), run))
    return cases


EXERCISES = Exercises({
    "linear_params": Exercise(
        linear_params_cases, N_("all {n} layers agree with nn.Linear."),
        N_("a Linear(in, out) layer has an out x in weight matrix and one bias per output.")),
    "mlp_params": Exercise(
        mlp_params_cases, N_("all {n} networks agree with a stack of nn.Linear layers."),
        N_("add up linear_params(a, b) over consecutive pairs of sizes (a, b).")),
    "flatten_size": Exercise(
        flatten_size_cases, N_("all {n} cases agree with the real layers."),
        N_("track (C, H, W) layer by layer: a conv sets C to its out_channels, a pool keeps C, "
           "and both map H and W by (n + 2p - k) // s + 1; the answer is C * H * W.")),
    "layer_table": Exercise(
        layer_table_cases, N_("all {n} models match the layers' real shapes and counts."),
        N_("start from x = torch.zeros(1, *input_shape); for each layer, x = layer(x), then "
           "record type(layer).__name__, tuple(x.shape[1:]) and the sum of p.numel() over "
           "layer.parameters().")),
    "ink_features": Exercise(
        ink_features_cases, N_("all {n} cases match PyTorch's average pooling."),
        N_("reshape [N, H, W] to [N, grid, H // grid, grid, W // grid], take the mean over "
           "dimensions 2 and 4, then reshape to [N, grid * grid].")),
    "one_hot": Exercise(
        one_hot_cases, N_("all {n} cases match F.one_hot."),
        N_("start from torch.zeros(len(labels), num_classes) and set a 1 in column labels[i] "
           "of each row i.")),
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
