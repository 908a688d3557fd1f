"""Checkers for Chapter 7: LeNet-5 on MNIST.

Each ``check_*`` function prints one verdict line; each ``*_cases`` function lists the cases,
so that a grader can run them with other seeds (``hidden=True``).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable
from numbers import Integral, Real
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cnn_course.checks.core import (
    Case,
    CaseFailed,
    Exercise,
    Exercises,
    MethodViolation,
    case_seed,
    observed,
    report,
)
from cnn_course.messages import N_, tr, translated
from cnn_course.models import LeNet5 as CourseLeNet5
from cnn_course.summary import model_summary

ROW_NAMES = ("C1", "S2", "C3", "S4", "C5", "F6", "output")
_TABLE_KINDS = {"Conv2d", "MaxPool2d", "AvgPool2d", "Linear"}


# ---- the layer table ------------------------------------------------------------------------

def _expected_table(input_size: int, num_classes: int) -> list[tuple[str, tuple[int, ...], int]]:
    """The table read off a real network with ``model_summary`` (no padding on C1)."""
    model = CourseLeNet5(num_classes=num_classes, input_size=input_size)
    rows = [r for r in model_summary(model, (1, input_size, input_size)).rows
            if r.kind in _TABLE_KINDS]
    return [(name, row.output_shape, row.params) for name, row in zip(ROW_NAMES, rows,
                                                                      strict=True)]


def _normalise_table(got: object) -> list[tuple[str, tuple[int, ...], int]]:
    """Turn the learner's rows into (name, shape, params), or explain what is wrong."""
    if not isinstance(got, list | tuple):
        raise CaseFailed(tr("your function returned a {type_name}; return a list of "
                            "rows (name, output_shape, params)", type_name=type(got).__name__),
                         diagnosed=True)
    if len(got) != len(ROW_NAMES):
        raise CaseFailed(tr("your table has {got} rows; LeNet-5 has {expected}: "
                            "{names} (no row for the input or for activations)",
                            got=len(got), expected=len(ROW_NAMES), names=", ".join(ROW_NAMES)),
                         diagnosed=True)
    rows = []
    for index, row in enumerate(got):
        name = ROW_NAMES[index]
        if not isinstance(row, list | tuple) or len(row) != 3:
            raise CaseFailed(tr("row {index} ({name}) is {row!r}; each row should be "
                                "(name, output_shape, params)", index=index, name=name, row=row),
                             diagnosed=True)
        _, shape, params = row
        if not isinstance(shape, list | tuple | torch.Size) or not all(
                isinstance(v, Integral) and not isinstance(v, bool) for v in shape):
            raise CaseFailed(tr("the output shape of {name} is {shape!r}; give it as a tuple "
                                "of ints without the batch axis, e.g. (6, 28, 28)",
                                name=name, shape=shape), diagnosed=True)
        if isinstance(params, float):
            raise CaseFailed(tr("the parameter count of {name} is {params!r}, a float; counts "
                                "are whole numbers (use // for divisions)",
                                name=name, params=params), diagnosed=True)
        if not isinstance(params, Integral) or isinstance(params, bool):
            raise CaseFailed(tr("the parameter count of {name} is {params!r}; expected an int",
                                name=name, params=params), diagnosed=True)
        rows.append((name, tuple(int(v) for v in shape), int(params)))
    return rows


