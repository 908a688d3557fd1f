"""The Chapter 2 checkers pass correct answers and catch plausible wrong ones by name."""

import pytest
import torch
import torch.nn.functional as F

from cnn_course.checks import activations as checks
from cnn_course.checks.core import has_passed, solved_or_reference
from cnn_course.reference import activations as reference


def run(exercise, fn, hidden=False):
    return checks.run_check(exercise, fn, hidden=hidden)


def failed_with(exercise, fn, *fragments):
    result = run(exercise, fn)
    assert not result.passed, f"{exercise} accepted a wrong answer"
    for fragment in fragments:
        assert fragment in result.message, result.message
    return result


# ---- ReLU -----------------------------------------------------------------------------------

def test_relu_alternatives_that_are_right():
    assert run("relu", lambda x: torch.where(x > 0, x, torch.zeros_like(x))).passed
    assert run("relu", lambda x: torch.maximum(x, torch.zeros_like(x))).passed


def test_relu_built_in_is_refused_and_restored():
    failed_with("relu", lambda x: torch.relu(x), "built-in relu")
    failed_with("relu", lambda x: x.relu(), "built-in relu")
    failed_with("relu", lambda x: F.relu(x), "built-in relu")
    assert torch.relu(torch.tensor([-1.0])).item() == 0.0
    assert torch.tensor([-2.0]).relu().item() == 0.0
    assert "relu" not in torch.Tensor.__dict__  # the patch on the class is gone again


@pytest.mark.parametrize("exercise", ["relu", "sigmoid", "tanh", "leaky_relu", "softmax",
                                      "relu_grad"])
def test_every_refused_function_is_put_back(exercise):
    group = "autograd" if exercise.endswith("_grad") else exercise
    targets = checks._BUILTINS[group]
    before = [vars(owner).get(name) for owner, name in targets]
    run(exercise, getattr(reference, exercise))
    assert [vars(owner).get(name) for owner, name in targets] == before


def test_relu_mask_product_gives_nan_at_minus_inf():
    failed_with("relu", lambda x: x * (x > 0), "inf · 0", "torch.where")


def test_relu_in_place_and_python_max_are_explained():
    def in_place(x):
        x[x < 0] = 0
        return x
    failed_with("relu", in_place, "changed its input tensor in place")
    failed_with("relu", lambda x: max(0, x), "elementwise tensor operations")


def test_relu_identity_and_negative_part():
    failed_with("relu", lambda x: x.clone(), "negative inputs must become 0")
    failed_with("relu", lambda x: x.clamp(max=0), "negative part")


def test_relu_grad_mistakes():
    failed_with("relu_grad", lambda x: torch.ones_like(x), "returns 1 for negative inputs")
    failed_with("relu_grad", lambda x: (x >= 0).float(), "relu'(0) = 0", "x > 0, not x >= 0")
    failed_with("relu_grad", lambda x: x.clamp(min=0), "ReLU itself")


def test_relu_grad_may_not_use_autograd():
    def with_autograd(x):
        leaf = x.clone().requires_grad_(True)
        leaf.clamp(min=0).sum().backward()
        return leaf.grad
    failed_with("relu_grad", with_autograd, "used autograd")
    assert "backward" in torch.Tensor.__dict__  # restored
    leaf = torch.tensor([2.0], requires_grad=True)
    (leaf * 3).sum().backward()
    assert leaf.grad.item() == 3.0


# ---- sigmoid and tanh -----------------------------------------------------------------------

def test_naive_sigmoid_is_fine_on_extremes():
    assert run("sigmoid", lambda x: 1 / (1 + torch.exp(-x))).passed
    assert run("sigmoid", lambda x: 1 / (1 + torch.exp(-x)), hidden=True).passed


def test_sigmoid_mistakes():
    failed_with("sigmoid", lambda x: torch.exp(x) / (1 + torch.exp(x)), "inf / inf",
                "1 / (1 + exp(-x))")
    failed_with("sigmoid", lambda x: 1 / (1 + torch.exp(x)), "σ(-x)")
    failed_with("sigmoid", lambda x: torch.sigmoid(x), "built-in sigmoid")


def test_sigmoid_grad_mistakes():
    failed_with("sigmoid_grad", lambda x: torch.exp(-x) / (1 + torch.exp(-x)) ** 2,
                "σ(x) · (1 - σ(x))")
    failed_with("sigmoid_grad", lambda x: reference.sigmoid(x), "σ(x) itself")
    failed_with("sigmoid_grad", lambda x: 1 - reference.sigmoid(x), "only 1 - σ(x)")
    # the derivative may use the built-in sigmoid; only autograd is refused
    assert run("sigmoid_grad", lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x))).passed


