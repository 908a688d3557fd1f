"""Checkers for Chapter 2: activation functions, their derivatives, softmax, vanishing gradients.

Values are compared with PyTorch's own functions (``torch.relu``, ``torch.sigmoid``,
``torch.tanh``, ``F.leaky_relu``, ``torch.softmax``) and derivatives with autograd, on ordinary
numbers, exactly zero, batches of several dimensions, ±1000 and ±inf. At x = 0, where ReLU and
Leaky ReLU have no derivative, the checkers expect PyTorch's autograd convention: the branch for
x <= 0 (relu'(0) = 0, leaky_relu'(0) = negative_slope).

Each ``check_*`` function prints one verdict line; each ``*_cases`` function lists the cases, so
that a grader can run them with other seeds (``hidden=True``).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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

TensorFn = Callable[..., torch.Tensor]
INF = float("inf")

# ---- refusing built-ins while the learner's code runs ---------------------------------------

_BUILTINS: dict[str, list[tuple[Any, str]]] = {
    "relu": [(torch, "relu"), (F, "relu"), (torch.Tensor, "relu")],
    "sigmoid": [(torch, "sigmoid"), (F, "sigmoid"), (torch.Tensor, "sigmoid"),
                (torch.special, "expit")],
    "tanh": [(torch, "tanh"), (F, "tanh"), (torch.Tensor, "tanh")],
    "leaky_relu": [(F, "leaky_relu")],
    "softmax": [(torch, "softmax"), (F, "softmax"), (torch.Tensor, "softmax"),
                (torch.special, "softmax"), (torch, "log_softmax"), (F, "log_softmax"),
                (torch.Tensor, "log_softmax"), (torch.special, "log_softmax")],
    "autograd": [(torch.Tensor, "backward"), (torch.autograd, "grad"),
                 (torch.autograd, "backward")],
}


def _forbid(group: str | None) -> contextlib.AbstractContextManager[None]:
    """Refuse the named group of PyTorch functions while the learner's code runs."""
    if group is None:
        return contextlib.nullcontext()
    if group == "autograd":
        message = tr("your function used autograd; the exercise is to write the derivative's "
                     "formula yourself (autograd is what the checker compares with)")
    else:
        message = tr("your function called PyTorch's built-in {group}; the exercise is to "
                     "compute it yourself from elementary operations (torch.exp, torch.where, "
                     "clamp, comparisons, sums)", group=group)
    return forbid(_BUILTINS[group], message)


def _call(fn: Callable, *args, **kwargs) -> Any:
    """Call the learner's function; turn Python's 'ambiguous truth value' into advice."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError as error:
        if "ambiguous" not in str(error):
            raise
        raise CaseFailed(tr("your code used a tensor with several values as a single truth "
                            "value (Python's if, max(), min() or `and` compare one number at a "
                            "time); use elementwise tensor operations instead, such as "
                            "torch.where(x > 0, a, b), x.clamp(min=0) or torch.maximum"),
                         diagnosed=True) from None


# ---- elementwise functions and their derivatives --------------------------------------------

def _inputs(hidden: bool, salt: str) -> list[tuple[str, torch.Tensor]]:
    """Inputs for elementwise cases, from ordinary to extreme."""
    generator = torch.Generator().manual_seed(case_seed(2, hidden, salt))
    few = (torch.tensor([-3.0, -1.0, -0.5, 0.25, 1.0, 3.0]) if not hidden
           else torch.randn(9, generator=generator) * 2)
    batch_shape = (3, 2, 4, 6) if hidden else (4, 3, 5, 5)
    inputs = [
        (N_("a few numbers on both sides of zero"), few),
        (N_("exactly zero, between -2 and 2"), torch.tensor([-2.0, 0.0, 2.0])),
        (tr("a batch of feature maps {shape}", shape=list(batch_shape)),
         torch.randn(batch_shape, generator=generator) * 3),
        (N_("a non-square [2, 7, 3] tensor"), torch.randn(2, 7, 3, generator=generator) * 3),
        (N_("large inputs, -1000 to 1000"),
         torch.tensor([-1000.0, -100.0, -30.0, 30.0, 100.0, 1000.0])),
        (N_("infinite inputs, -inf and inf"), torch.tensor([-INF, INF])),
    ]
    if hidden:
        inputs.append((N_("float64 inputs"), torch.randn(5, 4, generator=generator,
                                                          dtype=torch.float64) * 10))
    return inputs


def _autograd_derivative(fn: TensorFn, x: torch.Tensor, **kwargs) -> torch.Tensor:
    leaf = x.detach().clone().requires_grad_(True)
    fn(leaf, **kwargs).sum().backward()
    return leaf.grad


def _matches(got: torch.Tensor, candidate: torch.Tensor, where: torch.Tensor | None = None
             ) -> bool:
    got, candidate = got.detach().double(), candidate.detach().double()
    if got.shape != candidate.shape:
        return False
    close = torch.isclose(got, candidate, atol=1e-4, rtol=1e-4, equal_nan=True)
    return bool(close.all() if where is None else close[where].all())


def _broken_values(got: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """Where the learner produced nan, or an infinity where PyTorch's answer is finite."""
    got, expected = got.detach().double(), expected.detach().double()
    return ((torch.isnan(got) & ~torch.isnan(expected))
            | (torch.isinf(got) & torch.isfinite(expected)))


