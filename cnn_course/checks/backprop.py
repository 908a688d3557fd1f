"""Checkers for Chapter 5: backpropagation.

Every backward pass is compared with PyTorch's autograd in float64, on several shapes, and
learners' code runs with autograd switched off (the exercises compute gradients by hand).
Each ``check_*`` function prints one verdict line; each ``*_cases`` function lists the cases,
so that a grader can run them with other seeds (``hidden=True``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from cnn_course.checks.core import (
    Case,
    CaseFailed,
    Exercise,
    Exercises,
    as_tensor,
    case_seed,
    expect_shape,
    forbid,
    report,
)
from cnn_course.lessons.backprop import init_tiny_cnn, tiny_cnn_logits
from cnn_course.messages import N_, tr, translated

DTYPE = torch.float64
# float64 gradients computed two correct ways agree to ~1e-15; a real bug is off by far more
RTOL, ATOL = 1e-7, 1e-9


# ---- shared helpers -------------------------------------------------------------------------

_AUTOGRAD = [(torch.autograd, "grad"), (torch.autograd, "backward"), (torch.Tensor, "backward")]
_AUTOGRAD_REFUSED = N_("your function called autograd (.backward() or torch.autograd); the "
                       "exercise is to compute the gradient by hand")


def _conv_gradient_refused(name: str) -> str:
    return tr("your function called torch.nn.grad.{name}, one of PyTorch's built-in convolution "
              "gradients: a ready-made answer rather than a computation of your own. The "
              "exercise asks for the convolution's gradients computed from its definition; any "
              "method that does so passes, such as loops over the output positions, F.unfold or "
              "F.conv_transpose2d", name=name)


@contextlib.contextmanager
def _gradients_by_hand() -> Iterator[None]:
    """Refuse autograd, and PyTorch's ready-made convolution gradients, while the learner's
    code runs."""
    with forbid(_AUTOGRAD, translated(_AUTOGRAD_REFUSED)), \
            forbid([(torch.nn.grad, "conv2d_input")], _conv_gradient_refused("conv2d_input")), \
            forbid([(torch.nn.grad, "conv2d_weight")], _conv_gradient_refused("conv2d_weight")):
        yield


def _relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    got, expected = got.detach().double(), expected.detach().double()
    return float(((got - expected).abs() / (got.abs() + expected.abs()).clamp(min=1e-12)).max())


def _close(got: torch.Tensor, expected: torch.Tensor) -> bool:
    return (tuple(got.shape) == tuple(expected.shape)
            and torch.allclose(got.detach().double(), expected.detach().double(), rtol=RTOL,
                               atol=ATOL))


def _unpack(result: object, names: Sequence[str]) -> list[torch.Tensor]:
    """Check that a learner returned a tuple of tensors, e.g. ``(dx, dw, db)``."""
    wanted = "(" + ", ".join(names) + ")"
    if not isinstance(result, tuple | list) or len(result) != len(names):
        if isinstance(result, tuple | list):
            message = tr("return the tuple {wanted}; your function returned a {type_name} of "
                         "{length}", wanted=wanted, type_name=type(result).__name__,
                         length=len(result))
        else:
            message = tr("return the tuple {wanted}; your function returned a {type_name}",
                         wanted=wanted, type_name=type(result).__name__)
        raise CaseFailed(message, diagnosed=True)
    return [as_tensor(value, name) for value, name in zip(result, names, strict=True)]


def _expect_grad(got: torch.Tensor, expected: torch.Tensor, what: str,
                 mistakes: dict[str, torch.Tensor] | None = None) -> None:
    """Compare a hand-made gradient with autograd's; name a known mistake if it matches one.

    ``what`` names the value in English (marked with ``N_``) and is shown translated; the
    ``mistakes`` are explanations already in the learner's language (made with ``tr``).
    """
    expect_shape(got, tuple(expected.shape), what)
    if got.dtype != expected.dtype:
        raise CaseFailed(tr("{what} is {got_dtype} but the inputs are {expected_dtype}: build it "
                            "from the inputs (or with torch.zeros_like) so that it keeps their "
                            "precision", what=translated(what), got_dtype=got.dtype,
                            expected_dtype=expected.dtype), diagnosed=True)
    if _close(got, expected):
        return
    if torch.isnan(got).any():
        raise CaseFailed(tr("{what} contains NaN", what=translated(what)))
    for explanation, candidate in (mistakes or {}).items():
        if _close(got, candidate):
            raise CaseFailed(explanation, diagnosed=True)
    got64, expected64 = got.detach().double(), expected.detach().double()
    bad = ~torch.isclose(got64, expected64, rtol=RTOL, atol=ATOL)
    index = tuple(int(i) for i in bad.nonzero()[0])
    where = f"[{', '.join(map(str, index))}]" if index else ""
    raise CaseFailed(tr("{what} differs from autograd's (relative error {error:.1e}): "
                        "{what}{where} is {got:.6g}, expected {expected:.6g} ({wrong} of "
                        "{total} values differ)", what=translated(what),
                        error=_relative_error(got, expected), where=where,
                        got=got64[index].item(), expected=expected64[index].item(),
                        wrong=int(bad.sum()), total=bad.numel()))


def _autograd(forward: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor],
              dout: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of ``sum(forward(*inputs) * dout)`` with respect to each input."""
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    return list(torch.autograd.grad(forward(*leaves), leaves, dout))


_SHAPE_ERRORS = ("cannot be multiplied", "size mismatch", "must match the size",
                 "shape mismatch", "Expected size")


def _call(fn: Callable, *args, shape_advice: str = "", **kwargs) -> object:
    """Run the learner's function with autograd forbidden; explain matrix-shape errors
    (``shape_advice`` is already in the learner's language)."""
    with _gradients_by_hand():
        try:
            return fn(*args, **kwargs)
        except RuntimeError as error:
            text = str(error).splitlines()[0] if str(error) else ""
            if shape_advice and any(marker in text for marker in _SHAPE_ERRORS):
                raise CaseFailed(tr("your code raised a shape error ({error}). {advice}",
                                    error=text, advice=shape_advice),
                                 diagnosed=True) from None
            raise