def _diagnose_shape(name: str, got: tuple[int, ...], expected: tuple[int, ...],
                    previous: tuple[int, ...], input_size: int) -> str:
    size_before = previous[-1] if len(previous) == 3 else input_size
    if name == "C1" and got[1:] == (input_size, input_size):
        return tr("C1 gives {got}, but a 5x5 kernel without padding fits only "
                  "{size} - 5 + 1 = {fits} times along each axis",
                  got=got, size=input_size, fits=input_size - 4)
    if name in ("S2", "S4") and got[1:] == previous[1:]:
        return tr("{name} gives {got}: 2x2 pooling with stride 2 halves height and width "
                  "({before} -> {after})", name=name, got=got, before=size_before,
                  after=size_before // 2)
    if name in ("S2", "S4") and len(got) == 3 and got[1] == -(-size_before // 2):
        return tr("{name} gives {got}: pooling sizes round down, "
                  "floor({before} / 2) = {after}", name=name, got=got, before=size_before,
                  after=size_before // 2)
    if name == "C3" and len(got) == 3 and got[0] == 16 and got[1] == size_before:
        return tr("C3 gives {got}, but its 5x5 kernels shrink {before} to {after}",
                  got=got, before=size_before, after=size_before - 4)
    if name == "C5" and len(got) == 1 and got[0] == math.prod(previous):
        return tr("the C5 row shows {got}, the flattened input of C5; the row should show its "
                  "output, 120 values", got=got)
    return ""


def _diagnose_params(name: str, got: int, expected: int, shape_in: tuple[int, ...],
                     shape_out: tuple[int, ...], input_size: int) -> str:
    if name in ("S2", "S4"):
        return tr("{name} has {got} parameters in your table; PyTorch's pooling layers have "
                  "none (the 1998 paper's subsampling layers did have 2 per map, but this table "
                  "describes nn.MaxPool2d)", name=name, got=got)
    if name == "C3" and got == 16 * (5 * 5 + 1):
        return tr("C3 has 416 parameters in your table: that is 16 x (5x5 + 1), the mistake "
                  "behind the 59,706 total in popular write-ups. Each C3 kernel spans all 6 maps "
                  "of S2, so C3 has 16 x (6x5x5 + 1) = 2,416 parameters")
    if got == expected - shape_out[0]:
        return tr("{name} has {got:,} parameters in your table, which leaves out its "
                  "{biases} biases (one per output)", name=name, got=got, biases=shape_out[0])
    if name == "C5" and input_size != 32 and got == 400 * 120 + 120:
        flat = math.prod(shape_in)
        return tr("C5 has {got:,} parameters in your table, the count for 32x32 inputs; with "
                  "{size}x{size} inputs S4 gives {shape_in}, so C5 has "
                  "{flat} x 120 + 120 = {expected:,}", got=got, size=input_size,
                  shape_in=shape_in, flat=flat, expected=flat * 120 + 120)
    return ""


def layer_table_cases(fn: Callable[..., object], hidden: bool = False) -> list[Case]:
    configs = [(32, 10), (28, 10), (30, 10), (36, 26)]
    if hidden:
        generator = torch.Generator().manual_seed(case_seed(77, hidden, "lenet_layer_table"))
        configs += [(40, 47), (64, 2)]
        configs += [(int(n), int(k)) for n, k in zip(
            torch.randint(16, 70, (4,), generator=generator),
            torch.randint(2, 100, (4,), generator=generator), strict=True)]
    cases = []
    for input_size, num_classes in configs:
        def run(input_size=input_size, num_classes=num_classes) -> None:
            got = _normalise_table(fn(input_size=input_size, num_classes=num_classes))
            expected = _expected_table(input_size, num_classes)
            if input_size != 32:
                table_for_32 = _expected_table(32, num_classes)
                if [r[1:] for r in got] == [r[1:] for r in table_for_32]:
                    raise CaseFailed(tr("for input_size={size} your table is the one for "
                                        "32x32 inputs: compute the sizes from input_size "
                                        "instead of typing them", size=input_size),
                                     diagnosed=True)
            previous: tuple[int, ...] = (1, input_size, input_size)
            for (name, shape, params), (_, want_shape, want_params) in zip(got, expected,
                                                                          strict=True):
                if shape != want_shape:
                    why = _diagnose_shape(name, shape, want_shape, previous, input_size)
                    raise CaseFailed(why or tr("the output shape of {name} is {got}, expected "
                                               "{expected}", name=name, got=shape,
                                               expected=want_shape), diagnosed=bool(why))
                if params != want_params:
                    why = _diagnose_params(name, params, want_params, previous, want_shape,
                                           input_size)
                    raise CaseFailed(why or tr("{name} has {got:,} parameters in your table, "
                                               "but the real layer has {expected:,}",
                                               name=name, got=params, expected=want_params),
                                     diagnosed=bool(why))
                previous = want_shape
        cases.append(Case(f"input_size={input_size}, num_classes={num_classes}", run))
    return cases


# ---- the LeNet-5 module ---------------------------------------------------------------------

_NO_PADDING = N_("C1 has no padding, so on 28x28 digits it gives 24x24 maps and S4 gives "
                 "16x4x4 = 256 values per image instead of 16x5x5 = 400. Give C1 padding=2 (or "
                 "pad the images to 32x32)")
# What C5 receives, said once for every message about it.
_C5_INPUT = N_("16*5*5 = 400 features per image: S4's maps for a 32x32 input, or for a 28x28 "
               "digit with padding=2 on C1")


def _s4_size(convs: list[tuple[nn.Conv2d, tuple[int, ...]]]) -> str:
    """What S4 handed on in this forward pass, from C3's output shape, e.g. '16x5x5 = 400'."""
    if len(convs) < 2 or len(convs[-1][1]) != 3:
        return ""
    channels, height, width = convs[-1][1]
    return f"{channels}x{height // 2}x{width // 2} = {channels * (height // 2) * (width // 2)}"
_EXPECTED_PARAMS = {"C1": 156, "C3": 2416, "C5": 48120, "F6": 10164, "output": 850}


def _build(fn: Callable[..., nn.Module], **kwargs) -> nn.Module:
    try:
        model = fn(**kwargs)
    except TypeError as error:
        if kwargs and "num_classes" in str(error):
            raise CaseFailed(tr("LeNet5(num_classes={classes}) failed: accept "
                                "num_classes as an argument of __init__ and use it for the last "
                                "layer", classes=kwargs["num_classes"]), diagnosed=True) from None
        raise
    if not isinstance(model, nn.Module):
        raise CaseFailed(tr("LeNet5() gave a {type_name}, not an nn.Module",
                            type_name=type(model).__name__), diagnosed=True)
    return model


class _Recorder:
    """Forward hooks that record what each Conv2d and Linear layer sees and returns, and
    explain a shape error at the layer where it happens."""

    def __init__(self, model: nn.Module) -> None:
        self.convs: list[tuple[nn.Conv2d, tuple[int, ...]]] = []
        self.linears: list[tuple[nn.Linear, tuple[int, ...]]] = []
        self.handles = []
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                self.handles.append(module.register_forward_pre_hook(self._before))
                self.handles.append(module.register_forward_hook(self._after))

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()

    def _before(self, module: nn.Module, inputs: tuple) -> None:
        x = inputs[0]
        if isinstance(module, nn.Conv2d):
            if x.dim() == 4 and x.shape[1] != module.in_channels:
                if self.convs and module.in_channels == 1 and x.shape[1] == 6:
                    raise CaseFailed(tr(
                        "C3 is nn.Conv2d(1, 16, 5), but S2 hands it 6 maps: each C3 kernel spans "
                        "all 6 of them, so C3 is nn.Conv2d(6, 16, 5) with 16 x (6x5x5 + 1) = "
                        "2,416 parameters, not 16 x (5x5 + 1) = 416"), diagnosed=True)
                raise CaseFailed(tr("a Conv2d layer expects {expected} input channels "
                                    "but receives {got}", expected=module.in_channels,
                                    got=x.shape[1]), diagnosed=True)
            return
        if self.linears:  # F6 and the output layer: their input is the previous layer's output
            if x.shape[-1] != module.in_features:
                raise CaseFailed(tr("a Linear layer expects {expected} inputs but the "
                                    "layer before it gives {got}", expected=module.in_features,
                                    got=x.shape[-1]), diagnosed=True)
            return
        if x.dim() == 1:
            raise CaseFailed(tr("the first Linear layer (C5) receives a tensor of shape "
                                "{shape}: you flattened the batch axis too; "
                                "x.flatten(1) keeps it, giving [N, 400]", shape=tuple(x.shape)),
                             diagnosed=True)
        if x.dim() > 2:
            raise CaseFailed(tr("the first Linear layer (C5) receives a tensor of shape "
                                "{shape}: flatten the maps first, x.flatten(1) turns "
                                "[N, 16, 5, 5] into [N, 400]", shape=tuple(x.shape)),
                             diagnosed=True)
        if x.shape[-1] == module.in_features:
            return
        if self.c1_unpadded():
            raise CaseFailed(tr("shape error at C5: it is built for {expected} inputs "
                                "but gets {got} per image. {no_padding}",
                                expected=module.in_features, got=x.shape[-1],
                                no_padding=translated(_NO_PADDING)), diagnosed=True)
        if x.shape[-1] == 400:
            raise CaseFailed(tr("wrong flatten size: your first Linear layer (C5) is built for "
                                "{expected} features, but it receives {c5_input}; "
                                "C5 is nn.Linear(16 * 5 * 5, 120)", expected=module.in_features,
                                c5_input=translated(_C5_INPUT)), diagnosed=True)
        raise CaseFailed(tr("wrong flatten size: S4 hands on {got} values per image and "
                            "your first Linear layer is built for {expected}, but in "
                            "LeNet-5 C5 receives {c5_input}; compare C1 and C3 with the table "
                            "of Exercise 1", got=x.shape[-1], expected=module.in_features,
                            c5_input=translated(_C5_INPUT)), diagnosed=True)

    def c1_unpadded(self) -> bool:
        return bool(self.convs) and self.convs[0][1][-1] == 24

    def _after(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        target = self.convs if isinstance(module, nn.Conv2d) else self.linears
        target.append((module, tuple(output.shape[1:])))


_Weights = dict[str, torch.Tensor]  # "weight", and "bias" if the layer has one


class _Pass(NamedTuple):
    """A forward pass of the learner's model, as plain data."""

    out: torch.Tensor
    convs: list[tuple[int, ...]]    # the output shape (no batch axis) of each Conv2d that ran
    linears: list[tuple[int, ...]]  # the same for each Linear
    layers: list[_Weights]          # their weights, the convolutions first
    params: list[int]               # their parameter counts


def _forward(model: nn.Module, x: torch.Tensor) -> _Pass:
    # What the hooks see is no return value of the learner's code: observe it as one unit.
    return _Pass(*observed(lambda: _recorded_forward(model, x)))


def _weights(layer: nn.Module) -> _Weights:
    found = {"weight": layer.weight.detach().clone()}
    if layer.bias is not None:
        found["bias"] = layer.bias.detach().clone()
    return found


def _recorded_forward(model: nn.Module, x: torch.Tensor) -> tuple:
    recorder = _Recorder(model)
    try:
        with torch.no_grad():
            out = model(x)
    except RuntimeError as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if recorder.c1_unpadded():  # e.g. x.view(-1, 400) failing on 16x4x4 maps
            raise CaseFailed(tr("your forward pass failed ({detail}). {no_padding}",
                                detail=detail, no_padding=translated(_NO_PADDING)),
                             diagnosed=True) from None
        s4 = _s4_size(recorder.convs)
        if s4 and not recorder.linears and "invalid for input of size" in detail:
            found = (tr("S4 gives {s4} values per image, and C5, the first Linear layer, "
                        "takes all of them", s4=s4) if s4 == "16x5x5 = 400" else
                     tr("S4 gives {s4} values per image, but C5, the first Linear layer, "
                        "should receive {c5_input}", s4=s4, c5_input=translated(_C5_INPUT)))
            raise CaseFailed(tr("your forward pass failed while flattening ({detail}): "
                                "{found}. Flatten with x.flatten(1) (or x.view(x.size(0), -1)), "
                                "which keeps the batch axis and needs no typed size",
                                detail=detail, found=found), diagnosed=True) from None
        raise
    finally:
        recorder.close()
    if not isinstance(out, torch.Tensor):
        raise CaseFailed(tr("forward returned a {type_name}; return the logits tensor",
                            type_name=type(out).__name__), diagnosed=True)
    layers = [m for m, _ in recorder.convs] + [m for m, _ in recorder.linears]
    return (out, [shape for _, shape in recorder.convs], [shape for _, shape in recorder.linears],
            [_weights(m) for m in layers], [sum(p.numel() for p in m.parameters()) for m in layers])


def _parameter_owners(model: nn.Module) -> tuple[int, list[tuple[str, str, int]]]:
    """All of the model's parameters (frozen ones too: ``requires_grad=False`` does not make a
    parameter a buffer), and the layers other than Conv2d and Linear that own some, as
    (name, class name, count), the name "" for the model itself. Buffers, such as BatchNorm's
    running statistics, are not parameters and are not counted."""
    others = [(name, type(m).__name__, sum(p.numel() for p in m.parameters(recurse=False)))
              for name, m in model.named_modules() if not isinstance(m, nn.Conv2d | nn.Linear)]
    return (sum(p.numel() for p in model.parameters()),
            [(name, kind, count) for name, kind, count in others if count])


def _digits(count: int, seed: int) -> torch.Tensor:
    return torch.randn(count, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _same_weights_output(layers: list[_Weights], x: torch.Tensor,
                         activation: type[nn.Module] = nn.ReLU,
                         pooling: type[nn.Module] = nn.MaxPool2d) -> torch.Tensor:
    """The course's LeNet-5 with the learner's weights copied in, applied to ``x``."""
    reference = CourseLeNet5(num_classes=layers[-1]["weight"].shape[0], c1_padding=2,
                             activation=activation, pooling=pooling).eval()
    targets = [reference.c1, reference.c3, reference.c5, reference.f6, reference.output]
    with torch.no_grad():
        for target, layer in zip(targets, layers, strict=True):
            target.weight.copy_(layer["weight"])
            target.bias.copy_(layer["bias"])
        return reference(x)


def _relu_on_logits(layers: list[_Weights], x: torch.Tensor) -> torch.Tensor:
    return torch.relu(_same_weights_output(layers, x))


_FORWARD_MISTAKES: dict[str, Callable[[list[_Weights], torch.Tensor], torch.Tensor]] = {
    N_("your forward pass has no activation function: without ReLU the five layers (and the "
       "pooling) compute little more than one linear map; put F.relu after C1, C3, C5 and F6"):
        lambda layers, x: _same_weights_output(layers, x, activation=nn.Identity),
    N_("your forward pass applies ReLU to the output layer too: the logits must be able to be "
       "negative, so leave the last layer without an activation"): _relu_on_logits,
    N_("your forward pass uses tanh; the exercise asks for ReLU (tanh is closer to the 1998 "
       "paper, but trains more slowly here)"):
        lambda layers, x: _same_weights_output(layers, x, nn.Tanh),
    N_("your forward pass uses sigmoid; the exercise asks for ReLU, which does not saturate"):
        lambda layers, x: _same_weights_output(layers, x, nn.Sigmoid),
    N_("your forward pass uses average pooling; the exercise asks for max pooling "
       "(F.max_pool2d(x, 2))"):
        lambda layers, x: _same_weights_output(layers, x, pooling=nn.AvgPool2d),
}


def lenet5_cases(fn: Callable[..., nn.Module], hidden: bool = False) -> list[Case]:
    seed = case_seed(0, hidden, "lenet5")

    def builds() -> None:
        _build(fn)

    def forward_batch(batch: int) -> Callable[[], None]:
        def run() -> None:
            out = _forward(_build(fn), _digits(batch, seed)).out
            if tuple(out.shape) != (batch, 10):
                raise CaseFailed(tr("the output has shape {got}, expected "
                                    "({batch}, 10): one score per class and image",
                                    got=tuple(out.shape), batch=batch))
        return run

    def layer_shapes() -> None:
        recorded = _forward(_build(fn), _digits(2, seed))
        convs, linears = recorded.convs, recorded.linears
        if len(convs) != 2 or len(linears) != 3:
            raise CaseFailed(tr("LeNet-5 has 2 convolution layers (C1, C3) and 3 Linear layers "
                                "(C5, F6, output); your forward pass used {convs} and "
                                "{linears}", convs=len(convs), linears=len(linears)),
                             diagnosed=True)
        if convs[0] == (6, 24, 24):
            raise CaseFailed(tr("C1 gives 6x24x24 maps: on 28x28 digits C1 needs padding=2 to "
                                "give the paper's 6x28x28"), diagnosed=True)
        for name, got, want in zip(("C1", "C3"), convs, [(6, 28, 28), (16, 10, 10)],
                                   strict=True):
            if got != want:
                raise CaseFailed(tr("{name} gives {got}, expected {expected}",
                                    name=name, got=got, expected=want))
        for name, got, want in zip(("C5", "F6", "output"), linears, [(120,), (84,), (10,)],
                                   strict=True):
            if got != want:
                raise CaseFailed(tr("{name} gives {got}, expected {expected}",
                                    name=name, got=got, expected=want))

    def parameter_counts() -> None:
        model = _build(fn)
        recorded = _forward(model, _digits(1, seed))
        for name, layer, count in zip(("C1", "C3", "C5", "F6", "output"), recorded.layers,
                                      recorded.params, strict=True):
            if "bias" not in layer:
                raise CaseFailed(tr("{name} has no bias (bias=False); LeNet-5's layers all have "
                                    "one bias per output", name=name), diagnosed=True)
            if count != _EXPECTED_PARAMS[name]:
                raise CaseFailed(tr("{name} has {got:,} parameters, expected {expected:,}",
                                    name=name, got=count, expected=_EXPECTED_PARAMS[name]))
        # observed: a model rebuilt from its forward pass would lack the unused parameters
        total, others = observed(lambda: _parameter_owners(model))
        if total != 61706:
            where = tr("; ").join(tr("{name} ({kind}) has {count:,}",
                                     name=name or tr("the model"), kind=kind, count=count)
                                  for name, kind, count in others)
            besides = tr(": besides the Conv2d and Linear layers, {where}", where=where) \
                if where else ""
            raise CaseFailed(tr("your model has {total:,} parameters in all, expected 61,706; "
                                "remove parameters that LeNet-5 does not have{besides}",
                                total=total, besides=besides), diagnosed=True)

    def samples_independent() -> None:
        model = _build(fn)
        model.eval()
        x = _digits(5, seed + 1)
        together = _forward(model, x).out
        alone = torch.cat([_forward(model, x[i:i + 1]).out for i in range(5)])
        if not torch.allclose(together, alone, atol=1e-4, rtol=1e-4):
            raise CaseFailed(tr("an image's scores change when other images are in the batch: "
                                "flatten with x.flatten(1) (or x.view(x.size(0), -1)) so that "
                                "the batch axis stays separate"), diagnosed=True)

    def logits_not_probabilities() -> None:
        out = _forward(_build(fn), _digits(6, seed + 2)).out
        if (out >= 0).all() and torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-4):
            raise CaseFailed(tr("your model ends with a softmax; return the raw scores "
                                "(logits): F.cross_entropy applies log-softmax itself"),
                             diagnosed=True)

    def computes_lenet5(**kwargs) -> None:
        model = _build(fn, **kwargs)
        model.eval()
        x = _digits(4, seed + 3)
        got, _, _, layers, _ = _forward(model, x)
        expected = _same_weights_output(layers, x)
        if torch.allclose(got, expected, atol=1e-5, rtol=1e-4):
            return
        for mistake, variant in _FORWARD_MISTAKES.items():
            if torch.allclose(got, variant(layers, x), atol=1e-5, rtol=1e-4):
                raise CaseFailed(translated(mistake), diagnosed=True)
        raise CaseFailed(tr("with your layers' own weights, LeNet-5 (ReLU after C1, C3, C5 and "
                            "F6, 2x2 max pooling after each ReLU'd convolution, nothing after the "
                            "output layer) gives other scores than your forward pass; compare "
                            "your forward with that order"))

    def other_class_count(classes: int = 26, batch: int = 3) -> None:
        out = _forward(_build(fn, num_classes=classes), _digits(batch, seed)).out
        if tuple(out.shape) != (batch, classes):
            raise CaseFailed(tr("LeNet5(num_classes={classes}) gives outputs of shape "
                                "{got}, expected ({batch}, {classes})", classes=classes,
                                got=tuple(out.shape), batch=batch))

    hidden_cases = [  # batch sizes and class counts that no visible case uses
        Case(N_("a batch of 7 digits [7, 1, 28, 28] gives logits [7, 10]"), forward_batch(7)),
        Case(N_("LeNet5(num_classes=47) on a batch of 5"), lambda: other_class_count(47, 5)),
        Case(N_("the forward pass of LeNet5(num_classes=47) (checked with your own weights)"),
             lambda: computes_lenet5(num_classes=47)),
    ]

    return [
        Case(N_("LeNet5() builds an nn.Module"), builds),
        Case(N_("a batch of 4 digits [4, 1, 28, 28] gives logits [4, 10]"), forward_batch(4)),
        Case(N_("a single digit [1, 1, 28, 28]"), forward_batch(1)),
        Case(N_("output shape of every layer"), layer_shapes),
        Case(N_("parameters per layer and 61,706 in all"), parameter_counts),
        Case(N_("each image's scores do not depend on the rest of the batch"),
             samples_independent),
        Case(N_("the outputs are logits"), logits_not_probabilities),
        Case(N_("the forward pass computes LeNet-5 (checked with your own weights)"),
             computes_lenet5),
        Case("LeNet5(num_classes=26)", other_class_count),
    ] + (hidden_cases if hidden else [])


# ---- the training loop ----------------------------------------------------------------------

def _tiny_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 3))


def _tiny_batches(seed: int, sizes: tuple[int, ...] = (8, 8, 8, 8, 5)
                  ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 1, 8, 8, generator=generator),
             torch.randint(0, 3, (n,), generator=generator)) for n in sizes]