def _mask_product_advice(x: torch.Tensor, bad: torch.Tensor) -> str:
    if bad.any() and torch.isinf(x[bad]).all():
        value = x[bad].flatten()[0].item()
        return tr("your output is nan at x = {value:g}: multiplying by a 0/1 mask such as "
                  "(x > 0) turns inf · 0 into nan; choose between values with torch.where "
                  "(or clamp) instead", value=value)
    return ""


def _expect_dtype_of(got: torch.Tensor, x: torch.Tensor) -> None:
    """An elementwise function returns numbers of x's own dtype, not booleans or integers."""
    if got.dtype == x.dtype:
        return
    if got.dtype == torch.bool:
        raise CaseFailed(tr("your function returned a bool tensor (True/False), such as "
                            "x > 0 gives; turn it into numbers of x's dtype with .to(x.dtype)"),
                         diagnosed=True)
    raise CaseFailed(tr("your function returned dtype {got}, but x is {expected}; return the "
                        "same dtype as x (for example with .to(x.dtype))",
                        got=got.dtype, expected=x.dtype), diagnosed=True)


@dataclass(frozen=True)
class _Elementwise:
    """What one elementwise exercise computes and how to explain its typical mistakes."""

    expected: Callable[..., torch.Tensor]         # PyTorch's answer for (x, **kwargs)
    forbidden: str | None                         # group of built-ins refused while it runs
    diagnose: Callable[[torch.Tensor, torch.Tensor, dict], str]
    slopes: tuple[dict, ...] = ({},)              # keyword arguments, one set per case


def _elementwise_cases(fn: TensorFn, name: str, hidden: bool) -> list[Case]:
    spec = _ELEMENTWISE[name]
    cases = []
    # a slope that only the hidden cases use (on every input), for the functions that take one
    slopes = spec.slopes + (_HIDDEN_SLOPES if hidden and spec.slopes != ({},) else ())
    for description, x in _inputs(hidden, name):
        for kwargs in slopes:
            def run(x=x, kwargs=kwargs) -> None:
                x_in = x.clone()
                with _forbid(spec.forbidden):
                    got = _call(fn, x_in, **kwargs)
                if not torch.equal(x_in, x):
                    raise CaseFailed(tr("your function changed its input tensor in place; "
                                        "return a new tensor and leave x as it was (for "
                                        "example x.clamp(min=0) instead of x[x < 0] = 0)"),
                                     diagnosed=True)
                got = as_tensor(got, N_("the output"))
                expected = spec.expected(x, **kwargs)
                expect_shape(got, tuple(expected.shape))
                _expect_dtype_of(got, x)
                try:
                    expect_close(got, expected)
                except CaseFailed as failure:
                    explanation = spec.diagnose(x, got, kwargs)
                    raise CaseFailed(explanation or str(failure),
                                     diagnosed=bool(explanation)) from None
            shown = description
            if kwargs:
                shown = tr("{case}, {arguments}", case=translated(description),
                           arguments=", ".join(f"{k}={v}" for k, v in kwargs.items()))
            cases.append(Case(shown, run))
    return cases


def _diagnose_relu(x, got, kwargs) -> str:
    expected = torch.relu(x)
    advice = _mask_product_advice(x, _broken_values(got, expected))
    if advice:
        return advice
    if _matches(got, x):
        return tr("the output equals the input: negative inputs must become 0")
    if _matches(got, x.clamp(max=0)):
        return tr("you kept the negative part; ReLU keeps the positive part, max(0, x)")
    return ""