def _randn(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator, dtype=DTYPE)


def _clones(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.clone() for t in tensors]


# ---- numerical gradients and relative error -------------------------------------------------

def _central(f: Callable, x: torch.Tensor, h: float) -> torch.Tensor:
    return _differences(f, x, h, "central")


@torch.no_grad()
def _differences(f: Callable, x: torch.Tensor, h: float, kind: str) -> torch.Tensor:
    """Finite differences of the checker's own, to recognise a learner's one-sided version."""
    x = x.clone()
    grad = torch.zeros_like(x)
    flat_x, flat_grad = x.view(-1), grad.view(-1)
    base = float(f(x))
    for i in range(flat_x.numel()):
        original = flat_x[i].item()
        flat_x[i] = original + h
        above = float(f(x))
        flat_x[i] = original - h
        below = float(f(x))
        flat_x[i] = original
        flat_grad[i] = {"central": (above - below) / (2 * h), "forward": (above - base) / h,
                        "backward": (base - below) / h}[kind]
    return grad


def _cube(t: torch.Tensor) -> torch.Tensor:
    return (t ** 3).sum()


def numerical_gradient_cases(fn: Callable, hidden: bool = False) -> list[Case]:
    generator = torch.Generator().manual_seed(case_seed(5, hidden, "numerical_gradient"))
    signs = torch.where(torch.rand(5, generator=generator) < 0.5, -1.0, 1.0).to(DTYPE)
    vector = signs * (0.5 + 1.5 * torch.rand(5, generator=generator, dtype=DTYPE))
    matrix = torch.rand(2, 3, generator=generator, dtype=DTYPE) * 2 - 1
    a = _randn(generator, 4, 3)
    tall = _randn(generator, 3, 2)

    def tanh_layer(t: torch.Tensor) -> torch.Tensor:
        return torch.tanh(a @ t).sum()

    def squares_as_float(t: torch.Tensor) -> float:
        return float((t ** 2).sum())

    def exact(f: Callable, x: torch.Tensor) -> torch.Tensor:
        return _autograd(f, [x], torch.ones((), dtype=DTYPE))[0]

    def run_case(f: Callable, x: torch.Tensor, h: float | None, expected: torch.Tensor) -> None:
        passed = x.clone()
        got = _call(fn, f, passed) if h is None else _call(fn, f, passed, h=h)
        got = as_tensor(got, N_("the gradient"))
        if not torch.allclose(passed, x, rtol=1e-12, atol=1e-12):
            raise CaseFailed(tr("your function left x changed: after perturbing an entry, put "
                                "its original value back"), diagnosed=True)
        step = 1e-5 if h is None else h
        one_sided = {
            tr("this is a one-sided (forward) difference (f(x+h) - f(x)) / h: its error shrinks "
               "only like h (here {error:.0e} relative), while the central difference "
               "(f(x+h) - f(x-h)) / 2h errs by about h²",
               error=_relative_error(_differences(f, x, step, "forward"), expected)):
                _differences(f, x, step, "forward"),
            tr("this is a one-sided (backward) difference (f(x) - f(x-h)) / h: its error "
               "shrinks only like h; use the central difference (f(x+h) - f(x-h)) / 2h, whose "
               "error is about h²"): _differences(f, x, step, "backward"),
        }
        all_at_once = (float(f(x + step)) - float(f(x - step))) / (2 * step)
        mistakes = {**one_sided,
                    tr("every entry has the same value: you moved all entries of x at once; "
                       "perturb one entry at a time (x.view(-1)[i])"):
                        torch.full_like(x, all_at_once)}
        if h is not None:
            mistakes[tr("you ignored the h argument and used a step of your own")] = \
                _central(f, x, 1e-5)
        _expect_grad(got, expected, N_("the gradient"), mistakes)

    vector_h = 1e-2
    return [
        Case(N_("f(x) = sum(x**3) on 5 numbers: the gradient is 3x²"),
             lambda: run_case(_cube, vector, None, 3 * vector ** 2)),
        Case(N_("f(x) = sum(exp(x)) on a 2x3 matrix"),
             lambda: run_case(lambda t: t.exp().sum(), matrix, None, matrix.exp())),
        Case(N_("f(x) = sum(tanh(A @ x)) on a 3x2 matrix"),
             lambda: run_case(tanh_layer, tall, None, exact(tanh_layer, tall))),
        # for x**3 the central difference is exactly 3x² + h², whatever h is
        Case(N_("h=1e-2 on sum(x**3): the central difference gives 3x² + h²"),
             lambda: run_case(_cube, vector, vector_h, 3 * vector ** 2 + vector_h ** 2)),
        Case(N_("f returns a Python float"),
             lambda: run_case(squares_as_float, matrix, None, 2 * matrix)),
    ] + (_hidden_numerical_gradient_cases(generator, run_case, exact) if hidden else [])