def test_derivative_formula_applied_to_the_input_is_named():
    sigmoid_of_input = failed_with("sigmoid_grad", lambda x: x * (1 - x), "to the input",
                                   "x · (1 - x)", "sigmoid's output σ(x)")
    assert "Hint" not in sigmoid_of_input.message
    tanh_of_input = failed_with("tanh_grad", lambda x: 1 - x ** 2, "to the input", "1 - x²",
                                "tanh's output")
    assert "Hint" not in tanh_of_input.message
    for exercise, wrong in [("sigmoid_grad", lambda x: x - x * x),
                            ("tanh_grad", lambda x: 1 - x * x)]:
        result = run(exercise, wrong, hidden=True)
        assert not result.passed and "to the input" in result.message
    # the right formulas, written with the function's output, pass
    assert run("sigmoid_grad", reference.sigmoid_grad, hidden=True).passed
    assert run("tanh_grad", reference.tanh_grad, hidden=True).passed


def test_tanh_mistakes():
    textbook = lambda x: (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x))  # noqa: E731
    failed_with("tanh", textbook, "inf / inf", "2σ(2x) - 1")
    failed_with("tanh", reference.sigmoid, "that is the sigmoid")
    failed_with("tanh", lambda x: torch.tanh(x), "built-in tanh")


def test_tanh_grad_mistakes():
    failed_with("tanh_grad", lambda x: 1 - torch.tanh(x), "missing square")
    failed_with("tanh_grad", lambda x: torch.tanh(x) ** 2, "you returned tanh(x)²")
    assert run("tanh_grad", lambda x: 1 / torch.cosh(x) ** 2).passed


# ---- Leaky ReLU -----------------------------------------------------------------------------

def test_leaky_relu_mistakes():
    failed_with("leaky_relu", lambda x, negative_slope=0.01: x.clamp(min=0), "not set to 0")
    failed_with("leaky_relu", lambda x, negative_slope=0.01: torch.where(x > 0, x, 0.01 * x),
                "ignores its negative_slope", "negative_slope=0.2")
    failed_with("leaky_relu", lambda x, negative_slope=0.01:
                x * (x > 0) + negative_slope * x * (x <= 0), "inf · 0")
    failed_with("leaky_relu", lambda x, negative_slope=0.01: F.leaky_relu(x, negative_slope),
                "built-in leaky_relu")


def test_leaky_relu_without_the_keyword_is_reported_not_raised():
    result = failed_with("leaky_relu", lambda x: torch.where(x > 0, x, 0.01 * x),
                         "your code raised TypeError")
    assert "negative_slope" in result.message


def test_leaky_relu_grad_mistakes():
    failed_with("leaky_relu_grad", lambda x, negative_slope=0.01: (x > 0).float(),
                "negative_slope, not 0")
    failed_with("leaky_relu_grad", lambda x, negative_slope=0.01:
                torch.where(x > 0, 1.0, 0.01) + 0 * x, "ignores its negative_slope")
    failed_with("leaky_relu_grad", lambda x, negative_slope=0.01:
                torch.where(x >= 0, 1.0, negative_slope) + 0 * x, "x > 0, not x >= 0")


# ---- softmax --------------------------------------------------------------------------------

def naive_softmax(x, dim=-1):
    exps = torch.exp(x)
    return exps / exps.sum(dim=dim, keepdim=True)


def test_naive_softmax_overflows():
    assert torch.isnan(naive_softmax(torch.tensor([1000.0, -1000.0]))).any()
    failed_with("softmax", naive_softmax, "[1000, -1000]", "subtract the max")


def test_softmax_checks_hold_rows_near_1000_and_near_minus_1000_in_one_batch():
    for hidden in (False, True):
        inputs = checks._softmax_inputs(hidden)
        assert any(x.dim() > 1 and (x.amax(dim) > 900).any() and (x.amax(dim) < -900).any()
                   for _, x, dim in inputs), hidden