def _diagnose_relu_grad(x, got, kwargs) -> str:
    got = got.detach().double()
    if _matches(got, torch.relu(x)) and (x > 1).any():
        return tr("that is ReLU itself, not its derivative (which is 1 or 0)")
    negative = x < 0
    if negative.any() and (got[negative] == 1).any():
        return tr("relu_grad returns 1 for negative inputs; ReLU is flat (always 0) there, so "
                  "its derivative is 0")
    zero = x == 0
    if zero.any() and (got[zero] == 1).all() and _matches(got, (x > 0).double(), ~zero):
        return tr("at x = 0 ReLU has no derivative; this course uses PyTorch's convention "
                  "relu'(0) = 0 (what autograd gives), so use x > 0, not x >= 0")
    return ""


def _diagnose_sigmoid(x, got, kwargs) -> str:
    bad = _broken_values(got, torch.sigmoid(x))
    if bad.any():
        if (x[bad] > 0).all():
            return tr("nan for large positive x: exp(x) / (1 + exp(x)) becomes inf / inf; "
                      "use 1 / (1 + exp(-x)), where the overflow gives 1 / inf = 0, the right "
                      "limit")
        return _mask_product_advice(x, bad) or tr(
            "your output is nan or inf for large |x| although the sigmoid is always between 0 "
            "and 1; use 1 / (1 + exp(-x))")
    if _matches(got, torch.sigmoid(-x)):
        return tr("you computed σ(-x) = 1 / (1 + exp(x)); the exponent must be -x")
    return ""


def _diagnose_sigmoid_grad(x, got, kwargs) -> str:
    s = torch.sigmoid(x)
    if _matches(got, x * (1 - x)):
        return tr("you applied σ'(x) = σ(x) · (1 - σ(x)) to the input: x · (1 - x) uses x where "
                  "the formula needs the sigmoid's output σ(x). Compute s = sigmoid(x) first, "
                  "then return s * (1 - s)")
    bad = _broken_values(got, s * (1 - s))
    if bad.any():
        return tr("your output is nan or inf for large |x| (exp(-x) / (1 + exp(-x))² becomes "
                  "inf / inf); write the derivative as σ(x) · (1 - σ(x)) with a sigmoid that "
                  "does not overflow")
    if _matches(got, s):
        return tr("that is σ(x) itself; its derivative is σ(x) · (1 - σ(x))")
    if _matches(got, 1 - s):
        return tr("the derivative is σ(x) · (1 - σ(x)); you returned only 1 - σ(x)")
    return ""


def _diagnose_tanh(x, got, kwargs) -> str:
    bad = _broken_values(got, torch.tanh(x))
    if bad.any():
        return tr("nan for large |x|: the textbook formula (eˣ - e⁻ˣ) / (eˣ + e⁻ˣ) becomes "
                  "inf / inf once eˣ overflows (x > 88 in float32); rewrite it with one "
                  "exponential that cannot overflow, for example tanh(x) = 2σ(2x) - 1")
    if _matches(got, torch.sigmoid(x)):
        return tr("that is the sigmoid (range 0 to 1); tanh ranges from -1 to 1")
    return ""


def _diagnose_tanh_grad(x, got, kwargs) -> str:
    t = torch.tanh(x)
    if _matches(got, 1 - x ** 2):
        return tr("you applied tanh'(x) = 1 - tanh(x)² to the input: 1 - x² uses x where the "
                  "formula needs tanh's output. Compute t = tanh(x) first, then return 1 - t ** 2")
    if _matches(got, 1 - t):
        return tr("missing square: the derivative is 1 - tanh(x)², not 1 - tanh(x)")
    if _matches(got, t ** 2):
        return tr("the derivative is 1 - tanh(x)²; you returned tanh(x)²")
    if _broken_values(got, 1 - t ** 2).any():
        return tr("your output is nan or inf for large |x|; write the derivative as "
                  "1 - tanh(x)² using a tanh that does not overflow")
    return ""


def _slope_of(kwargs: dict) -> float:
    return kwargs.get("negative_slope", 0.01)


def _diagnose_leaky_relu(x, got, kwargs) -> str:
    slope = _slope_of(kwargs)
    advice = _mask_product_advice(x, _broken_values(got, F.leaky_relu(x, slope)))
    if advice:
        return advice
    if (x < 0).any() and _matches(got, torch.relu(x)):
        return tr("negative inputs must be multiplied by negative_slope, not set to 0 (that "
                  "would be ReLU)")
    if slope != 0.01 and _matches(got, F.leaky_relu(x, 0.01)):
        return tr("your function ignores its negative_slope argument: it used 0.01 although "
                  "this case passed negative_slope={slope}", slope=slope)
    return ""