def _hidden_numerical_gradient_cases(generator: torch.Generator, run_case: Callable,
                                     exact: Callable) -> list[Case]:
    """Shapes, functions and a step h that only the hidden cases use."""
    block = _randn(generator, 2, 3, 2)
    cubes = _randn(generator, 4, 2)
    logits = _randn(generator, 9)
    h = 1e-3

    def sin_times_x(t: torch.Tensor) -> torch.Tensor:
        return (torch.sin(t) * t).sum()

    def log_sum_exp(t: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(t, dim=0)

    return [
        Case(N_("f(x) = sum(sin(x) * x) on a 2x3x2 tensor"),
             lambda: run_case(sin_times_x, block, None, exact(sin_times_x, block))),
        Case(N_("h=1e-3 on sum(x**3) over a 4x2 matrix"),
             lambda: run_case(_cube, cubes, h, 3 * cubes ** 2 + h ** 2)),
        Case(N_("f(x) = log(sum(exp(x))) on 9 numbers: the gradient is softmax(x)"),
             lambda: run_case(log_sum_exp, logits, None, torch.softmax(logits, 0))),
    ]


def relative_error_cases(fn: Callable, hidden: bool = False) -> list[Case]:
    def tensor(*values: float) -> torch.Tensor:
        return torch.tensor(values, dtype=DTYPE)

    def run_case(a: torch.Tensor, b: torch.Tensor) -> None:
        got = _call(fn, a.clone(), b.clone())
        if isinstance(got, torch.Tensor):
            if got.numel() != 1:
                raise CaseFailed(tr("returned a tensor of shape {shape}; return one number, "
                                    "the largest relative error over all elements",
                                    shape=tuple(got.shape)), diagnosed=True)
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, int | float):
            raise CaseFailed(tr("returned a {type_name}; return a float",
                                type_name=type(got).__name__))
        diff, size = (a - b).abs(), a.abs() + b.abs()
        expected = float((diff / size.clamp(min=1e-12)).max())
        if math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-15):
            return
        if (math.isnan(got) or math.isinf(got)) and (size == 0).any():
            raise CaseFailed(tr("returned {got}: where a and b are both 0, |a| + |b| is 0 "
                                "too; put a small floor under the denominator, e.g. "
                                ".clamp(min=1e-12)", got=got), diagnosed=True)
        if math.isinf(got) and ((a + b) == 0).any():
            raise CaseFailed(tr("returned {got}: you divided by |a + b|, which is 0 where a and "
                                "b have opposite signs; divide by |a| + |b|", got=got),
                             diagnosed=True)
        explanations = {  # checked in order: the first that matches is named
            N_("you divided the largest difference by the largest |a| + |b|; take the ratio "
               "element by element, then the max: (|a - b| / (|a| + |b|)).max()"):
                float(diff.max() / size.max().clamp(min=1e-12)),
            N_("you took the mean over the elements; a gradient check needs the worst one: "
               "take the max"): float((diff / size.clamp(min=1e-12)).mean()),
            N_("you divided by max(|a|, |b|); this course divides by |a| + |b|"):
                float((diff / torch.maximum(a.abs(), b.abs()).clamp(min=1e-12)).max()),
            N_("you divided by |b| alone; divide by |a| + |b| so that the error is symmetric"):
                float((diff / b.abs().clamp(min=1e-12)).max()),
            N_("you divided by |a + b|; take absolute values first: |a| + |b|"):
                float((diff / (a + b).abs().clamp(min=1e-12)).max()),
        }
        for explanation, candidate in explanations.items():
            if math.isclose(got, candidate, rel_tol=1e-6):
                raise CaseFailed(tr("returned {got:.6g}, expected {expected:.6g}: "
                                    "{explanation}", got=got, expected=expected,
                                    explanation=translated(explanation)), diagnosed=True)
        raise CaseFailed(tr("returned {got:.6g}, expected {expected:.6g}", got=got,
                            expected=expected))

    generator = torch.Generator().manual_seed(case_seed(7, hidden, "relative_error"))
    random_a = _randn(generator, 3, 4)
    random_b = random_a + 0.01 * _randn(generator, 3, 4)
    hidden_a = _randn(generator, 2, 3, 5)
    hidden_a[1, 2, 3] = 1e-9
    hidden_b = hidden_a * (1 + 0.001 * _randn(generator, 2, 3, 5))
    return [
        Case(N_("two equal tensors"),
             lambda: run_case(tensor(1.0, -2.0, 3.0), tensor(1.0, -2.0, 3.0))),
        Case("a = [1, 2, 3.3], b = [1, 2, 3]",
             lambda: run_case(tensor(1.0, 2.0, 3.3), tensor(1.0, 2.0, 3.0))),
        Case(N_("one element differs, three agree"),
             lambda: run_case(tensor(1.0, 1.0, 1.0, 1.0), tensor(1.0, 1.0, 1.0, 2.0))),
        Case(N_("values of opposite sign: a = [-1, 2], b = [1, 2]"),
             lambda: run_case(tensor(-1.0, 2.0), tensor(1.0, 2.0))),
        Case(N_("an element that is 0 in both"),
             lambda: run_case(tensor(0.0, 1.0), tensor(0.0, 1.1))),
        Case(N_("two 0-dim tensors"), lambda: run_case(torch.tensor(2.0, dtype=DTYPE),
                                                       torch.tensor(2.5, dtype=DTYPE))),
        Case(N_("random 3x4 matrices"), lambda: run_case(random_a, random_b)),
    ] + ([Case(N_("random 2x3x5 tensors, one tiny element"),
               lambda: run_case(hidden_a, hidden_b))] if hidden else [])


# ---- linear, ReLU, sigmoid ------------------------------------------------------------------

_LINEAR_SHAPES = N_("With x [N, in], w [out, in] and dout [N, out]: dx = dout @ w is [N, in], "
                    "dw = dout.T @ x is [out, in]")