def test_softmax_global_max_is_caught():
    def global_max(x, dim=-1):
        exps = torch.exp(x - x.max())
        return exps / exps.sum(dim=dim, keepdim=True)

    def global_max_with_eps(x, dim=-1):  # 0 instead of nan in the rows far below
        exps = torch.exp(x - torch.max(x))
        return exps / (exps.sum(dim=dim, keepdim=True) + 1e-12)
    for wrong in (global_max, global_max_with_eps):
        for hidden in (False, True):
            result = run("softmax", wrong, hidden=hidden)
            assert not result.passed
            assert "rows at very different levels" in result.message, result.message
            assert "maximum of the whole tensor" in result.message, result.message
            assert "each row's own maximum" in result.message, result.message
            assert "Hint" not in result.message
    assert run("softmax", reference.softmax, hidden=True).passed


def test_softmax_global_max_diagnosis_needs_the_underflowing_rows():
    x = torch.tensor([[1000.0, 999.0, 998.0], [-1000.0, -999.0, -998.0]])
    right = torch.softmax(x, -1)
    assert not checks._shifted_by_the_global_max(x, right, -1)
    uniform = torch.full_like(x, 1 / 3)  # wrong, but not that mistake
    assert not checks._shifted_by_the_global_max(x, uniform, -1)
    near = torch.tensor([[3.0, 1.0], [2.0, 0.0]])  # no row far below: nothing underflows
    assert not checks._shifted_by_the_global_max(near, torch.zeros(2, 2), -1)


def test_softmax_wrong_dim_is_caught():
    failed_with("softmax", lambda x, dim=-1: reference.softmax(x, -1), "normalised along dim=1",
                "asks for dim=0")
    failed_with("softmax", lambda x, dim=-1: reference.softmax(x, 0),
                "normalised along dim=0", "asks for dim=-1")


def test_softmax_keepdim_mistakes_are_caught():
    def no_keepdim_sum(x, dim=-1):
        exps = torch.exp(x - x.amax(dim=dim, keepdim=True))
        return exps / exps.sum(dim=dim)
    failed_with("softmax", no_keepdim_sum, "keepdim=True")

    def no_keepdim_max(x, dim=-1):
        exps = torch.exp(x - x.amax(dim=dim))
        return exps / exps.sum(dim=dim, keepdim=True)
    failed_with("softmax", no_keepdim_max, "keepdim=True")


def test_softmax_mistakes_on_square_input_name_keepdim():
    def no_keepdim_sum(x, dim=-1):
        exps = torch.exp(x - x.amax(dim=dim, keepdim=True))
        return exps / exps.sum(dim=dim)
    cases = checks.softmax_cases(no_keepdim_sum)
    square = next(case for case in cases if case.description.startswith("a square"))
    with pytest.raises(checks.CaseFailed, match="keepdim=True"):
        square.run()


def test_softmax_built_ins_are_refused():
    failed_with("softmax", lambda x, dim=-1: torch.softmax(x, dim), "built-in softmax")
    failed_with("softmax", lambda x, dim=-1: x.log_softmax(dim).exp(), "built-in softmax")
    failed_with("softmax", lambda x, dim=-1: F.softmax(x, dim=dim), "built-in softmax")
    assert torch.softmax(torch.zeros(2), 0).tolist() == [0.5, 0.5]


def test_softmax_in_place_shift_is_caught():
    def in_place(x, dim=-1):
        x -= x.amax(dim=dim, keepdim=True)
        exps = torch.exp(x)
        return exps / exps.sum(dim=dim, keepdim=True)
    failed_with("softmax", in_place, "in place")


def test_logsumexp_softmax_is_accepted():
    assert run("softmax", lambda x, dim=-1: torch.exp(x - torch.logsumexp(x, dim, keepdim=True))
               ).passed


# ---- gradient reaching the first layer ------------------------------------------------------

def stack_output(layers, activation, x, after_last=True):
    h = x
    for index, layer in enumerate(layers):
        h = layer(h)
        if after_last or index < len(layers) - 1:
            h = activation(h)
    return h


def test_grad_norm_with_backward_and_zero_grad_passes():
    def with_backward(layers, activation, x):
        for layer in layers:
            layer.zero_grad()
        stack_output(layers, activation, x).sum().backward()
        return layers[0].weight.grad.norm()  # a 0-dim tensor is accepted too
    assert run("first_layer_grad_norm", with_backward).passed


def test_grad_norm_accumulated_gradients_are_named():
    def no_zero_grad(layers, activation, x):
        stack_output(layers, activation, x).sum().backward()
        return layers[0].weight.grad.norm().item()
    failed_with("first_layer_grad_norm", no_zero_grad, "already hold gradients",
                "gradients accumulate")