def _diagnose_leaky_relu_grad(x, got, kwargs) -> str:
    slope = _slope_of(kwargs)
    negative, zero = x < 0, x == 0
    got = got.detach().double()
    if negative.any() and (got[negative] == 0).all():
        return tr("for negative inputs the derivative is negative_slope, not 0 (that is ReLU's)")
    if slope != 0.01 and _matches(got, _autograd_derivative(F.leaky_relu, x,
                                                            negative_slope=0.01)):
        return tr("your function ignores its negative_slope argument: it used 0.01 although "
                  "this case passed negative_slope={slope}", slope=slope)
    if zero.any() and (got[zero] == 1).all():
        return tr("at x = 0 this course uses PyTorch's autograd convention: the derivative is "
                  "negative_slope ({slope}), so use x > 0, not x >= 0, for the slope-1 branch",
                  slope=slope)
    return ""


_SLOPES = ({}, {"negative_slope": 0.2}, {"negative_slope": 0.5})
_HIDDEN_SLOPES = ({"negative_slope": 0.07},)

_ELEMENTWISE: dict[str, _Elementwise] = {
    "relu": _Elementwise(torch.relu, "relu", _diagnose_relu),
    "relu_grad": _Elementwise(lambda x: _autograd_derivative(torch.relu, x), "autograd",
                              _diagnose_relu_grad),
    "sigmoid": _Elementwise(torch.sigmoid, "sigmoid", _diagnose_sigmoid),
    "sigmoid_grad": _Elementwise(lambda x: _autograd_derivative(torch.sigmoid, x), "autograd",
                                 _diagnose_sigmoid_grad),
    "tanh": _Elementwise(torch.tanh, "tanh", _diagnose_tanh),
    "tanh_grad": _Elementwise(lambda x: _autograd_derivative(torch.tanh, x), "autograd",
                              _diagnose_tanh_grad),
    "leaky_relu": _Elementwise(F.leaky_relu, "leaky_relu", _diagnose_leaky_relu, _SLOPES),
    "leaky_relu_grad": _Elementwise(lambda x, **kw: _autograd_derivative(F.leaky_relu, x, **kw),
                                    "autograd", _diagnose_leaky_relu_grad, _SLOPES),
}


def relu_cases(fn: TensorFn, hidden: bool = False) -> list[Case]:
    return _elementwise_cases(fn, "relu", hidden)


def relu_grad_cases(fn: TensorFn, hidden: bool = False) -> list[Case]:
    return _elementwise_cases(fn, "relu_grad", hidden)


def sigmoid_cases(fn: TensorFn, hidden: bool = False) -> list[Case]:
    return _elementwise_cases(fn, "sigmoid", hidden)


def sigmoid_grad_cases(fn: TensorFn, hidden: bool = False) -> list[Case]:
    return _elementwise_cases(fn, "sigmoid_grad", hidden)


def tanh_cases(fn: TensorFn, hidden: bool = False) -> list[Case]:
    return _elementwise_cases(fn, "tanh", hidden)


def tanh_grad_cases(fn: TensorFn, hidden: bool = False) -> list[Case]:
    return _elementwise_cases(fn, "tanh_grad", hidden)


def leaky_relu_cases(fn: TensorFn, hidden: bool = False) -> list[Case]:
    return _elementwise_cases(fn, "leaky_relu", hidden)


def leaky_relu_grad_cases(fn: TensorFn, hidden: bool = False) -> list[Case]:
    return _elementwise_cases(fn, "leaky_relu_grad", hidden)


# ---- softmax --------------------------------------------------------------------------------

def _softmax_inputs(hidden: bool) -> list[tuple[str, torch.Tensor, int]]:
    generator = torch.Generator().manual_seed(case_seed(5, hidden, "softmax"))
    return [
        (N_("a vector of 5 logits"), torch.randn(5, generator=generator) * 2, -1),
        (N_("logits [1000, -1000]"), torch.tensor([1000.0, -1000.0]), -1),
        (N_("equal large logits [1000, 1000, 1000]"),
         torch.tensor([1000.0, 1000.0, 1000.0]), -1),
        (N_("very negative logits [-1000, -1001, -1002]"),
         torch.tensor([-1000.0, -1001.0, -1002.0]), -1),
        (N_("a batch of logits [4, 10], dim=-1"),
         torch.randn(4, 10, generator=generator) * 3, -1),
        (N_("a batch [4, 10] normalised along dim=0"),
         torch.randn(4, 10, generator=generator), 0),
        (N_("a square [5, 5] batch, dim=1"), torch.randn(5, 5, generator=generator) * 3, 1),
        (N_("a square [5, 5] batch, dim=0"), torch.randn(5, 5, generator=generator) * 3, 0),
        (N_("a [2, 3, 4] tensor along the middle dim=1"),
         torch.randn(2, 3, 4, generator=generator) * 3, 1),
        (N_("rows at very different levels [[1000, 999, 998], [-1000, -999, -998]]"),
         torch.tensor([[1000.0, 999.0, 998.0], [-1000.0, -999.0, -998.0]]), -1),
        (N_("a masked logit: [0, -inf, 1]"), torch.tensor([0.0, -INF, 1.0]), -1),
    ] + (_hidden_softmax_inputs(generator) if hidden else [])