def linear_backward_cases(fn: Callable, hidden: bool = False) -> list[Case]:
    generator = torch.Generator().manual_seed(case_seed(1, hidden, "linear_backward"))
    configs = [(N_("one example"), 1, 3, 2), (N_("a batch of 4"), 4, 5, 3),
               (N_("more outputs than inputs"), 6, 2, 7), (N_("a square weight"), 3, 4, 4),
               (N_("a batch of 16"), 16, 8, 10)]
    if hidden:
        configs.append((N_("a batch of 32, one output"), 32, 6, 1))
    cases = []
    for description, n, n_in, n_out in configs:
        x, w = _randn(generator, n, n_in), _randn(generator, n_out, n_in)
        b, dout = _randn(generator, n_out), _randn(generator, n, n_out)

        def run(x=x, w=w, b=b, dout=dout, n=n, n_in=n_in, n_out=n_out) -> None:
            advice = translated(_LINEAR_SHAPES)
            result = _call(fn, *_clones(dout, x, w), shape_advice=advice)
            dx, dw, db = _unpack(result, ("dx", "dw", "db"))
            ex_dx, ex_dw, ex_db = _autograd(lambda x, w, b: x @ w.T + b, [x, w, b], dout)
            if tuple(dx.shape) != (n, n_in):
                raise CaseFailed(tr("dx has shape {got}, but it must have x's shape "
                                    "{expected}. {advice}", got=tuple(dx.shape),
                                    expected=(n, n_in), advice=advice), diagnosed=True)
            if tuple(dw.shape) == (n_in, n_out) != (n_out, n_in):
                raise CaseFailed(tr("dw has shape {got}, the transpose of w's {expected}: a "
                                    "parameter's gradient has the parameter's shape. {advice}",
                                    got=tuple(dw.shape), expected=(n_out, n_in),
                                    advice=advice), diagnosed=True)
            if tuple(db.shape) == (n, n_out) != (n_out,):
                raise CaseFailed(tr("db has shape {got}, expected {expected}: the bias is added "
                                    "to every example, so sum dout over the batch (dim 0)",
                                    got=tuple(db.shape), expected=(n_out,)), diagnosed=True)
            square = {tr("dx is transposed the wrong way round: dx = dout @ w"): dout @ w.T} \
                if n_in == n_out else {}
            _expect_grad(dx, ex_dx, "dx", square)
            _expect_grad(dw, ex_dw, "dw", {
                tr("dw is transposed: it must be dout.T @ x, shaped like w [out, in]"): ex_dw.T})
            _expect_grad(db, ex_db, "db", {
                tr("db is the mean of dout over the batch; it must be the sum (the bias is "
                   "added to every example, and the loss already divides by N)"): ex_db / n})

        cases.append(Case(tr("{description}: x {x_shape}, w {w_shape}",
                             description=translated(description), x_shape=tuple(x.shape),
                             w_shape=tuple(w.shape)), run))
    return cases


def _elementwise_inputs(generator: torch.Generator, hidden: bool
                        ) -> list[tuple[str, torch.Tensor]]:
    with_zeros = _randn(generator, 3, 4)
    with_zeros[0, :2] = 0.0
    with_zeros[1, 0] = -1.0
    inputs = [
        (N_("a vector with both signs"), torch.tensor([-2.0, -0.5, 0.3, 1.5, -1.0, 2.0],
                                                      dtype=DTYPE)),
        (N_("feature maps [2, 3, 4, 5]"), _randn(generator, 2, 3, 4, 5)),
        (N_("all inputs negative"), -torch.rand(4, 3, generator=generator, dtype=DTYPE) - 0.1),
        (N_("some inputs exactly 0"), with_zeros),
    ]
    if hidden:
        inputs.append((N_("a batch [8, 16]"), _randn(generator, 8, 16)))
    return inputs


def relu_backward_cases(fn: Callable, hidden: bool = False) -> list[Case]:
    generator = torch.Generator().manual_seed(case_seed(2, hidden, "relu_backward"))
    cases = []
    for description, x in _elementwise_inputs(generator, hidden):
        dout = _randn(generator, *x.shape)

        def run(x=x, dout=dout) -> None:
            dx = as_tensor(_call(fn, *_clones(dout, x)), "dx")
            expected = _autograd(torch.relu, [x], dout)[0]
            _expect_grad(dx, expected, "dx", {
                tr("dx equals dout everywhere: your ReLU passes the gradient back where x < 0, "
                   "but there its output is constantly 0, so its slope (and dx) is 0"): dout,
                tr("dx is the 0/1 mask only; multiply it by dout (chain rule)"):
                    (x > 0).to(DTYPE),
                tr("you multiplied dout by relu(x); multiply by ReLU's slope instead, 1 where "
                   "x > 0 and 0 elsewhere"): dout * x.clamp(min=0),
                tr("at x == 0 exactly, PyTorch gives ReLU slope 0 (no gradient): use x > 0, "
                   "not x >= 0"): dout * (x >= 0),
            })

        cases.append(Case(tr("{description}, shape {shape}", description=translated(description),
                             shape=tuple(x.shape)), run))
    return cases


_ON_THE_INPUT = N_(
    "you applied the derivative formula to the sigmoid's input: dx equals dout * x * (1 - x) "
    "with x the pre-activation. The formula s * (1 - s) holds for the sigmoid's OUTPUT "
    "s = sigmoid(x), which is what the argument out is: dx = dout * out * (1 - out)")


def sigmoid_backward_cases(fn: Callable, hidden: bool = False) -> list[Case]:
    generator = torch.Generator().manual_seed(case_seed(3, hidden, "sigmoid_backward"))
    inputs = [(d, x) for d, x in _elementwise_inputs(generator, hidden) if "exactly" not in d]
    inputs.append((N_("extreme inputs -40 ... 40 (saturated)"),
                   torch.tensor([-40.0, -10.0, -1.0, 0.0, 1.0, 10.0, 40.0], dtype=DTYPE)))
    cases = []
    for description, x in inputs:
        dout = _randn(generator, *x.shape)
        out = torch.sigmoid(x)

        def run(x=x, dout=dout, out=out) -> None:
            dx = as_tensor(_call(fn, *_clones(dout, out)), "dx")
            expected = _autograd(torch.sigmoid, [x], dout)[0]
            resigmoid = torch.sigmoid(out)
            on_the_input = translated(_ON_THE_INPUT)
            _expect_grad(dx, expected, "dx", {
                tr("you computed out * (1 - out) but did not multiply by dout (chain rule)"):
                    out * (1 - out),
                tr("the second argument is already the sigmoid's output s = sigmoid(x); use "
                   "dout * s * (1 - s) without applying sigmoid again"):
                    dout * resigmoid * (1 - resigmoid),
                on_the_input: dout * x * (1 - x),
                tr("{explanation} (and multiply by dout)", explanation=on_the_input):
                    x * (1 - x),
            })

        cases.append(Case(tr("{description}, shape {shape}", description=translated(description),
                             shape=tuple(x.shape)), run))
    return cases


