"""The Chapter 6 checkers pass correct updates and name the usual mistakes.

The wrong answers below are written the way a learner would write them, independently of the
checker's own list of mistakes.
"""

import pytest
import torch

from cnn_course.checks import optimizers as checks
from cnn_course.checks.core import has_passed, solved_or_reference
from cnn_course.reference import optimizers as reference


def run(exercise, fn, hidden=False):
    return checks.run_check(exercise, fn, hidden=hidden)


def failed_with(result, *fragments):
    assert not result.passed, result.message
    for fragment in fragments:
        assert fragment in result.message, result.message
    return result.message


# ---- SGD --------------------------------------------------------------------------------------

def sgd_lr_in_velocity(params, grads, state, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        g = g + weight_decay * p
        v = momentum * state.get(i, torch.zeros_like(p)) + lr * g
        state[i] = v
        p -= (lr * g + momentum * v) if nesterov else v


def test_momentum_with_lr_in_velocity_passes_constant_lr_but_not_a_schedule():
    message = failed_with(run("sgd_step", sgd_lr_in_velocity), "folded the learning rate",
                          "lr changes between steps")
    assert "learning-rate schedule" in message  # the case that tells the two forms apart
    assert "Hint" not in message


def test_sgd_mistakes_are_named():
    def no_weight_decay(params, grads, state, lr, momentum=0.0, nesterov=False,
                        weight_decay=0.0):
        reference.sgd_step(params, grads, state, lr, momentum, nesterov, 0.0)
    failed_with(run("sgd_step", no_weight_decay), "weight_decay is ignored")

    def stateless(params, grads, state, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        reference.sgd_step(params, grads, {}, lr, momentum, nesterov, weight_decay)
    failed_with(run("sgd_step", stateless), "momentum buffer must survive between calls")

    def dampened(params, grads, state, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            g = g + weight_decay * p
            if momentum:
                state[i] = momentum * state[i] + (1 - momentum) * g if i in state else g
                g = g + momentum * state[i] if nesterov else state[i]
            p -= lr * g
    failed_with(run("sgd_step", dampened), "dampening")

    def nesterov_ignored(params, grads, state, lr, momentum=0.0, nesterov=False,
                         weight_decay=0.0):
        reference.sgd_step(params, grads, state, lr, momentum, False, weight_decay)
    failed_with(run("sgd_step", nesterov_ignored), "nesterov=True was ignored")

    def decay_after_buffer(params, grads, state, lr, momentum=0.0, nesterov=False,
                           weight_decay=0.0):
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            step = g
            if momentum:
                state[i] = momentum * state[i] + g if i in state else g.clone()
                step = g + momentum * state[i] if nesterov else state[i]
            p -= lr * (step + weight_decay * p)
    failed_with(run("sgd_step", decay_after_buffer), "added after the momentum buffer")


def test_rebinding_instead_of_updating_in_place_is_explained():
    def rebinds(params, grads, state, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        for p, g in zip(params, grads, strict=True):
            p = p - lr * g  # noqa: F841 (the classic mistake)
    failed_with(run("sgd_step", rebinds), "did not change at step 1", "p -= lr * g")

    def replaces(params, grads, state, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        for i, g in enumerate(grads):
            params[i] = params[i] - lr * g
    failed_with(run("sgd_step", replaces), "replaced params[0] with a new tensor")


def test_using_torch_optim_is_refused_and_restored():
    def borrows(params, grads, state, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        torch.optim.SGD(params, lr=lr)
    failed_with(run("sgd_step", borrows), "used torch.optim's optimizer")
    assert torch.optim.SGD.__name__ == "SGD"


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_every_torch_optimizer_is_refused_and_put_back(name):
    original = getattr(torch.optim, name)

    def borrows(params, grads, state, lr, **hyper):
        getattr(torch.optim, name)(params, lr=lr)
    failed_with(run("sgd_step", borrows), "used torch.optim's optimizer",
                "write the update yourself")
    assert getattr(torch.optim, name) is original


def test_learner_exception_is_reported_with_its_line():
    def broken(params, grads, state, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        return state["velocity"]
    failed_with(run("sgd_step", broken), "your code raised KeyError", "in broken, line")


def test_unrecognised_error_names_step_and_element():
    def off_by_a_bit(params, grads, state, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        reference.sgd_step(params, grads, state, lr * 1.01, momentum, nesterov, weight_decay)
    message = failed_with(run("sgd_step", off_by_a_bit), "after step 1, params[0]", "expected")
    assert "Hint" in message


# ---- Adagrad ----------------------------------------------------------------------------------

def adagrad_with(denominator):
    def step(params, grads, state, lr=0.01, eps=1e-10, weight_decay=0.0):
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            g = g + weight_decay * p
            state[i] = state.get(i, 0) + g * g
            p -= lr * g / denominator(state[i], eps)
    return step


def test_adagrad_without_eps_is_caught_on_zero_gradients():
    message = failed_with(run("adagrad_step", adagrad_with(lambda s, eps: s.sqrt())),
                          "divides by zero", "NaN")
    assert "some gradient entries always zero" in message


def test_adagrad_eps_inside_the_root_is_caught():
    failed_with(run("adagrad_step", adagrad_with(lambda s, eps: (s + eps).sqrt())),
                "eps is inside the square root", "large eps")


def test_adagrad_that_forgets_the_sum_is_caught():
    def forgets(params, grads, state, lr=0.01, eps=1e-10, weight_decay=0.0):
        reference.adagrad_step(params, grads, {}, lr, eps, weight_decay)
    failed_with(run("adagrad_step", forgets), "must accumulate over all steps")


# ---- RMSprop ----------------------------------------------------------------------------------

def rmsprop_with(average, denominator=lambda v, eps: v.sqrt() + eps):
    def step(params, grads, state, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0):
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            g = g + weight_decay * p
            state[i] = average(state.get(i, torch.zeros_like(p)), g, alpha)
            p -= lr * g / denominator(state[i], eps)
    return step


def test_rmsprop_with_alpha_swapped_is_caught():
    failed_with(run("rmsprop_step", rmsprop_with(lambda v, g, a: (1 - a) * v + a * g * g)),
                "alpha and 1 − alpha are swapped")


def test_rmsprop_eps_inside_the_root_is_caught():
    correct = lambda v, g, a: a * v + (1 - a) * g * g  # noqa: E731
    failed_with(run("rmsprop_step", rmsprop_with(correct, lambda v, eps: (v + eps).sqrt())),
                "TensorFlow")


def test_rmsprop_with_bias_correction_is_caught():
    def corrected(params, grads, state, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0):
        state["t"] = t = state.get("t", 0) + 1
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            g = g + weight_decay * p
            state[i] = alpha * state.get(i, 0) + (1 - alpha) * g * g
            p -= lr * g / ((state[i] / (1 - alpha ** t)).sqrt() + eps)
    failed_with(run("rmsprop_step", corrected), "no bias correction")


# ---- Adam and AdamW ---------------------------------------------------------------------------

def adam_like(correct=True, decay="l2", per_tensor_t=False, eps_inside=False, betas_swapped=False,
              t_kept=True):
    def step(params, grads, state, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        b1, b2 = betas[::-1] if betas_swapped else betas
        if not per_tensor_t:
            state["t"] = state.get("t", 0) + 1
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if per_tensor_t:
                state["t"] = state.get("t", 0) + 1
            t = state["t"] if t_kept else 1  # a local count, started afresh at every call
            if decay == "l2":
                g = g + weight_decay * p
            elif decay == "decoupled":
                p.mul_(1 - lr * weight_decay)
            elif decay == "decoupled without lr":
                p.mul_(1 - weight_decay)
            m = state[f"m{i}"] = b1 * state.get(f"m{i}", 0) + (1 - b1) * g
            v = state[f"v{i}"] = b2 * state.get(f"v{i}", 0) + (1 - b2) * g ** 2
            if correct:
                m, v = m / (1 - b1 ** t), v / (1 - b2 ** t)
            p -= lr * m / ((v + eps).sqrt() if eps_inside else v.sqrt() + eps)
    return step


def test_adam_without_bias_correction_is_caught_on_the_first_step():
    message = failed_with(run("adam_step", adam_like(correct=False)),
                          "bias correction is missing", "after step 1", "3.2·lr")
    assert "the first step" in message


def test_adam_other_mistakes_are_named():
    failed_with(run("adam_step", adam_like(per_tensor_t=True)), "once per parameter tensor")
    failed_with(run("adam_step", adam_like(eps_inside=True)), "eps is inside the square root")
    failed_with(run("adam_step", adam_like(decay="decoupled")), "that is AdamW")
    failed_with(run("adam_step", adam_like(decay="none")), "weight_decay is ignored")

    def from_zero(params, grads, state, lr=0.001, betas=(0.9, 0.999), eps=1e-8,
                  weight_decay=0.0):
        t = state.get("t", 0)
        state["t"] = t + 1
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            m = state[f"m{i}"] = betas[0] * state.get(f"m{i}", 0) + (1 - betas[0]) * g
            v = state[f"v{i}"] = betas[1] * state.get(f"v{i}", 0) + (1 - betas[1]) * g * g
            p -= lr * (m / (1 - betas[0] ** t)) / ((v / (1 - betas[1] ** t)).sqrt() + eps)
    failed_with(run("adam_step", from_zero), "must start at 1")


def test_adam_with_the_two_betas_swapped_is_named():
    """β2 for the first moment, β1 for the second: the first step is still right (each bias
    correction undoes its own average), so the mistake shows from step 2 on."""
    message = failed_with(run("adam_step", adam_like(betas_swapped=True)),
                          "β1 and β2 are swapped", "β2 for the first moment m",
                          "β1 for the second moment", "after step 2")
    assert "already use the right betas" not in message

    def swapped_in_the_averages_only(params, grads, state, lr=0.001, betas=(0.9, 0.999),
                                     eps=1e-8, weight_decay=0.0):
        beta1, beta2 = betas
        state["t"] = t = state.get("t", 0) + 1
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            g = g + weight_decay * p
            m = state[f"m{i}"] = beta2 * state.get(f"m{i}", 0) + (1 - beta2) * g
            v = state[f"v{i}"] = beta1 * state.get(f"v{i}", 0) + (1 - beta1) * g * g
            p -= lr * (m / (1 - beta1 ** t)) / ((v / (1 - beta2 ** t)).sqrt() + eps)
    failed_with(run("adam_step", swapped_in_the_averages_only), "β1 and β2 are swapped",
                "already use the right betas", "after step 1")
    failed_with(run("adamw_step", adam_like(betas_swapped=True, decay="decoupled")),
                "β1 and β2 are swapped")


def test_adam_step_count_that_never_advances_is_named():
    failed_with(run("adam_step", adam_like(t_kept=False)), "never advances", "after step 2")


def test_adamw_with_eps_inside_the_root_is_named():
    failed_with(run("adamw_step", adam_like(eps_inside=True, decay="decoupled")),
                "eps is inside the square root")


def test_adamw_written_as_adam_with_l2_is_caught():
    failed_with(run("adamw_step", adam_like(decay="l2")), "this is Adam with L2")


def test_adamw_other_mistakes_are_named():
    failed_with(run("adamw_step", adam_like(decay="decoupled without lr")),
                "scaled by the learning rate")
    failed_with(run("adamw_step", adam_like(decay="none")), "weight_decay is ignored")
    failed_with(run("adamw_step", adam_like(correct=False, decay="decoupled")),
                "bias correction is missing")


@pytest.mark.parametrize("exercise", list(checks.EXERCISES))
def test_every_exercise_rejects_plain_gradient_descent(exercise):
    def plain(params, grads, state, lr, **ignored):
        for p, g in zip(params, grads, strict=True):
            p -= lr * g
    assert not run(exercise, plain).passed


def test_printed_verdict_and_fallback(capsys):
    checks.check_adam_step(reference.adam_step)
    assert capsys.readouterr().out.startswith("✅ adam_step")
    assert has_passed("adam_step")
    checks.check_rmsprop_step(lambda *a, **k: None)
    assert capsys.readouterr().out.startswith("❌ rmsprop_step")
    learner = object()
    assert solved_or_reference("rmsprop_step", learner, reference.rmsprop_step) \
        is reference.rmsprop_step
