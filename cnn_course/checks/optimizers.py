"""Checkers for Chapter 6: optimizer updates written from scratch.

Each exercise is a step function ``fn(params, grads, state, lr=..., **hyperparameters)`` that
updates the tensors in ``params`` in place. A case runs it for several steps on several
tensors of different shapes, next to the matching ``torch.optim`` optimizer fed the same
gradients, and compares the parameters after every step. When they differ, the learner's
parameters are compared with a list of known mistakes (each written out below as a variant
of the update) so that the verdict can name the mistake.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from cnn_course.checks.core import (
    Case,
    CaseFailed,
    Exercise,
    Exercises,
    case_seed,
    expect_close,
    forbid,
    observed,
    report,
)
from cnn_course.messages import ENGLISH, N_, tr, translated, using_language

StepFn = Callable[..., object]
_ATOL, _RTOL = 1e-6, 1e-5


# ---- the runs the cases are made of ---------------------------------------------------------

@dataclass(frozen=True)
class _Run:
    """One case: parameter shapes, number of steps, hyperparameters, and the gradients' kind."""

    description: str
    shapes: tuple[tuple[int, ...], ...]
    steps: int
    hyper: dict
    lrs: tuple[float, ...] | None = None  # a learning rate per step (a schedule), else constant
    grad_scale: float = 1.0
    zero_grads: bool = False              # some gradient entries exactly zero at every step
    seed: int = 0
    salt: str = ""                        # the English description, which seeds hidden cases

    def lr_at(self, step: int) -> float:
        return self.lrs[step - 1] if self.lrs else self.hyper["lr"]

    def data(self, seed: int) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        """Initial parameters and the gradients of every step (float32, reproducible)."""
        generator = torch.Generator().manual_seed(seed)
        params = [torch.randn(shape, generator=generator) for shape in self.shapes]
        grads = []
        for _ in range(self.steps):
            step = [self.grad_scale * torch.randn(shape, generator=generator)
                    for shape in self.shapes]
            if self.zero_grads:  # a unit that received no gradient, as a dead ReLU would
                for g in step:
                    g.view(-1)[::3] = 0.0
            grads.append(step)
        return params, grads


def _torch_trajectory(make_optimizer: Callable, run: _Run, params0: list[torch.Tensor],
                      grads: list[list[torch.Tensor]]) -> list[list[torch.Tensor]]:
    """Parameters after each step of the real ``torch.optim`` optimizer."""
    params = [p.clone().requires_grad_(True) for p in params0]
    hyper = dict(run.hyper, lr=run.lr_at(1))
    optimizer = make_optimizer(params, **hyper)
    after = []
    for step, step_grads in enumerate(grads, start=1):
        for group in optimizer.param_groups:
            group["lr"] = run.lr_at(step)
        for p, g in zip(params, step_grads, strict=True):
            p.grad = g.clone()
        optimizer.step()
        after.append([p.detach().clone() for p in params])
    return after


def _variant_trajectory(variant: StepFn, run: _Run, params0: list[torch.Tensor],
                        grads: list[list[torch.Tensor]], steps: int
                        ) -> list[list[torch.Tensor]]:
    """Parameters after each of the first ``steps`` steps of a (wrong) variant of the update."""
    params = [p.clone() for p in params0]
    state: dict = {}
    after = []
    with torch.no_grad():
        for step in range(1, steps + 1):
            variant(params, [g.clone() for g in grads[step - 1]], state,
                    **dict(run.hyper, lr=run.lr_at(step)))
            after.append([p.clone() for p in params])
    return after


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and torch.allclose(x.double(), y.double(), atol=_ATOL, rtol=_RTOL,
                                              equal_nan=True)
        for x, y in zip(a, b, strict=True))