def _hidden_softmax_inputs(generator: torch.Generator) -> list[tuple[str, torch.Tensor, int]]:
    """Shapes and dims that only the hidden cases use."""
    large = torch.randn(3, 7, generator=generator) * 3
    large[1] += 1000.0
    levels = torch.tensor([1000.0, -1000.0, 0.0, -1000.0])[:, None]
    return [
        (N_("a [7, 3] batch, dim=-1"), torch.randn(7, 3, generator=generator) * 3, -1),
        (N_("a 4-dim [2, 3, 4, 5] tensor along dim=2"),
         torch.randn(2, 3, 4, 5, generator=generator) * 3, 2),
        (N_("a [3, 4, 2] tensor along dim=0"), torch.randn(3, 4, 2, generator=generator) * 3, 0),
        (N_("a single logit [[2.5]], dim=1"), torch.tensor([[2.5]]), 1),
        (N_("float64 logits [6, 9], half of the rows near 1000"),
         torch.cat([torch.randn(3, 9, generator=generator, dtype=torch.float64) * 3,
                    torch.randn(3, 9, generator=generator, dtype=torch.float64) + 1000.0]), -1),
        (N_("a [3, 7] batch with one row near 1000, dim=1"), large, 1),
        (N_("a [4, 6] batch with rows near 1000, -1000, 0 and -1000"),
         torch.randn(4, 6, generator=generator) * 3 + levels, -1),
    ]


def _softmax_keepdim_mistakes(x: torch.Tensor, dim: int) -> list[Callable[[], torch.Tensor]]:
    """Softmaxes whose max or sum forgot keepdim=True (wrong only when shapes still broadcast)."""
    def max_without_keepdim() -> torch.Tensor:
        exps = torch.exp(x - x.amax(dim=dim))
        return exps / exps.sum(dim=dim, keepdim=True)

    def sum_without_keepdim() -> torch.Tensor:
        exps = torch.exp(x - x.amax(dim=dim, keepdim=True))
        return exps / exps.sum(dim=dim)

    return [max_without_keepdim, sum_without_keepdim]


def _shifted_by_the_global_max(x: torch.Tensor, got: torch.Tensor, dim: int) -> bool:
    """True if ``got`` is what subtracting the maximum of the whole tensor gives: right where
    a group along ``dim`` reaches near that maximum, and nan or all zeros (0 / 0, or 0 / eps)
    in the groups whose maximum lies so far below it that every exponential underflows."""
    if x.dim() < 2 or got.shape != x.shape or not torch.isfinite(x).all():
        return False
    rows = x.detach().movedim(dim, -1).reshape(-1, x.shape[dim]).double()
    got_rows = got.detach().movedim(dim, -1).reshape(-1, x.shape[dim]).double()
    expected = torch.softmax(rows, -1)
    # exp underflows to 0 below about -103 in float32 and -745 in float64
    underflow = 745.0 if x.dtype == torch.float64 else 103.0
    far_below = rows.max() - rows.amax(-1) > underflow
    broken = torch.isnan(got_rows).any(-1) | (got_rows.abs().sum(-1) < 1e-12)
    if not broken.any() or not torch.equal(broken, broken & far_below):
        return False
    return _matches(got_rows[~broken], expected[~broken])