# ---- softmax cross-entropy ------------------------------------------------------------------

def softmax_cross_entropy_cases(fn: Callable, hidden: bool = False) -> list[Case]:
    generator = torch.Generator().manual_seed(case_seed(4, hidden, "softmax_cross_entropy"))
    configs = [  # description, N, classes, spread, offset (one per row, or one for all)
        (N_("one example, 3 classes"), 1, 3, 1.0, 0.0),
        (N_("a batch of 4, 10 classes"), 4, 10, 2.0, 0.0),
        (N_("a batch of 8, 2 classes"), 8, 2, 1.0, 0.0),
        (N_("logits near 1000, where exp overflows unless shifted"), 5, 6, 30.0, 1000.0),
        (N_("rows at very different scales: logits near +1000, 0 and -1000 in one batch"), 4, 5,
         3.0, (1000.0, 0.0, -1000.0, 1000.0))]
    if hidden:
        configs.append((N_("a batch of 64, 100 classes"), 64, 100, 3.0, -5.0))
    cases = []
    for description, n, k, spread, offset in configs:
        logits = spread * _randn(generator, n, k) + torch.as_tensor(offset, dtype=DTYPE
                                                                     ).reshape(-1, 1)
        y = torch.randint(0, k, (n,), generator=generator)

        def run(logits=logits, y=y, n=n) -> None:
            loss, dlogits = _unpack_loss(_call(fn, logits.clone(), y.clone()))
            leaf = logits.clone().requires_grad_()
            expected_loss = F.cross_entropy(leaf, y)
            expected = torch.autograd.grad(expected_loss, leaf)[0]
            if not math.isfinite(loss) or not torch.isfinite(dlogits).all():
                raise CaseFailed(_non_finite_softmax(logits, dlogits), diagnosed=True)
            if not math.isclose(loss, expected_loss.item(), rel_tol=1e-9, abs_tol=1e-12):
                if n > 1 and math.isclose(loss, n * expected_loss.item(), rel_tol=1e-9):
                    raise CaseFailed(tr("the loss is the sum over the batch; F.cross_entropy "
                                        "takes the mean"), diagnosed=True)
                raise CaseFailed(tr("the loss is {got:.6g}, expected {expected:.6g}", got=loss,
                                    expected=expected_loss.item()))
            probs = F.softmax(logits, dim=1)
            _expect_grad(dlogits, expected, "dlogits", {
                tr("dlogits is N times too large: the loss is a mean over N examples, so divide "
                   "softmax(logits) - onehot(y) by N"): expected * n,
                tr("dlogits has the wrong sign: it is softmax(logits) - onehot(y), divided by "
                   "N"): -expected,
                tr("you forgot to subtract the one-hot target: dlogits = (softmax - onehot) / "
                   "N"): probs / n,
            })

        cases.append(Case(tr("{description}: logits {shape}", description=translated(description),
                             shape=tuple(logits.shape)), run))
    return cases


# exp(z) is inf in float64 above this, and exactly 0 below -_EXP_UNDERFLOW
_EXP_OVERFLOW, _EXP_UNDERFLOW = 709.8, 745.2


def _non_finite_softmax(logits: torch.Tensor, dlogits: torch.Tensor) -> str:
    """Name the shift that lets exp overflow or underflow, from the rows that went wrong."""
    row_max = logits.max(dim=1).values
    bad = ~torch.isfinite(dlogits).all(dim=1) if dlogits.shape == logits.shape \
        else torch.zeros_like(row_max, dtype=torch.bool)
    overflow = row_max > _EXP_OVERFLOW                            # no shift at all
    underflow = row_max - row_max.max() < -_EXP_UNDERFLOW         # shifted by the batch's max
    rows = [int(i) for i in bad.nonzero().flatten()]
    items = tr(", ").join(tr("{row} (largest logit {logit})", row=i,
                             logit=round(row_max[i].item())) for i in rows[:3])
    listed = tr("row {rows}", rows=items) if len(rows) == 1 else tr("rows {rows}", rows=items)
    per_row = tr("Subtract each row's own largest logit, logits.max(dim=1, keepdim=True), "
                 "before exp: softmax does not change when all logits of a row shift by the "
                 "same amount")
    if rows and all(underflow[i] for i in rows) and not bad[row_max.argmax()]:
        return tr("dlogits is inf or NaN in {rows}, while the row with the largest logits is "
                  "fine: you subtracted the largest logit of the whole BATCH. A row whose "
                  "logits sit far below that maximum then has exp(z - max) = 0 in every entry, "
                  "and 0 / 0 is NaN. {advice}", rows=listed, advice=per_row)
    if rows and any(overflow[i] for i in rows):
        return tr("dlogits is inf or NaN in {rows}: exp of a logit above about 710 overflows to "
                  "inf in float64, and inf / inf is NaN. {advice}", rows=listed, advice=per_row)
    return tr("your result has inf or NaN: with logits in the hundreds or thousands, exp "
              "overflows (or, after subtracting the largest logit of the whole batch, every "
              "entry of a low row underflows to 0). {advice}", advice=per_row)


def _unpack_loss(result: object) -> tuple[float, torch.Tensor]:
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise CaseFailed(tr("return the tuple (loss, dlogits)"), diagnosed=True)
    return _as_loss(result[0]), as_tensor(result[1], "dlogits")