def _train_variant(model: nn.Module, batches, optimizer, loss_fn, scheduler=None, *,
                   zero_grad: bool = True, step: bool = True, train_mode: bool = True,
                   max_batches: int | None = None, step_scheduler: bool = True
                   ) -> list[tuple[float, int, int]]:
    """The correct loop, or one with a single mistake switched on.

    Returns (loss, correct predictions, batch size) per batch, measured before its update."""
    if train_mode:
        model.train()
    record = []
    for index, (inputs, labels) in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        logits = model(inputs)
        loss = loss_fn(logits, labels)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if step:
            optimizer.step()
        if scheduler is not None and step_scheduler:
            scheduler.step()
        record.append((loss.item(), int((logits.argmax(1) == labels).sum()), len(labels)))
    return record


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().double() for k, v in model.state_dict().items()
            if v.is_floating_point()}


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4) for k in a)


def _first_difference(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> str:
    for key in want:
        if not torch.allclose(got[key], want[key], atol=1e-5, rtol=1e-4):
            return key
    return ""


def _as_number(value: object, what: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, Real) and not isinstance(value, bool):
        return float(value)
    raise CaseFailed(tr("{what} is {value!r}; expected a number", what=translated(what),
                        value=value), diagnosed=True)


_OptimizerFactory = Callable[[nn.Module], tuple[torch.optim.Optimizer,
                                                 torch.optim.lr_scheduler.LRScheduler | None]]


def _sgd(model: nn.Module):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), None