def _diagnose_softmax(x: torch.Tensor, got: torch.Tensor, dim: int) -> str:
    expected = torch.softmax(x, dim)
    if _shifted_by_the_global_max(x, got, dim):
        return tr("you subtracted the maximum of the whole tensor (x.max()), not each row's "
                  "own maximum along dim: in a row far below the overall maximum every "
                  "exp(...) underflows to 0, and the row becomes 0 / 0 = nan (or all zeros). "
                  "Subtract x.amax(dim=dim, keepdim=True) instead")
    bad = _broken_values(got, expected)
    if bad.any():
        return tr("your softmax overflows: exp(1000) = inf and inf / inf = nan (and "
                  "exp(-1000) = 0 gives 0 / 0); subtract the max along dim first. "
                  "softmax(x) = softmax(x - c) for any constant c, and with c = max(x) the "
                  "largest exponent is exp(0) = 1")
    for other in range(x.dim()):
        if other != dim % x.dim() and _matches(got, torch.softmax(x, other)):
            return tr("you normalised along dim={other}, but this case asks for dim={dim}: use "
                      "the dim argument for both the max and the sum", other=other, dim=dim)
    for candidate in _softmax_keepdim_mistakes(x, dim):
        try:
            if _matches(got, candidate()):
                return tr("the maximum and the sum must keep the reduced dimension "
                          "(keepdim=True) so that they broadcast back along dim; without it "
                          "they line up with the wrong axis")
        except RuntimeError:  # that mistake cannot even broadcast for this shape
            continue
    sums = got.detach().double().sum(dim=dim).flatten()
    off = (sums - 1).abs() > 1e-4
    if off.any():
        return tr("the outputs along dim={dim} should sum to 1, but one group sums to "
                  "{total:.6g}", dim=dim, total=sums[off][0].item())
    return ""


def softmax_cases(fn: TensorFn, hidden: bool = False) -> list[Case]:
    cases = []
    for description, x, dim in _softmax_inputs(hidden):
        def run(x=x, dim=dim) -> None:
            x_in = x.clone()
            with _forbid("softmax"):
                try:
                    got = _call(fn, x_in, dim=dim)
                except RuntimeError as error:
                    if "must match the size" not in str(error):
                        raise
                    raise CaseFailed(tr("shapes do not broadcast ({error}); keep the reduced "
                                        "dimension with keepdim=True in the max and the sum, "
                                        "so that they line up with x along dim", error=error),
                                     diagnosed=True) from None
            if not torch.equal(x_in, x):
                raise CaseFailed(tr("your function changed its input tensor in place; compute "
                                    "a new tensor (x - max is fine, x -= max is not)"),
                                 diagnosed=True)
            got = as_tensor(got, N_("the output"))
            expected = torch.softmax(x, dim)
            expect_shape(got, tuple(expected.shape))
            try:
                expect_close(got, expected)
            except CaseFailed as failure:
                explanation = _diagnose_softmax(x, got, dim)
                raise CaseFailed(explanation or str(failure),
                                 diagnosed=bool(explanation)) from None
        cases.append(Case(description, run))
    return cases


# ---- the gradient that reaches the first layer ----------------------------------------------

def _stack(widths: Sequence[int], seed: int) -> list[nn.Linear]:
    # nn.Linear draws its initial weights from the global generator: seed it, then restore it
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return [nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)]


def _grad_norm(layers: Sequence[nn.Linear], activation: Callable, x: torch.Tensor, *,
               after_last: bool = True, use_activation: bool = True, reduce: str = "sum",
               wrt: str = "first weight", squared: bool = False) -> float:
    """The quantity the exercise asks for (defaults) and the variants learners compute."""
    x = x.detach().clone().requires_grad_(wrt == "input")
    h = x
    for index, layer in enumerate(layers):
        h = layer(h)
        last = index == len(layers) - 1
        if use_activation and (after_last or not last):
            h = activation(h)
    loss = h.sum() if reduce == "sum" else h.mean()
    target = {"first weight": layers[0].weight, "first bias": layers[0].bias,
              "last weight": layers[-1].weight, "input": x}[wrt]
    (grad,) = torch.autograd.grad(loss, target)
    norm = grad.double().norm().item()
    return norm ** 2 if squared else norm


_GRAD_MISTAKES: list[tuple[str, dict]] = [
    (N_("that is the gradient of the last layer; the exercise asks how much gradient reaches "
        "the FIRST layer, layers[0].weight"), {"wrt": "last weight"}),
    (N_("that is the gradient with respect to the input x; measure it for layers[0].weight"),
     {"wrt": "input"}),
    (N_("that is the gradient of the first layer's bias; measure it for layers[0].weight"),
     {"wrt": "first bias"}),
    (N_("apply the activation after every layer, the last one included"), {"after_last": False}),
    (N_("you never applied the activation; call activation(layer(h)) for each layer"),
     {"use_activation": False}),
    (N_("the loss is the sum of the final outputs, not their mean"), {"reduce": "mean"}),
    (N_("return the norm (grad.norm()), not its square"), {"squared": True}),
]