def _as_loss(loss: object) -> float:
    """Accept a float or a one-element tensor as the loss."""
    if isinstance(loss, torch.Tensor):
        if loss.numel() != 1:
            raise CaseFailed(tr("the loss has shape {shape}; it must be one number, the mean "
                                "over the batch", shape=tuple(loss.shape)), diagnosed=True)
        loss = loss.item()
    if isinstance(loss, bool) or not isinstance(loss, int | float):
        raise CaseFailed(tr("the loss is a {type_name}; return a float or a 0-dim tensor",
                            type_name=type(loss).__name__), diagnosed=True)
    return float(loss)


# ---- max pooling ----------------------------------------------------------------------------

def _pool_assign_candidate(x: torch.Tensor, dout: torch.Tensor, k: int, s: int,
                           last_wins: bool) -> torch.Tensor:
    """What a loop that assigns (=) instead of adding (+=) the routed gradient would return."""
    dx = torch.zeros_like(x)
    n, c, h_out, w_out = dout.shape
    positions = [(i, j) for i in range(h_out) for j in range(w_out)]
    for i, j in positions if last_wins else reversed(positions):
        window = x[:, :, i * s:i * s + k, j * s:j * s + k].reshape(n, c, -1)
        flat = window.argmax(dim=2)
        for b in range(n):
            for ch in range(c):
                u, v = divmod(int(flat[b, ch]), k)
                dx[b, ch, i * s + u, j * s + v] = dout[b, ch, i, j]
    return dx


def max_pool2d_backward_cases(fn: Callable, hidden: bool = False) -> list[Case]:
    seed = case_seed(6, hidden, "backprop.max_pool2d_backward")
    generator = torch.Generator().manual_seed(seed)
    configs = [  # description, x shape, kernel, stride (None: = kernel)
        (N_("2x2 windows on 4x4"), (1, 1, 4, 4), 2, None),
        (N_("batch 2, 3 channels, non-square 6x8"), (2, 3, 6, 8), 2, None),
        (N_("odd size 5x7: the last row and column are in no window"), (1, 2, 5, 7), 2, None),
        (N_("overlapping 3x3 windows at stride 2"), (2, 2, 7, 7), 3, 2),
        (N_("3x3 windows at stride 1"), (1, 1, 5, 6), 3, 1),
    ]
    if hidden:
        configs.append((N_("4x4 windows at stride 3 on 11x10"), (3, 2, 11, 10), 4, 3))
    cases = []
    for description, shape, k, s in configs:
        # distinct values, so every window has one clear maximum
        x = torch.randperm(math.prod(shape), generator=generator).reshape(shape).to(DTYPE)
        x = x / x.numel() - 0.5
        stride = s or k
        dout = _randn(generator, *F.max_pool2d(x, k, stride).shape)

        def run(x=x, dout=dout, k=k, s=s, stride=stride) -> None:
            args = (*_clones(dout, x), k) if s is None else (*_clones(dout, x), k, s)
            dx = as_tensor(_call(fn, *args), "dx")
            expected = _autograd(lambda t: F.max_pool2d(t, k, stride), [x], dout)[0]
            average = _autograd(lambda t: F.avg_pool2d(t, k, stride), [x], dout)[0]
            _expect_grad(dx, expected, "dx", {
                tr("you spread each window's gradient evenly over the window: that is average "
                   "pooling's backward. Max pooling sends all of it to the window's maximum"):
                    average,
                tr("you copied each window's gradient to every pixel of the window; only the "
                   "pixel that was the maximum gets it (the others did not affect the output)"):
                    average * k * k,
                tr("windows overlap here, and one pixel is the maximum of two windows: add (+=) "
                   "the gradients of all the windows it won, do not overwrite them"):
                    _pool_assign_candidate(x, dout, k, stride, last_wins=True),
                tr("windows overlap here, and one pixel is the maximum of two windows: add "
                   "the gradients of all the windows it won, do not keep only one"):
                    _pool_assign_candidate(x, dout, k, stride, last_wins=False),
            })

        if s is None:
            name = tr("{description}: x {shape}, kernel {k}",
                      description=translated(description), shape=shape, k=k)
        else:
            name = tr("{description}: x {shape}, kernel {k}, stride {stride}",
                      description=translated(description), shape=shape, k=k, stride=s)
        cases.append(Case(name, run))
    return cases


# ---- convolution ----------------------------------------------------------------------------

_CONV_CONFIGS = [  # description, x shape, w shape, stride, padding
    (N_("one channel, 5x5 input, 3x3 kernel"), (1, 1, 5, 5), (1, 1, 3, 3), 1, 0),
    (N_("batch 2, 3 -> 4 channels, padding 1"), (2, 3, 6, 6), (4, 3, 3, 3), 1, 1),
    (N_("non-square 7x5 input, 3x2 kernel"), (1, 2, 7, 5), (3, 2, 3, 2), 1, 1),
    (N_("stride 2 on 7x7"), (2, 1, 7, 7), (2, 1, 3, 3), 2, 0),
    (N_("stride 2 that does not divide 8x9 evenly, padding 1"), (2, 2, 8, 9), (3, 2, 3, 3), 2,
     1),
    (N_("stride 3, padding 2, 4x4 kernel"), (1, 3, 10, 9), (2, 3, 4, 4), 3, 2),
]