def _adam_one_cycle(model: nn.Module):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=5)


def _rmsprop_step_lr(model: nn.Module):
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.005, alpha=0.9)
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)


def _plain_sgd(model: nn.Module):
    return torch.optim.SGD(model.parameters(), lr=0.05), None


def train_one_epoch_cases(fn: Callable[..., object], hidden: bool = False) -> list[Case]:
    seed = case_seed(0, hidden, "train_one_epoch")

    def run_setting(make_optimizer: _OptimizerFactory, loss_fn: Callable, *,
                    check_return: bool, sizes: tuple[int, ...] = (8, 8, 8, 8, 5)) -> None:
        batches = _tiny_batches(seed, sizes)
        start = _tiny_model(seed)
        start.eval()  # as an evaluation before the epoch leaves it: the loop must call train()

        def fresh():
            model = copy.deepcopy(start)
            optimizer, scheduler = make_optimizer(model)
            return model, optimizer, scheduler

        model, optimizer, scheduler = fresh()
        args = (model, batches, optimizer, loss_fn) + ((scheduler,) if scheduler else ())
        try:
            returned = fn(*args)
        except TypeError as error:
            if "positional argument" in str(error) and scheduler is not None:
                raise CaseFailed(tr("your function does not accept a scheduler: add the "
                                    "parameter scheduler=None and call scheduler.step() after "
                                    "optimizer.step() when it is given"),
                                 diagnosed=True) from None
            raise

        reference, ref_opt, ref_sched = fresh()
        record = _train_variant(reference, batches, ref_opt, loss_fn, ref_sched)
        got, want = _state(model), _state(reference)
        if not _same_state(got, want):
            variants = {
                N_("the parameters did not change: call optimizer.step() after loss.backward() "
                   "(and do not zero the gradients between the two)"): {"step": False},
                N_("the gradients piled up from batch to batch: call optimizer.zero_grad() in "
                   "every iteration, before loss.backward()"): {"zero_grad": False},
                N_("the model stayed in evaluation mode (BatchNorm used its running "
                   "statistics): call model.train() before the loop"): {"train_mode": False},
                N_("only the first batch was used: return after the loop, not inside it"):
                    {"max_batches": 1},
                N_("the learning-rate schedule did not move: call scheduler.step() after "
                   "optimizer.step() when a scheduler is given"): {"step_scheduler": False},
            }
            if loss_fn is not F.cross_entropy:
                variants[N_("the loss is not the loss_fn argument: compute loss_fn(logits, "
                            "labels) instead of a fixed loss function")] = {"loss": F.cross_entropy}
            for explanation, change in variants.items():
                if "step_scheduler" in change and scheduler is None:
                    continue
                candidate, opt, sched = fresh()
                change = dict(change)
                variant_loss = change.pop("loss", loss_fn)
                with warnings.catch_warnings():  # a skipped step makes the scheduler warn
                    warnings.simplefilter("ignore")
                    _train_variant(candidate, batches, opt, variant_loss, sched, **change)
                if _same_state(got, _state(candidate)):
                    raise CaseFailed(translated(explanation), diagnosed=True)
            raise CaseFailed(tr("after one epoch, {name} differs from the reference run of "
                                "forward, loss, zero_grad, backward, step on every batch",
                                name=_first_difference(got, want)))
        if not check_return:
            return
        if not isinstance(returned, list | tuple) or len(returned) != 2:
            raise CaseFailed(tr("your function returned {returned!r}; return (mean loss, "
                                "accuracy), two numbers", returned=returned), diagnosed=True)
        mean_loss = _as_number(returned[0], N_("the returned mean loss"))
        accuracy = _as_number(returned[1], N_("the returned accuracy"))
        losses = [loss for loss, _, _ in record]
        sizes = [size for _, _, size in record]
        seen = sum(sizes)
        per_sample = sum(loss * size for loss, _, size in record) / seen
        if not math.isclose(mean_loss, per_sample, rel_tol=1e-4, abs_tol=1e-6):
            mistakes = {
                N_("you averaged the batch losses, but the last batch is smaller: weight each "
                   "batch's loss by its size and divide by the number of samples"):
                    sum(losses) / len(losses),
                N_("you returned the last batch's loss; return the mean over the epoch"):
                    losses[-1],
                N_("you returned the summed loss; divide by the number of samples"):
                    per_sample * seen,
            }
            for explanation, value in mistakes.items():
                if math.isclose(mean_loss, value, rel_tol=1e-4, abs_tol=1e-6):
                    raise CaseFailed(translated(explanation), diagnosed=True)
            raise CaseFailed(tr("the returned mean loss is {got:.6g}, expected {expected:.6g} "
                                "(batch loss times batch size, summed, divided by the number "
                                "of samples)", got=mean_loss, expected=per_sample))
        correct = sum(c for _, c, _ in record)
        expected = correct / seen
        if math.isclose(accuracy, expected, abs_tol=1e-6):
            return
        if math.isclose(accuracy, expected * 100, abs_tol=1e-6):
            raise CaseFailed(tr("the accuracy is {got:g}, a percentage; return a fraction "
                                "between 0 and 1", got=accuracy), diagnosed=True)
        if math.isclose(accuracy, correct, abs_tol=1e-6):
            raise CaseFailed(tr("the accuracy is {got:g}, the number of correct "
                                "predictions; divide by the number of samples", got=accuracy),
                             diagnosed=True)
        raise CaseFailed(tr("the returned accuracy is {got:.6g}, expected {expected:.6g} "
                            "(correct predictions over all samples, counted on each batch's "
                            "logits as the epoch goes)", got=accuracy, expected=expected))

    hidden_cases = [  # batch sizes, optimizers and losses that no visible case uses
        Case(N_("RMSprop with a StepLR scheduler, batches of 6, 11 and 3"),
             lambda: run_setting(_rmsprop_step_lr, F.cross_entropy, check_return=True,
                                 sizes=(6, 11, 3))),
        Case(N_("plain SGD and a class-weighted loss, batches of 13 and 2"),
             lambda: run_setting(_plain_sgd, nn.CrossEntropyLoss(
                 weight=torch.tensor([1.0, 2.0, 0.5])), check_return=True, sizes=(13, 2))),
    ]
    return [
        Case(N_("SGD with momentum, 5 batches, the last one smaller: parameters after the "
                "epoch"), lambda: run_setting(_sgd, F.cross_entropy, check_return=False)),
        Case(N_("the returned (mean loss, accuracy)"),
             lambda: run_setting(_sgd, F.cross_entropy, check_return=True)),
        Case(N_("Adam with a OneCycleLR scheduler stepped after every batch"),
             lambda: run_setting(_adam_one_cycle, F.cross_entropy, check_return=True)),
        Case(N_("a loss_fn with label smoothing"),
             lambda: run_setting(_sgd, nn.CrossEntropyLoss(label_smoothing=0.2),
                                 check_return=False)),
    ] + (hidden_cases if hidden else [])