def _as_number(value: object) -> float:
    if isinstance(value, bool):
        raise CaseFailed(tr("returned a bool; return the gradient's norm as a number"),
                         diagnosed=True)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, torch.Tensor):
        if value.numel() == 1:
            return float(value.detach().reshape(()).item())
        raise CaseFailed(tr("returned a tensor of shape {shape}; return one number, the norm "
                            "of the gradient (for example grad.norm().item())",
                            shape=tuple(value.shape)), diagnosed=True)
    raise CaseFailed(tr("returned a {type_name}; return the gradient's norm as a float",
                        type_name=type(value).__name__), diagnosed=True)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=2e-3, abs_tol=1e-30)


def first_layer_grad_norm_cases(fn: Callable[..., float], hidden: bool = False) -> list[Case]:
    seed = case_seed(9, hidden, "first_layer_grad_norm")
    # (description, widths, activation, batch size, gradients already stored in the layers)
    configs = [
        (N_("3 ReLU layers 8 -> 8, batch 4"), [8, 8, 8, 8], torch.relu, 4, False),
        (N_("10 sigmoid layers of width 32, batch 16"), [32] * 11, torch.sigmoid, 16, False),
        (N_("10 ReLU layers of width 32, batch 16"), [32] * 11, torch.relu, 16, False),
        (N_("10 tanh layers of changing widths, batch of one input"),
         [20, 24, 16, 16, 12, 30, 8, 8, 10, 6, 5], torch.tanh, 1, False),
        (N_("10 sigmoid layers that already hold gradients from an earlier backward pass"),
         [16] * 11, torch.sigmoid, 8, True),
    ]
    if hidden:
        configs.append((N_("6 sigmoid layers 12 -> 7, batch 3"), [12, 9, 9, 9, 9, 9, 7],
                        torch.sigmoid, 3, True))
        configs.append((N_("4 SiLU layers 5 -> 40 -> 3, batch 7"), [5, 40, 40, 17, 3],
                        F.silu, 7, False))
    cases = []
    for index, (description, widths, activation, batch, stale) in enumerate(configs):
        def run(widths=widths, activation=activation, batch=batch, stale=stale,
                index=index) -> None:
            layers = _stack(widths, seed + index)
            generator = torch.Generator().manual_seed(seed + 100 + index)
            x = torch.randn(batch, widths[0], generator=generator)
            learner_layers = copy.deepcopy(layers)
            if stale:
                for parameter in (p for layer in learner_layers for p in layer.parameters()):
                    parameter.grad = torch.full_like(parameter, 0.5)
            before = [p.detach().clone() for layer in learner_layers for p in layer.parameters()]
            got = _as_number(_call(fn, learner_layers, activation, x.clone()))
            after = [p.detach() for layer in learner_layers for p in layer.parameters()]
            if any(not torch.equal(a, b) for a, b in zip(before, after, strict=True)):
                raise CaseFailed(tr("your function changed the layers' weights; only measure "
                                    "the gradient, do not take an optimizer step"),
                                 diagnosed=True)
            fresh = copy.deepcopy(layers)
            expected = _grad_norm(fresh, activation, x)
            if _close(got, expected):
                return
            if stale:
                grad = _first_weight_grad(copy.deepcopy(layers), activation, x)
                if _close(got, (grad + 0.5).norm().item()):
                    raise CaseFailed(tr("gradients accumulate: .grad already held values from "
                                        "an earlier backward pass, and backward() added to "
                                        "them. Clear them first (layer.zero_grad() or "
                                        ".grad = None), or use torch.autograd.grad, which does "
                                        "not touch .grad"),
                                     diagnosed=True)
            for explanation, variant in _GRAD_MISTAKES:
                if _close(got, _grad_norm(copy.deepcopy(layers), activation, x, **variant)):
                    raise CaseFailed(translated(explanation), diagnosed=True)
            raise CaseFailed(tr("returned {got:.6g}, but the gradient reaching "
                                "layers[0].weight has norm {expected:.6g}",
                                got=got, expected=expected))
        cases.append(Case(description, run))
    return cases


def _first_weight_grad(layers: Sequence[nn.Linear], activation: Callable,
                       x: torch.Tensor) -> torch.Tensor:
    h = x
    for layer in layers:
        h = activation(layer(h))
    (grad,) = torch.autograd.grad(h.sum(), layers[0].weight)
    return grad


# ---- the exercises --------------------------------------------------------------------------