def grad_of(target_fn, **kwargs):
    def fn(layers, activation, x):
        x = x.clone().requires_grad_(True)
        out = stack_output(layers, activation, x, **kwargs)
        (grad,) = torch.autograd.grad(out.sum(), target_fn(layers, x))
        return grad.norm().item()
    return fn


def test_grad_norm_wrong_targets_are_named():
    failed_with("first_layer_grad_norm", grad_of(lambda layers, x: layers[-1].weight),
                "gradient of the last layer")
    failed_with("first_layer_grad_norm", grad_of(lambda layers, x: x), "respect to the input")
    failed_with("first_layer_grad_norm", grad_of(lambda layers, x: layers[0].bias),
                "first layer's bias")


def test_grad_norm_forward_mistakes_are_named():
    failed_with("first_layer_grad_norm",
                grad_of(lambda layers, x: layers[0].weight, after_last=False),
                "the last one included")

    def no_activation(layers, activation, x):
        return reference.first_layer_grad_norm(layers, lambda h: h, x)
    failed_with("first_layer_grad_norm", no_activation, "never applied the activation")

    def mean_loss(layers, activation, x):
        out = stack_output(layers, activation, x)
        (grad,) = torch.autograd.grad(out.mean(), layers[0].weight)
        return grad.norm().item()
    failed_with("first_layer_grad_norm", mean_loss, "not their mean")

    def squared(layers, activation, x):
        return reference.first_layer_grad_norm(layers, activation, x) ** 2
    failed_with("first_layer_grad_norm", squared, "not its square")


def test_grad_norm_optimizer_step_and_return_types():
    def steps(layers, activation, x):
        value = reference.first_layer_grad_norm(layers, activation, x)
        with torch.no_grad():
            layers[0].weight.mul_(0.5)
        return value
    failed_with("first_layer_grad_norm", steps, "changed the layers' weights")

    def whole_gradient(layers, activation, x):
        out = stack_output(layers, activation, x)
        return torch.autograd.grad(out.sum(), layers[0].weight)[0]
    failed_with("first_layer_grad_norm", whole_gradient, "return one number")
    failed_with("first_layer_grad_norm", lambda *a: "big", "returned a str")


def test_grad_norm_unexplained_value_says_what_was_expected():
    result = failed_with("first_layer_grad_norm", lambda *a: 1.0, "returned 1, but")
    assert "Hint" in result.message


def test_checker_does_not_disturb_the_global_random_state():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run("first_layer_grad_norm", reference.first_layer_grad_norm)
    assert torch.equal(torch.rand(3), expected)


def test_sigmoid_stack_passes_far_less_gradient_than_relu():
    torch.manual_seed(0)
    layers = [torch.nn.Linear(32, 32) for _ in range(10)]
    x = torch.randn(16, 32)
    relu_norm = reference.first_layer_grad_norm(layers, torch.relu, x)
    sigmoid_norm = reference.first_layer_grad_norm(layers, torch.sigmoid, x)
    assert sigmoid_norm < relu_norm / 10


# ---- printed verdicts -----------------------------------------------------------------------

def test_printed_verdict_and_fallback(capsys):
    checks.check_relu(reference.relu)
    assert capsys.readouterr().out.startswith("✅ relu")
    assert has_passed("relu")
    checks.check_tanh_grad(lambda x: 1 - torch.tanh(x))
    assert capsys.readouterr().out.startswith("❌ tanh_grad")
    assert solved_or_reference("tanh_grad", None, reference.tanh_grad) is reference.tanh_grad


def test_softmax_that_does_not_normalise_is_explained():
    result = failed_with("softmax", lambda x, dim=-1: torch.exp(x - x.amax(dim=dim, keepdim=True)),
                         "should sum to 1")
    assert "Hint" not in result.message


# ---- output dtype ---------------------------------------------------------------------------

def test_derivative_as_a_bool_tensor_is_refused_with_the_fix():
    result = failed_with("relu_grad", lambda x: x > 0, "bool", ".to(x.dtype)")
    assert "Hint" not in result.message
    failed_with("leaky_relu_grad", lambda x, negative_slope=0.01: x > 0, "bool")


def test_output_must_keep_the_dtype_of_x():
    result = run("relu_grad", lambda x: (x > 0).float(), hidden=True)  # float32 for float64 x
    assert not result.passed and "torch.float64" in result.message
    assert "float64 inputs" in result.message and ".to(x.dtype)" in result.message
    failed_with("relu_grad", lambda x: (x > 0).long(), "torch.int64")
    assert run("relu_grad", lambda x: (x > 0).to(x.dtype), hidden=True).passed