def conv2d_backward_cases(fn: Callable, hidden: bool = False) -> list[Case]:
    generator = torch.Generator().manual_seed(case_seed(8, hidden, "conv2d_backward"))
    configs = list(_CONV_CONFIGS)
    if hidden:
        configs.append((N_("batch 4, 5 -> 6 channels, 12x11, stride 2"), (4, 5, 12, 11),
                        (6, 5, 5, 3), 2, 2))
    cases = []
    for description, x_shape, w_shape, stride, padding in configs:
        x, w = _randn(generator, *x_shape), _randn(generator, *w_shape)
        b = _randn(generator, w_shape[0])
        dout = _randn(generator, *F.conv2d(x, w, b, stride=stride, padding=padding).shape)

        def run(x=x, w=w, b=b, dout=dout, stride=stride, padding=padding) -> None:
            result = _call(fn, *_clones(dout, x, w), stride=stride, padding=padding)
            dx, dw, db = _unpack(result, ("dx", "dw", "db"))
            ex_dx, ex_dw, ex_db = _autograd(
                lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding), [x, w, b],
                dout)
            lost = [a - g for a, g in zip(x.shape, dx.shape, strict=True)] \
                if dx.dim() == 4 else [0]
            if lost[:2] == [0, 0] and any(lost) and all(0 <= d < stride for d in lost[2:]):
                raise CaseFailed(tr("dx has shape {dx_shape}, x has {x_shape}: with stride "
                                    "{stride} the last rows or columns of x were in no window; "
                                    "they still need a gradient (zero). With "
                                    "F.conv_transpose2d, pass output_padding for them",
                                    dx_shape=tuple(dx.shape), x_shape=tuple(x.shape),
                                    stride=stride), diagnosed=True)
            c_out, c_in = w.shape[:2]
            if tuple(dw.shape) == (c_in, c_out, *w.shape[2:]) != tuple(w.shape):
                raise CaseFailed(tr("dw has shape {dw_shape} but w has {w_shape} "
                                    "[C_out, C_in, kH, kW]: swap its first two axes",
                                    dw_shape=tuple(dw.shape), w_shape=tuple(w.shape)),
                                 diagnosed=True)
            if db.dim() > 1:
                raise CaseFailed(tr("db has shape {got}, expected ({c_out},): each bias is "
                                    "added at every position of every example, so sum dout "
                                    "over the batch and over all positions (dims 0, 2, 3)",
                                    got=tuple(db.shape), c_out=c_out), diagnosed=True)
            output_padding = [a - ((o - 1) * stride - 2 * padding + k) for a, o, k in
                              zip(x.shape[-2:], dout.shape[-2:], w.shape[-2:], strict=True)]
            unflipped = F.conv_transpose2d(dout, w.flip(-1, -2), stride=stride,
                                           padding=padding, output_padding=output_padding)
            _expect_grad(dx, ex_dx, "dx", {
                tr("dx slides the kernel as it is over dout; the backward pass of a correlation "
                   "is a full convolution with the kernel FLIPPED (w.flip(-1, -2)), which is "
                   "what F.conv_transpose2d(dout, w, ...) computes"): unflipped})
            _expect_grad(dw, ex_dw, "dw", {
                tr("dw is flipped: dw[o, c, u, v] = sum over n, i, j of dout[n, o, i, j] * "
                   "x_padded[n, c, i*stride + u, j*stride + v], a correlation with no flip"):
                    ex_dw.flip(-1, -2)})
            _expect_grad(db, ex_db, "db", {
                tr("db is a mean; it must be the sum of dout over the batch and all positions"):
                    ex_db / (dout.numel() / dout.shape[1])})

        cases.append(Case(tr("{description}: x {x_shape}, w {w_shape}, stride {stride}, "
                             "padding {padding}", description=translated(description),
                             x_shape=x_shape, w_shape=w_shape, stride=stride, padding=padding),
                          run))
    return cases


# ---- one training step of a tiny CNN --------------------------------------------------------
# The network the exercise trains is part of the test, not of the answer: it is Chapter 5's
# lesson network (cnn_course.lessons.backprop), which the notebook's training cells use too.

_PARAM_NAMES = ("conv_w", "conv_b", "fc_w", "fc_b")


def cnn_train_step_cases(fn: Callable, hidden: bool = False) -> list[Case]:
    generator = torch.Generator().manual_seed(case_seed(9, hidden, "cnn_train_step"))
    configs = [  # description, N, C_in, H, W, channels, classes, lr
        (N_("one 4x4 image, 2 channels, 3 classes"), 1, 1, 4, 4, 2, 3, 0.1),
        (N_("a batch of 4 6x6 images, 5 classes"), 4, 1, 6, 6, 3, 5, 0.5),
        (N_("3 colour 5x7 images, 4 classes"), 3, 3, 5, 7, 4, 4, 0.05),
        (N_("a batch of 8, 2 input channels, 10 classes"), 8, 2, 8, 8, 4, 10, 1.0),
    ]
    if hidden:
        configs.append((N_("a batch of 16 MNIST-sized images"), 16, 1, 28, 28, 6, 10, 0.2))
    cases = []
    for description, n, c_in, height, width, channels, classes, lr in configs:
        params = init_tiny_cnn(c_in, height, width, channels, classes, generator, dtype=DTYPE)
        x = _randn(generator, n, c_in, height, width)
        y = torch.randint(0, classes, (n,), generator=generator)

        def run(params=params, x=x, y=y, lr=lr, n=n) -> None:
            given = {name: value.clone() for name, value in params.items()}
            result = _call(fn, given, x.clone(), y.clone(), lr)
            if not isinstance(result, tuple | list) or len(result) != 2 \
                    or not isinstance(result[1], dict):
                raise CaseFailed(tr("return the tuple (loss, new_params), new_params a dict with "
                                    "the keys {keys}", keys=", ".join(_PARAM_NAMES)),
                                 diagnosed=True)
            loss, new = result
            loss = _as_loss(loss)
            missing = [name for name in _PARAM_NAMES if name not in new]
            if missing:
                raise CaseFailed(tr("new_params lacks {keys}", keys=", ".join(missing)),
                                 diagnosed=True)
            leaves = {name: value.clone().requires_grad_() for name, value in params.items()}
            expected_loss = F.cross_entropy(tiny_cnn_logits(leaves, x), y)
            grads = dict(zip(leaves, torch.autograd.grad(expected_loss, list(leaves.values())),
                             strict=True))
            expected_loss = expected_loss.item()
            updated = {name: params[name] - lr * grads[name] for name in params}
            if not math.isclose(loss, expected_loss, rel_tol=1e-9, abs_tol=1e-12):
                after = F.cross_entropy(tiny_cnn_logits(updated, x), y).item()
                if math.isclose(loss, after, rel_tol=1e-9):
                    raise CaseFailed(tr("the loss returned is the loss after the update; return "
                                        "the one computed in the forward pass, before it"),
                                     diagnosed=True)
                raise CaseFailed(tr("the loss is {got:.6g}, but F.cross_entropy of the network "
                                    "gives {expected:.6g}", got=loss, expected=expected_loss))
            for name in _PARAM_NAMES:
                got = as_tensor(new[name], f"new_params['{name}']")
                old, grad = params[name], grads[name]
                _expect_grad(got, updated[name], f"new_params['{name}']", {
                    tr("{name} did not change: the step is p - lr * dL/dp", name=name): old,
                    tr("{name} moved uphill: subtract lr * gradient, do not add it", name=name):
                        old + lr * grad,
                    tr("{name}'s step is {n} times too large: the loss is a mean over the batch "
                       "of {n}, so dlogits carries a factor 1/N", name=name, n=n):
                        old - n * lr * grad,
                })

        cases.append(Case(tr("{description}, lr {lr}", description=translated(description),
                             lr=lr), run))
    return cases