# ---- evaluation -----------------------------------------------------------------------------

class _PatternModel(nn.Module):
    """Predicts the class written in each input (x[:, 0]) in eval mode, the next class in
    training mode; remembers whether gradients were enabled while it ran."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.scale = nn.Parameter(torch.tensor(5.0))
        self.norm = nn.BatchNorm1d(1)
        self.saw_gradients = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.saw_gradients |= torch.is_grad_enabled()
        self.norm(x[:, :1])  # updates its running statistics in training mode only
        shift = 1 if self.training else 0
        classes = (x[:, 0].long() + shift) % self.num_classes
        return F.one_hot(classes, self.num_classes).float() * self.scale


def _pattern_batches(n: int, batch_size: int, correct: int, seed: int):
    """Batches whose first ``correct`` samples the pattern model gets right, the rest wrong."""
    generator = torch.Generator().manual_seed(seed)
    predicted = torch.randint(0, 10, (n,), generator=generator)
    labels = predicted.clone()
    labels[correct:] = (predicted[correct:] + 3) % 10  # never the train-mode guess either
    x = torch.cat([predicted.float()[:, None], torch.randn(n, 3, generator=generator)], dim=1)
    return [(x[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, n, batch_size)]


def evaluate_accuracy_cases(fn: Callable[..., object], hidden: bool = False) -> list[Case]:
    configs = [(1000, 128, 700), (50, 50, 50), (300, 64, 0)]
    if hidden:
        configs += [(777, 100, 123), (65, 9, 33)]
    cases = []
    for n, batch_size, correct in configs:
        seed = case_seed(n, hidden, "evaluate_accuracy")

        def run(n=n, batch_size=batch_size, correct=correct, seed=seed) -> None:
            model = _PatternModel()
            model.train()  # as a training epoch leaves it
            batches = _pattern_batches(n, batch_size, correct, seed=seed)
            running_mean = model.norm.running_mean.clone()
            got = _as_number(fn(model, batches), N_("the returned accuracy"))
            expected = correct / n
            if model.saw_gradients:
                raise MethodViolation(tr("the model ran with gradients enabled: evaluate inside "
                                         "`with torch.no_grad():` (or decorate the function "
                                         "with @torch.no_grad()), which saves memory and time"))
            if not torch.equal(running_mean, model.norm.running_mean):
                raise MethodViolation(tr("BatchNorm's running statistics changed: call "
                                         "model.eval() before evaluating"))
            if math.isclose(got, expected, abs_tol=1e-9):
                return
            batch_means = [float((y == x[:, 0].long()).float().mean()) for x, y in batches]
            mistakes = {
                N_("the model was still in training mode: call model.eval() first (dropout and "
                   "BatchNorm behave differently in training)"): 0.0,
                N_("this is a percentage; return a fraction between 0 and 1"): expected * 100,
                N_("this is the number of correct predictions; divide by the number of "
                   "samples"): float(correct),
                N_("you averaged the per-batch accuracies, but the last batch is smaller: count "
                   "correct predictions over all batches and divide by the number of samples"):
                    sum(batch_means) / len(batch_means),
            }
            for explanation, value in mistakes.items():
                if math.isclose(got, value, abs_tol=1e-9) and not math.isclose(
                        value, expected, abs_tol=1e-9):
                    raise CaseFailed(tr("your function returned {got:g}: {explanation}",
                                        got=got, explanation=translated(explanation)),
                                     diagnosed=True)
            raise CaseFailed(tr("your function returned {got:.6g}, expected {expected:.6g}",
                                got=got, expected=expected))
        cases.append(Case(tr("{n} samples in batches of {batch_size}, {correct} predicted "
                             "correctly", n=n, batch_size=batch_size, correct=correct), run))

    model_seed = case_seed(3, hidden, "evaluate_accuracy model")
    data_seed = case_seed(11, hidden, "evaluate_accuracy data")

    def real_model() -> None:
        torch.manual_seed(model_seed)
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 10))
        generator = torch.Generator().manual_seed(data_seed)
        x = torch.randn(90, 1, 4, 4, generator=generator)
        y = torch.randint(0, 10, (90,), generator=generator)
        with torch.no_grad():
            expected = int((model(x).argmax(1) == y).sum()) / len(y)
        got = _as_number(fn(model, [(x[i:i + 32], y[i:i + 32]) for i in range(0, 90, 32)]),
                         N_("the returned accuracy"))
        if not math.isclose(got, expected, abs_tol=1e-9):
            raise CaseFailed(tr("a small linear model scores {expected:.6g}, your function "
                                "says {got:.6g}; the prediction is the argmax over the class "
                                "axis (dim=1)", expected=expected, got=got))
    cases.append(Case(N_("a linear model on random data"), real_model))
    return cases


EXERCISES = Exercises({
    "lenet_layer_table": Exercise(
        layer_table_cases, N_("all {n} tables agree with the real network."),
        N_("a 5x5 convolution without padding takes 4 off each side length, 2x2 pooling halves "
           "it (rounding down); a convolution has k*k*c_in*c_out + c_out parameters, a Linear "
           "layer in*out + out, pooling none.")),
    "lenet5": Exercise(
        lenet5_cases, N_("shapes, 61,706 parameters and a forward pass all match LeNet-5 "
                         "({n} cases)."),
        N_("C1 = Conv2d(1, 6, 5, padding=2), pool, C3 = Conv2d(6, 16, 5), pool, flatten to "
           "400, then Linear 400->120->84->num_classes, with ReLU after each layer but the "
           "last.")),
    "train_one_epoch": Exercise(
        train_one_epoch_cases, N_("all {n} training runs match the reference step by step."),
        N_("for each batch: logits = model(x); loss = loss_fn(logits, y); "
           "optimizer.zero_grad(); loss.backward(); optimizer.step(); then scheduler.step() if "
           "there is one.")),
    "evaluate_accuracy": Exercise(
        evaluate_accuracy_cases, N_("all {n} cases give the right accuracy, in eval mode and "
                                    "without gradients."),
        N_("model.eval(), then under torch.no_grad() count (model(x).argmax(1) == y) over all "
           "batches and divide by the number of samples.")),
})
run_check = EXERCISES.run_check


def check_lenet_layer_table(fn: Callable[..., object]) -> None:
    """Compare the learner's layer table with a real LeNet-5 for several input sizes."""
    report(run_check("lenet_layer_table", fn))


def check_lenet5(fn: Callable[..., nn.Module]) -> None:
    """Build the learner's LeNet-5 and check shapes, parameter counts and forward passes."""
    report(run_check("lenet5", fn))


def check_train_one_epoch(fn: Callable[..., object]) -> None:
    """Run the learner's training epoch on a tiny problem and compare it step by step."""
    report(run_check("train_one_epoch", fn))


def check_evaluate_accuracy(fn: Callable[..., object]) -> None:
    """Run the learner's evaluation on models whose accuracy is known."""
    report(run_check("evaluate_accuracy", fn))