EXERCISES = Exercises({
    "relu": Exercise(
        relu_cases,
        N_("all {n} cases match torch.relu, including 0, batches, ±1000 and ±inf."),
        N_("ReLU is max(0, x) elementwise: x.clamp(min=0) or torch.where(x > 0, x, 0).")),
    "relu_grad": Exercise(
        relu_grad_cases,
        N_("all {n} cases match autograd's derivative of ReLU, including 0, batches, ±1000 "
           "and ±inf."),
        N_("the derivative is 1 where x > 0 and 0 elsewhere (0 at x = 0, as autograd gives).")),
    "sigmoid": Exercise(
        sigmoid_cases,
        N_("all {n} cases match torch.sigmoid, including 0, batches, ±1000 and ±inf."),
        N_("σ(x) = 1 / (1 + exp(-x)).")),
    "sigmoid_grad": Exercise(
        sigmoid_grad_cases,
        N_("all {n} cases match autograd's derivative of the sigmoid, including 0, batches, "
           "±1000 and ±inf."),
        N_("σ'(x) = σ(x) · (1 - σ(x)).")),
    "tanh": Exercise(
        tanh_cases,
        N_("all {n} cases match torch.tanh, including 0, batches, ±1000 and ±inf."),
        N_("tanh(x) = (eˣ - e⁻ˣ) / (eˣ + e⁻ˣ) = 2σ(2x) - 1.")),
    "tanh_grad": Exercise(
        tanh_grad_cases,
        N_("all {n} cases match autograd's derivative of tanh, including 0, batches, ±1000 "
           "and ±inf."),
        N_("tanh'(x) = 1 - tanh(x)².")),
    "leaky_relu": Exercise(
        leaky_relu_cases,
        N_("all {n} cases match F.leaky_relu for three slopes, including 0, batches, ±1000 "
           "and ±inf."),
        N_("x where x > 0, negative_slope · x elsewhere: "
           "torch.where(x > 0, x, negative_slope * x).")),
    "leaky_relu_grad": Exercise(
        leaky_relu_grad_cases,
        N_("all {n} cases match autograd's derivative of F.leaky_relu for three slopes, "
           "including 0, batches, ±1000 and ±inf."),
        N_("1 where x > 0, negative_slope elsewhere (x = 0 included, as autograd gives).")),
    "softmax": Exercise(
        softmax_cases,
        N_("all {n} cases match torch.softmax, including ±1000, -inf and several dims."),
        N_("exps = torch.exp(x - x.amax(dim=dim, keepdim=True)); divide by their sum along dim "
           "(keepdim=True).")),
    "first_layer_grad_norm": Exercise(
        first_layer_grad_norm_cases,
        N_("all {n} stacks give the same gradient norm as autograd."),
        N_("h = x; for each layer: h = activation(layer(h)); then loss = h.sum(), "
           "grad = torch.autograd.grad(loss, layers[0].weight)[0], return grad.norm().item().")),
})
run_check = EXERCISES.run_check


def check_relu(fn: TensorFn) -> None:
    """Compare ``relu(x)`` with ``torch.relu`` (built-in ReLU refused while it runs)."""
    report(run_check("relu", fn))


def check_relu_grad(fn: TensorFn) -> None:
    """Compare ``relu_grad(x)`` with autograd's derivative of ``torch.relu``."""
    report(run_check("relu_grad", fn))


def check_sigmoid(fn: TensorFn) -> None:
    """Compare ``sigmoid(x)`` with ``torch.sigmoid``."""
    report(run_check("sigmoid", fn))


def check_sigmoid_grad(fn: TensorFn) -> None:
    """Compare ``sigmoid_grad(x)`` with autograd's derivative of ``torch.sigmoid``."""
    report(run_check("sigmoid_grad", fn))


def check_tanh(fn: TensorFn) -> None:
    """Compare ``tanh(x)`` with ``torch.tanh``."""
    report(run_check("tanh", fn))


def check_tanh_grad(fn: TensorFn) -> None:
    """Compare ``tanh_grad(x)`` with autograd's derivative of ``torch.tanh``."""
    report(run_check("tanh_grad", fn))


def check_leaky_relu(fn: TensorFn) -> None:
    """Compare ``leaky_relu(x, negative_slope)`` with ``F.leaky_relu`` for several slopes."""
    report(run_check("leaky_relu", fn))


def check_leaky_relu_grad(fn: TensorFn) -> None:
    """Compare ``leaky_relu_grad(x, negative_slope)`` with autograd's derivative."""
    report(run_check("leaky_relu_grad", fn))


def check_softmax(fn: TensorFn) -> None:
    """Compare ``softmax(x, dim)`` with ``torch.softmax`` (large logits, -inf, several dims)."""
    report(run_check("softmax", fn))


def check_first_layer_grad_norm(fn: Callable[..., float]) -> None:
    """Compare ``first_layer_grad_norm(layers, activation, x)`` with autograd on fixed stacks."""
    report(run_check("first_layer_grad_norm", fn))