EXERCISES = Exercises({
    "numerical_gradient": Exercise(
        numerical_gradient_cases, N_("all {n} cases agree with the exact gradient to 1e-7."),
        N_("for each entry i: save x_i, set it to x_i + h and evaluate f, set it to x_i - h and "
           "evaluate f, restore x_i; the gradient entry is the difference over 2h.")),
    "relative_error": Exercise(
        relative_error_cases, N_("all {n} cases right."),
        N_("elementwise |a - b| / max(|a| + |b|, 1e-12), then the largest value, as a float.")),
    "linear_backward": Exercise(
        linear_backward_cases, N_("all {n} cases match autograd to a relative error below 1e-7."),
        N_("for y = x @ w.T + b: dx = dout @ w, dw = dout.T @ x, db = dout.sum(0).")),
    "relu_backward": Exercise(
        relu_backward_cases, N_("all {n} cases match autograd."),
        N_("dx = dout where x > 0, and 0 elsewhere.")),
    "sigmoid_backward": Exercise(
        sigmoid_backward_cases, N_("all {n} cases match autograd to a relative error below 1e-7."),
        N_("sigmoid' = s (1 - s), with s the sigmoid's output; multiply by dout.")),
    "softmax_cross_entropy": Exercise(
        softmax_cross_entropy_cases, N_("all {n} cases match F.cross_entropy and autograd."),
        N_("subtract each row's own largest logit first; loss = mean over the batch of "
           "-log softmax(logits)[y]; dlogits = (softmax(logits) - onehot(y)) / N.")),
    "max_pool2d_backward": Exercise(
        max_pool2d_backward_cases, N_("all {n} cases match autograd."),
        N_("for each window, find the position of its maximum in x and add the window's dout "
           "there; every other pixel gets 0.")),
    "conv2d_backward": Exercise(
        conv2d_backward_cases, N_("all {n} cases match autograd to a relative error below 1e-7."),
        N_("dx = F.conv_transpose2d(dout, w, stride, padding, output_padding) (a full convolution "
           "with the flipped kernel); dw[o, c, u, v] sums dout[n, o, i, j] * x_padded[n, c, "
           "i*stride + u, j*stride + v]; db sums dout over dims 0, 2, 3.")),
    "cnn_train_step": Exercise(
        cnn_train_step_cases, N_("all {n} cases match autograd + torch.optim.SGD."),
        N_("forward through conv, ReLU, flatten, linear and the loss, keeping each cache; then "
           "call the backward functions in reverse order and update p - lr * dp.")),
})
run_check = EXERCISES.run_check


def check_numerical_gradient(fn: Callable) -> None:
    """Central differences on x**3, exp and tanh of a matrix product, with the h given."""
    report(run_check("numerical_gradient", fn))


def check_relative_error(fn: Callable) -> None:
    """The largest elementwise |a - b| / (|a| + |b|), zeros and signs included."""
    report(run_check("relative_error", fn))


def check_linear_backward(fn: Callable) -> None:
    """``linear_backward(dout, x, w) -> (dx, dw, db)`` against autograd on several shapes."""
    report(run_check("linear_backward", fn))


def check_relu_backward(fn: Callable) -> None:
    """``relu_backward(dout, x) -> dx`` against autograd, zeros and negatives included."""
    report(run_check("relu_backward", fn))


def check_sigmoid_backward(fn: Callable) -> None:
    """``sigmoid_backward(dout, out) -> dx`` against autograd, saturated inputs included."""
    report(run_check("sigmoid_backward", fn))


def check_softmax_cross_entropy(fn: Callable) -> None:
    """``softmax_cross_entropy(logits, y) -> (loss, dlogits)`` against F.cross_entropy."""
    report(run_check("softmax_cross_entropy", fn))


def check_max_pool2d_backward(fn: Callable) -> None:
    """``max_pool2d_backward(dout, x, kernel_size, stride) -> dx``, overlapping windows too."""
    report(run_check("max_pool2d_backward", fn))


def check_conv2d_backward(fn: Callable) -> None:
    """``conv2d_backward(dout, x, w, stride, padding) -> (dx, dw, db)`` against autograd."""
    report(run_check("conv2d_backward", fn))


def check_cnn_train_step(fn: Callable) -> None:
    """One hand-made SGD step of the tiny CNN against autograd + ``torch.optim.SGD``."""
    report(run_check("cnn_train_step", fn))