# torch.optim's own optimizers, refused while the learner's update runs
_TORCH_OPTIMIZERS = [(torch.optim, name) for name in ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW")]
_TORCH_OPTIM_REFUSED = N_("your function used torch.optim's optimizer; the exercise is to "
                             "write the update yourself")


@dataclass(frozen=True)
class _Spec:
    """What one exercise is compared with, and the mistakes it knows by name."""

    torch_name: str
    mistakes: dict[str, StepFn] = field(default_factory=dict)  # explanation -> wrong update

    def make_optimizer(self, params, **hyper):
        return getattr(torch.optim, self.torch_name)(params, **hyper)


def _learner_step(fn: StepFn, run: _Run, step: int, params: list[torch.Tensor],
                  grads: list[list[torch.Tensor]], state: dict) -> None:
    with forbid(_TORCH_OPTIMIZERS, translated(_TORCH_OPTIM_REFUSED)), torch.no_grad():
        fn(params, [g.clone() for g in grads[step - 1]], state,
           **dict(run.hyper, lr=run.lr_at(step)))


def _replaced(params: list[torch.Tensor], originals: list[torch.Tensor]) -> tuple[int, int]:
    """The length of ``params`` and the index of its first tensor that is not the one the
    checker put there (-1 if none)."""
    same = [p is original for p, original in zip(params, originals, strict=False)]
    return len(params), same.index(False) if False in same else -1


def _check_in_place(params: list[torch.Tensor], originals: list[torch.Tensor],
                    before: list[torch.Tensor], step: int) -> None:
    """Name the ways of not updating the caller's tensors."""
    # Object identity is not part of the state a grader replays: observe it as one unit.
    length, replaced = observed(lambda: _replaced(params, originals))
    if length != len(originals):
        raise CaseFailed(tr("your function changed the length of the params list; update the "
                            "tensors in it, do not add or remove any"), diagnosed=True)
    if replaced >= 0:
        raise CaseFailed(tr(
            "your function replaced params[{index}] with a new tensor; a model keeps "
            "its own tensors, so update them in place: p -= ... or p.mul_(...)", index=replaced),
            diagnosed=True)
    if all(torch.equal(p, b) for p, b in zip(params, before, strict=True)):
        raise CaseFailed(tr(
            "the parameters did not change at step {step}. Writing `p = p - lr * g` makes "
            "a new tensor and leaves the list untouched; update in place with "
            "`p -= lr * g` (or `p.sub_(lr * g)`)", step=step), diagnosed=True)


def _run_case(fn: StepFn, spec: _Spec, run: _Run, seed: int) -> None:
    params0, grads = run.data(seed)
    expected = _torch_trajectory(spec.make_optimizer, run, params0, grads)
    params = [p.clone() for p in params0]
    originals = list(params)
    state: dict = {}
    first_wrong = None
    for step in range(1, run.steps + 1):
        before = [p.clone() for p in params]
        _learner_step(fn, run, step, params, grads, state)
        _check_in_place(params, originals, before, step)
        if not _same(params, expected[step - 1]):
            first_wrong = step
            break
    if first_wrong is None:
        return
    # Keep going to the end of the case: a mistake is named only if it explains every step
    # from the first wrong one on (several mistakes can agree on a single step).
    wrong_at = [[p.clone() for p in params]]
    for step in range(first_wrong + 1, run.steps + 1):
        try:
            _learner_step(fn, run, step, params, grads, state)
        except Exception:  # judged on the steps it managed
            break
        wrong_at.append([p.clone() for p in params])
    last = first_wrong + len(wrong_at) - 1
    for explanation, variant in spec.mistakes.items():
        trajectory = _variant_trajectory(variant, run, params0, grads, last)
        if all(_same(got, want) for got, want in zip(wrong_at, trajectory[first_wrong - 1:],
                                                     strict=True)):
            raise CaseFailed(tr("after step {step}: {explanation}", step=first_wrong,
                                explanation=translated(explanation)), diagnosed=True)
    for i, (got, want) in enumerate(zip(wrong_at[0], expected[first_wrong - 1], strict=True)):
        expect_close(got, want, tr("after step {step}, params[{index}]", step=first_wrong,
                                   index=i), atol=_ATOL, rtol=_RTOL)


def _cases(fn: StepFn, spec: _Spec, runs: list[_Run], hidden: bool) -> list[Case]:
    seeds = [case_seed(run.seed, hidden, f"{spec.torch_name}: {run.salt}") for run in runs]
    return [Case(run.description, lambda run=run, seed=seed: _run_case(fn, spec, run, seed))
            for run, seed in zip(runs, seeds, strict=True)]


# ---- the known mistakes, written as (wrong) updates ------------------------------------------

def _l2(params, grads, weight_decay):
    return [g + weight_decay * p for p, g in zip(params, grads, strict=True)]


def _sgd_variant(*, decay: str = "l2", buffer: str = "sum", nesterov_mode: str = "right",
                 lr_inside: bool = False) -> StepFn:
    """SGD with one deliberate change. decay: l2 | none | after; buffer: sum | dampened |
    forgotten; nesterov_mode: right | ignored | old_buffer."""
    def step(params, grads, state, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        if decay == "l2":
            grads = _l2(params, grads, weight_decay)
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            direction = g
            if momentum:
                scale = lr if lr_inside else 1.0
                old = state.get(i)
                if old is None or buffer == "forgotten":
                    new = scale * g.clone()
                elif buffer == "dampened":
                    new = momentum * old + (1 - momentum) * scale * g
                else:
                    new = momentum * old + scale * g
                state[i] = new
                if nesterov and nesterov_mode == "right":
                    direction = scale * g + momentum * new
                elif nesterov and nesterov_mode == "old_buffer":
                    direction = scale * g + momentum * (old if old is not None else 0 * g)
                else:
                    direction = new
                if lr_inside:
                    p -= direction
                    direction = None
            if decay == "after":
                direction = direction + weight_decay * p
            if direction is not None:
                p -= lr * direction
    return step


def _adagrad_variant(*, eps_mode: str = "outside", accumulate: bool = True,
                     decay: bool = True) -> StepFn:
    def step(params, grads, state, lr=0.01, eps=1e-10, weight_decay=0.0):
        if decay:
            grads = _l2(params, grads, weight_decay)
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            total = (state.get(i, 0 * p) if accumulate else 0 * p) + g * g
            state[i] = total
            if eps_mode == "outside":
                p -= lr * g / (total.sqrt() + eps)
            elif eps_mode == "inside":
                p -= lr * g / (total + eps).sqrt()
            else:
                p -= lr * g / total.sqrt()
    return step


def _rmsprop_variant(*, swapped: bool = False, eps_mode: str = "outside",
                     corrected: bool = False, keep: bool = True, decay: bool = True) -> StepFn:
    def step(params, grads, state, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0):
        if decay:
            grads = _l2(params, grads, weight_decay)
        state["t"] = t = state.get("t", 0) + 1
        keep_weight, new_weight = (1 - alpha, alpha) if swapped else (alpha, 1 - alpha)
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            old = state.get(i, 0 * p) if keep else 0 * p
            state[i] = v = keep_weight * old + new_weight * g * g
            if corrected:
                v = v / (1 - alpha ** t)
            if eps_mode == "outside":
                denominator = v.sqrt() + eps
            elif eps_mode == "inside":
                denominator = (v + eps).sqrt()
            else:
                denominator = v.sqrt()
            p -= lr * g / denominator
    return step


def _adam_variant(*, correct_m: bool = True, correct_v: bool = True, eps_mode: str = "outside",
                  decay: str = "l2", t_mode: str = "per_call", swapped: bool = False,
                  decay_scale: str = "lr", betas_mode: str = "right") -> StepFn:
    """Adam/AdamW with one deliberate change. eps_mode: outside | inside | uncorrected;
    decay: l2 | decoupled | none | both; t_mode: per_call | per_tensor | from_zero | stuck;
    decay_scale (decoupled only): lr | none; betas_mode: right | swapped (β2 for m and β1
    for v everywhere) | swapped_moments (in the averages only, the corrections right)."""
    def step(params, grads, state, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        beta1, beta2 = betas
        # the betas the moving averages use, and the ones the bias corrections use
        m_beta, v_beta = (beta2, beta1) if betas_mode != "right" else (beta1, beta2)
        m_fix, v_fix = (beta2, beta1) if betas_mode == "swapped" else (beta1, beta2)
        if decay in ("l2", "both"):
            grads = _l2(params, grads, weight_decay)
        if decay in ("decoupled", "both"):
            for p in params:
                p *= 1 - (lr * weight_decay if decay_scale == "lr" else weight_decay)
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if t_mode == "per_tensor":
                state["t"] = t = state.get("t", 0) + 1
            elif t_mode == "stuck":
                t = 1
            else:
                if i == 0:
                    state["t"] = state.get("t", 0) + 1
                t = state["t"] - (1 if t_mode == "from_zero" else 0)
            m_old, v_old = state.get(("m", i), 0 * p), state.get(("v", i), 0 * p)
            if swapped:
                m = (1 - m_beta) * m_old + m_beta * g
                v = (1 - v_beta) * v_old + v_beta * g * g
            else:
                m = m_beta * m_old + (1 - m_beta) * g
                v = v_beta * v_old + (1 - v_beta) * g * g
            state["m", i], state["v", i] = m, v
            m_hat = m / (1 - m_fix ** t) if correct_m else m
            v_hat = v / (1 - v_fix ** t) if correct_v else v
            if eps_mode == "inside":
                denominator = (v_hat + eps).sqrt()
            elif eps_mode == "uncorrected":
                denominator = (v.sqrt() + eps) / (1 - v_fix ** t) ** 0.5
            else:
                denominator = v_hat.sqrt() + eps
            p -= lr * m_hat / denominator
    return step


_LR_INSIDE = N_(
    "you folded the learning rate into the velocity (v = μv + lr·g, then p -= v). At a "
    "constant learning rate that is the same update as PyTorch's (your v is lr times its "
    "buffer), which is why the constant-lr cases passed; here lr changes between steps, and "
    "your old velocity keeps the old learning rates. PyTorch keeps b = μb + g and multiplies "
    "by the current lr: p -= lr·b, so that a schedule takes effect at once")
_STATE_FORGOTTEN = N_(
    "your steps are plain SGD steps: the momentum buffer must survive between calls. Keep it "
    "in `state` (for example state[i] for params[i]) and start it at b = g on the first step")

# Each explanation is an English text marked with N_, translated where a case shows it.
SGD = _Spec("SGD", {
    N_("weight_decay is ignored: add weight_decay * p to the gradient before anything else"):
        _sgd_variant(decay="none"),
    N_("the weight decay is added after the momentum buffer; PyTorch adds it to the gradient "
       "first (g ← g + λp), so that it also flows through the buffer"):
        _sgd_variant(decay="after"),
    _STATE_FORGOTTEN: _sgd_variant(buffer="forgotten"),
    _LR_INSIDE: _sgd_variant(lr_inside=True),
    N_("you averaged the gradient into the buffer, b = μb + (1−μ)g; that is PyTorch's "
       "dampening=μ. The default (dampening=0) sums: b = μb + g"):
        _sgd_variant(buffer="dampened"),
    N_("nesterov=True was ignored: with Nesterov momentum the step is g + μb (b already "
       "updated), not b"): _sgd_variant(nesterov_mode="ignored"),
    N_("for Nesterov, use the buffer after this step's update: b ← μb + g, then step along "
       "g + μb"): _sgd_variant(nesterov_mode="old_buffer"),
})

ADAGRAD = _Spec("Adagrad", {
    N_("the update divides by zero where the gradient has always been zero (0/0 gives NaN): "
       "add eps to the denominator, after the square root: g / (sqrt(s) + eps)"):
        _adagrad_variant(eps_mode="none"),
    N_("eps is inside the square root; PyTorch adds it after: g / (sqrt(s) + eps)"):
        _adagrad_variant(eps_mode="inside"),
    N_("the sum of squared gradients must accumulate over all steps (s ← s + g², kept in "
       "`state`); yours only holds the current step's g²"): _adagrad_variant(accumulate=False),
    N_("weight_decay is ignored: add weight_decay * p to the gradient first"):
        _adagrad_variant(decay=False),
})

RMSPROP = _Spec("RMSprop", {
    N_("alpha and 1 − alpha are swapped: the running average keeps alpha of the old value "
       "and adds (1 − alpha) of the new g²: v ← αv + (1−α)g²"): _rmsprop_variant(swapped=True),
    N_("eps is inside the square root (TensorFlow's choice); PyTorch adds it after: "
       "g / (sqrt(v) + eps)"): _rmsprop_variant(eps_mode="inside"),
    N_("the update divides by zero where the gradient has always been zero (0/0 gives NaN): "
       "add eps to the denominator, after the square root: g / (sqrt(v) + eps)"):
        _rmsprop_variant(eps_mode="none"),
    N_("PyTorch's RMSprop has no bias correction: divide g by sqrt(v) + eps directly"):
        _rmsprop_variant(corrected=True),
    N_("the running average must survive between calls: keep v in `state`"):
        _rmsprop_variant(keep=False),
    N_("weight_decay is ignored: add weight_decay * p to the gradient first"):
        _rmsprop_variant(decay=False),
})

_NO_CORRECTION = N_(
    "the bias correction is missing. m and v start at 0, so after step 1 m = (1−β1)g and "
    "v = (1−β2)g²: the step is lr·(1−β1)/sqrt(1−β2) ≈ 3.2·lr instead of lr. Divide m by "
    "1 − β1^t and v by 1 − β2^t, with t the step count (1 at the first step)")


_BETAS_SWAPPED = N_(
    "β1 and β2 are swapped: you used β2 for the first moment m and β1 for the second moment "
    "v. betas = (β1, β2): β1 (0.9 by default) averages the gradients, m ← β1·m + (1−β1)·g, "
    "and β2 (0.999) the squared gradients, v ← β2·v + (1−β2)·g²; the bias corrections "
    "divide m by 1 − β1^t and v by 1 − β2^t")
_BETAS_SWAPPED_IN_AVERAGES = N_(  # _BETAS_SWAPPED, and a remark (one text, so one translation)
    "β1 and β2 are swapped: you used β2 for the first moment m and β1 for the second moment "
    "v. betas = (β1, β2): β1 (0.9 by default) averages the gradients, m ← β1·m + (1−β1)·g, "
    "and β2 (0.999) the squared gradients, v ← β2·v + (1−β2)·g²; the bias corrections "
    "divide m by 1 − β1^t and v by 1 − β2^t. (Your bias corrections already use the right "
    "betas; only the moving averages have them swapped.)")


def _adam_mistakes(decay: str) -> dict[str, StepFn]:
    """Mistakes in the Adam part of the update, with Adam's (l2) or AdamW's decay."""
    return {
        _NO_CORRECTION: _adam_variant(correct_m=False, correct_v=False, decay=decay),
        N_("only v is bias-corrected: divide m by 1 − β1^t as well"):
            _adam_variant(correct_m=False, decay=decay),
        N_("only m is bias-corrected: divide v by 1 − β2^t as well"):
            _adam_variant(correct_v=False, decay=decay),
        N_("the step count must start at 1 on the first call: with t = 0, 1 − β^t = 0 and "
           "the correction divides by zero"): _adam_variant(t_mode="from_zero", decay=decay),
        N_("your step count goes up once per parameter tensor; it must go up once per call, "
           "so that every tensor uses the same t"):
            _adam_variant(t_mode="per_tensor", decay=decay),
        N_("your step count never advances: t must go up by one at every call (keep it in "
           "`state`), so that the bias correction fades as 1 − β^t approaches 1"):
            _adam_variant(t_mode="stuck", decay=decay),
        N_("β and 1 − β are swapped: m ← β1·m + (1−β1)·g and v ← β2·v + (1−β2)·g²"):
            _adam_variant(swapped=True, decay=decay),
        _BETAS_SWAPPED: _adam_variant(betas_mode="swapped", decay=decay),
        _BETAS_SWAPPED_IN_AVERAGES: _adam_variant(betas_mode="swapped_moments", decay=decay),
        N_("eps is inside the square root; PyTorch adds it after: m̂ / (sqrt(v̂) + eps)"):
            _adam_variant(eps_mode="inside", decay=decay),
        N_("eps is added to sqrt(v) before the bias correction (the Adam paper's 'efficient' "
           "form); PyTorch adds it to sqrt(v̂): m̂ / (sqrt(v̂) + eps)"):
            _adam_variant(eps_mode="uncorrected", decay=decay),
    }


ADAM = _Spec("Adam", {
    **_adam_mistakes("l2"),
    N_("weight_decay is ignored: Adam's weight decay is L2, g ← g + λp before the moments"):
        _adam_variant(decay="none"),
    N_("you decayed the weights directly (p ← p(1 − lr·λ)); that is AdamW. torch.optim.Adam "
       "adds λp to the gradient instead"): _adam_variant(decay="decoupled"),
})

ADAMW = _Spec("AdamW", {
    N_("this is Adam with L2: the weight decay went into the gradient (and so into m and v). "
       "AdamW decouples it: p ← p(1 − lr·λ), and the moments see the plain gradient"):
        _adam_variant(decay="l2"),
    N_("you applied the decay twice, as L2 in the gradient and as p(1 − lr·λ); AdamW only "
       "does the second"): _adam_variant(decay="both"),
    N_("the decay must be scaled by the learning rate: p ← p(1 − lr·λ), not p(1 − λ)"):
        _adam_variant(decay="decoupled", decay_scale="none"),
    N_("weight_decay is ignored: multiply p by (1 − lr·λ) before the Adam step"):
        _adam_variant(decay="none"),
    **_adam_mistakes("decoupled"),
})


# ---- the cases ---------------------------------------------------------------------------------

_THREE_SHAPES = ((3,), (2, 4), (2, 3, 2, 2))

SGD_DEFAULTS = dict(momentum=0.0, nesterov=False, weight_decay=0.0)
SGD_RUNS = [
    _Run(N_("plain SGD"), ((5,),), 3, dict(lr=0.1)),
    _Run(N_("weight decay without momentum"), ((5,), (2, 2)), 3,
         dict(lr=0.1, weight_decay=0.2)),
    _Run(N_("momentum on three tensors of different shapes"), _THREE_SHAPES, 5,
         dict(lr=0.05, momentum=0.9)),
    _Run(N_("a scalar parameter (shape []) and momentum 0.5"), ((), (4,)), 4,
         dict(lr=0.1, momentum=0.5)),
    _Run(N_("momentum and weight decay"), ((3, 4), (6,)), 5,
         dict(lr=0.05, momentum=0.9, weight_decay=0.1)),
    _Run(N_("Nesterov momentum"), _THREE_SHAPES, 5,
         dict(lr=0.05, momentum=0.9, nesterov=True)),
    _Run(N_("Nesterov momentum and weight decay"), ((4, 3),), 5,
         dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05)),
    _Run(N_("momentum with a learning-rate schedule"), ((3,), (2, 4)), 5,
         dict(lr=0.1, momentum=0.9), lrs=(0.1, 0.05, 0.2, 0.01, 0.1)),
    _Run(N_("Nesterov with a learning-rate schedule"), ((6,),), 4,
         dict(lr=0.1, momentum=0.9, nesterov=True), lrs=(0.2, 0.1, 0.05, 0.1)),
]

ADAGRAD_DEFAULTS = dict(eps=1e-10, weight_decay=0.0)
ADAGRAD_RUNS = [
    _Run(N_("one tensor"), ((5,),), 3, dict(lr=0.1)),
    _Run(N_("three tensors, some gradient entries always zero"), _THREE_SHAPES, 5,
         dict(lr=0.1), zero_grads=True),
    _Run(N_("weight decay"), ((3, 4), (2,)), 4, dict(lr=0.1, weight_decay=0.1)),
    _Run(N_("a large eps with small gradients (where does eps go?)"), ((4,), (2, 3)), 4,
         dict(lr=0.1, eps=0.1), grad_scale=0.01),
]

RMSPROP_DEFAULTS = dict(alpha=0.99, eps=1e-8, weight_decay=0.0)
RMSPROP_RUNS = [
    _Run(N_("one tensor"), ((5,),), 3, dict(lr=0.01)),
    _Run(N_("three tensors, alpha 0.9"), _THREE_SHAPES, 6, dict(lr=0.01, alpha=0.9)),
    _Run(N_("some gradient entries always zero"), ((3, 3),), 3, dict(lr=0.01),
         zero_grads=True),
    _Run(N_("weight decay"), ((3, 4), (2,)), 4, dict(lr=0.01, weight_decay=0.1)),
    _Run(N_("a large eps with small gradients (where does eps go?)"), ((4,), (2, 3)), 4,
         dict(lr=0.01, eps=0.1), grad_scale=0.01),
]

ADAM_DEFAULTS = dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
ADAM_RUNS = [
    _Run(N_("the first step, where bias correction shows most"), ((5,),), 1, dict(lr=0.01)),
    _Run(N_("three tensors of different shapes"), _THREE_SHAPES, 5, dict(lr=0.01)),
    _Run(N_("betas (0.8, 0.99)"), ((4,), (2, 2)), 8, dict(lr=0.05, betas=(0.8, 0.99))),
    _Run(N_("L2 weight decay"), ((3, 4), (2,)), 4, dict(lr=0.05, weight_decay=0.1)),
    _Run(N_("a large eps with small gradients (where does eps go?)"), ((4,), (2, 3)), 4,
         dict(lr=0.05, eps=0.1), grad_scale=0.01),
]

ADAMW_DEFAULTS = dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
ADAMW_RUNS = [
    _Run(N_("default weight decay 0.01"), ((5,),), 3, dict(lr=0.1)),
    _Run(N_("three tensors, weight decay 0.1"), _THREE_SHAPES, 5,
         dict(lr=0.05, weight_decay=0.1)),
    _Run(N_("weight_decay=0, which is plain Adam"), ((4,), (2, 2)), 3,
         dict(lr=0.05, weight_decay=0.0)),
    _Run(N_("a large weight decay 0.5"), ((3, 2),), 4, dict(lr=0.1, weight_decay=0.5)),
    _Run(N_("betas (0.8, 0.99) and a large eps with small gradients"), ((4,), (2, 3)), 4,
         dict(lr=0.05, betas=(0.8, 0.99), eps=0.1), grad_scale=0.01),
]


# Hidden runs with hyperparameter values, shapes and step counts that no visible case uses.
SGD_HIDDEN_RUNS = [
    _Run(N_("Nesterov momentum 0.6 and a strong weight decay"), ((5, 2), (1,)), 7,
         dict(lr=0.03, momentum=0.6, nesterov=True, weight_decay=0.3), seed=11),
    _Run(N_("momentum 0.95"), ((2, 2, 3),), 6, dict(lr=0.02, momentum=0.95), seed=12),
]
ADAGRAD_HIDDEN_RUNS = [
    _Run(N_("lr 0.3, eps 1e-3 and weight decay 0.05"), ((2, 7),), 6,
         dict(lr=0.3, eps=1e-3, weight_decay=0.05), seed=11),
]
RMSPROP_HIDDEN_RUNS = [
    _Run(N_("alpha 0.75 and weight decay 0.2"), ((6, 2), (3,)), 7,
         dict(lr=0.02, alpha=0.75, weight_decay=0.2), seed=11),
]
ADAM_HIDDEN_RUNS = [
    _Run(N_("betas (0.5, 0.9) and weight decay 0.02"), ((7,), (2, 3)), 9,
         dict(lr=0.02, betas=(0.5, 0.9), weight_decay=0.02), seed=11),
]
ADAMW_HIDDEN_RUNS = [
    _Run(N_("betas (0.7, 0.95) and weight decay 0.25"), ((3, 5),), 7,
         dict(lr=0.03, betas=(0.7, 0.95), weight_decay=0.25), seed=11),
]


def _describe(run: _Run, longer: bool) -> str:
    """The description of a case in the current language: the run's own (marked with ``N_``),
    then its steps, shapes and the options it sets."""
    description = translated(run.description)
    if longer:
        description = tr("{description}, longer", description=description)
    lr_text = (tr("lr changing every step {lrs}", lrs=list(run.lrs)) if run.lrs
               else f"lr={run.hyper['lr']}")
    options = "".join(f", {k}={v}" for k, v in run.hyper.items() if k != "lr")
    shapes = ", ".join(str(list(shape)) for shape in run.shapes)
    if run.steps > 1:
        return tr("{description} ({steps} steps on shapes {shapes}; {lr_text}{options})",
                  description=description, steps=run.steps, shapes=shapes, lr_text=lr_text,
                  options=options)
    return tr("{description} ({steps} step on shapes {shapes}; {lr_text}{options})",
              description=description, steps=run.steps, shapes=shapes, lr_text=lr_text,
              options=options)


def _with_defaults(runs: list[_Run], defaults: dict, hidden: bool,
                   hidden_runs: Sequence[_Run] = ()) -> list[_Run]:
    """Describe each run by the options it sets, then pass every hyperparameter explicitly
    (so that the learner's own defaults do not matter). Hidden cases add a longer run and
    ``hidden_runs``, with hyperparameters that no visible case uses."""
    described = [(run, False) for run in runs]
    if hidden:
        longest = max(runs, key=lambda run: len(run.hyper))
        described.append((_Run(longest.description, longest.shapes + ((2, 5),), 12,
                               longest.hyper, seed=7), True))
        described += [(run, False) for run in hidden_runs]
    complete = []
    for run, longer in described:
        with using_language(ENGLISH):  # the hidden cases' inputs must not depend on the language
            salt = _describe(run, longer)
        complete.append(_Run(_describe(run, longer), run.shapes, run.steps,
                             {**defaults, **run.hyper}, run.lrs, run.grad_scale,
                             run.zero_grads, run.seed, salt))
    return complete


def sgd_step_cases(fn: StepFn, hidden: bool = False) -> list[Case]:
    return _cases(fn, SGD, _with_defaults(SGD_RUNS, SGD_DEFAULTS, hidden,
                                          SGD_HIDDEN_RUNS), hidden)


def adagrad_step_cases(fn: StepFn, hidden: bool = False) -> list[Case]:
    return _cases(fn, ADAGRAD, _with_defaults(ADAGRAD_RUNS, ADAGRAD_DEFAULTS, hidden,
                                              ADAGRAD_HIDDEN_RUNS), hidden)


def rmsprop_step_cases(fn: StepFn, hidden: bool = False) -> list[Case]:
    return _cases(fn, RMSPROP, _with_defaults(RMSPROP_RUNS, RMSPROP_DEFAULTS, hidden,
                                              RMSPROP_HIDDEN_RUNS), hidden)


def adam_step_cases(fn: StepFn, hidden: bool = False) -> list[Case]:
    return _cases(fn, ADAM, _with_defaults(ADAM_RUNS, ADAM_DEFAULTS, hidden,
                                           ADAM_HIDDEN_RUNS), hidden)


def adamw_step_cases(fn: StepFn, hidden: bool = False) -> list[Case]:
    return _cases(fn, ADAMW, _with_defaults(ADAMW_RUNS, ADAMW_DEFAULTS, hidden,
                                            ADAMW_HIDDEN_RUNS), hidden)


EXERCISES = Exercises({
    "sgd_step": Exercise(
        sgd_step_cases, N_("all {n} cases match torch.optim.SGD step for step."),
        N_("for each tensor: g = g + weight_decay·p; with momentum, b = g at the first step "
           "and b = momentum·b + g after it (keep b in state); step = g + momentum·b if "
           "nesterov else b; then p -= lr·step.")),
    "adagrad_step": Exercise(
        adagrad_step_cases, N_("all {n} cases match torch.optim.Adagrad step for step."),
        N_("g = g + weight_decay·p; s = s + g² (s starts at 0 and lives in state); "
           "p -= lr·g / (sqrt(s) + eps).")),
    "rmsprop_step": Exercise(
        rmsprop_step_cases, N_("all {n} cases match torch.optim.RMSprop step for step."),
        N_("g = g + weight_decay·p; v = alpha·v + (1 − alpha)·g² (v starts at 0); "
           "p -= lr·g / (sqrt(v) + eps).")),
    "adam_step": Exercise(
        adam_step_cases, N_("all {n} cases match torch.optim.Adam step for step."),
        N_("t = t + 1 once per call; g = g + weight_decay·p; m = β1·m + (1−β1)·g; "
           "v = β2·v + (1−β2)·g²; m̂ = m/(1−β1^t); v̂ = v/(1−β2^t); "
           "p -= lr·m̂/(sqrt(v̂) + eps).")),
    "adamw_step": Exercise(
        adamw_step_cases, N_("all {n} cases match torch.optim.AdamW step for step."),
        N_("first p = p·(1 − lr·weight_decay); then Adam's step with the plain gradient "
           "(no weight decay in g).")),
})
run_check = EXERCISES.run_check


def check_sgd_step(fn: StepFn) -> None:
    """Compare an SGD step (momentum, Nesterov, weight decay) with ``torch.optim.SGD``."""
    report(run_check("sgd_step", fn))


def check_adagrad_step(fn: StepFn) -> None:
    """Compare an Adagrad step with ``torch.optim.Adagrad``."""
    report(run_check("adagrad_step", fn))


def check_rmsprop_step(fn: StepFn) -> None:
    """Compare an RMSprop step with ``torch.optim.RMSprop``."""
    report(run_check("rmsprop_step", fn))


def check_adam_step(fn: StepFn) -> None:
    """Compare an Adam step (bias correction, L2 weight decay) with ``torch.optim.Adam``."""
    report(run_check("adam_step", fn))


def check_adamw_step(fn: StepFn) -> None:
    """Compare an AdamW step (decoupled weight decay) with ``torch.optim.AdamW``."""
    report(run_check("adamw_step", fn))
