"""The Chapter 5 checkers pass correct answers and name plausible wrong ones."""

import torch
import torch.nn.functional as F

from cnn_course.checks import backprop as checks
from cnn_course.reference import backprop as reference


def run(exercise, fn, hidden=False):
    return checks.run_check(exercise, fn, hidden=hidden)


def assert_caught(exercise, fn, *phrases):
    result = run(exercise, fn)
    assert not result.passed, f"{exercise}: a wrong answer passed"
    for phrase in phrases:
        assert phrase in result.message, result.message
    return result


# ---- numerical gradient and relative error --------------------------------------------------

def differences(kind, restore=True, dtype=None):
    @torch.no_grad()
    def numerical_gradient(f, x, h=1e-5):
        grad = torch.zeros_like(x, dtype=dtype or x.dtype)
        flat = x.view(-1)
        base = float(f(x))
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + h
            above = float(f(x))
            flat[i] = old - h
            below = float(f(x))
            if restore:
                flat[i] = old
            grad.view(-1)[i] = {"forward": (above - base) / h, "backward": (base - below) / h,
                                "central": (above - below) / (2 * h)}[kind]
        return grad
    return numerical_gradient


def test_one_sided_differences_fail_the_tight_tolerance():
    result = assert_caught("numerical_gradient", differences("forward"), "one-sided (forward)")
    assert "x**3" in result.message  # caught on the very first, curved function
    assert_caught("numerical_gradient", differences("backward"), "one-sided (backward)")


def test_numerical_gradient_mistakes_are_named():
    assert_caught("numerical_gradient", differences("central", restore=False), "left x changed")
    assert_caught("numerical_gradient", differences("central", dtype=torch.float32), "float32")

    def all_at_once(f, x, h=1e-5):
        return torch.full_like(x, (float(f(x + h)) - float(f(x - h))) / (2 * h))
    assert_caught("numerical_gradient", all_at_once, "all entries of x at once")

    central = differences("central")
    assert_caught("numerical_gradient", lambda f, x, h=1e-5: central(f, x),
                  "ignored the h argument")


def test_numerical_gradient_for_vectors_and_matrices_only_fails_hidden_cases():
    """Double loops over rows and columns pass every visible case (vectors and matrices) but
    perturb a whole slice at once on the hidden 3-dim tensor."""
    @torch.no_grad()
    def rows_and_columns(f, x, h=1e-5):
        grad = torch.zeros_like(x)
        view, grad_view = (x, grad) if x.dim() == 2 else (x[None], grad[None])
        for i in range(view.shape[0]):
            for j in range(view.shape[1]):
                original = view[i, j].clone()
                view[i, j] = original + h
                above = float(f(x))
                view[i, j] = original - h
                below = float(f(x))
                view[i, j] = original
                grad_view[i, j] = (above - below) / (2 * h)
        return grad

    assert run("numerical_gradient", rows_and_columns).passed
    result = run("numerical_gradient", rows_and_columns, hidden=True)
    assert not result.passed and "2x3x2 tensor" in result.message, result.message


def test_relative_error_mistakes_are_named():
    def formula(denominator, reduce=torch.max, floor=1e-12):
        def relative_error(a, b):
            size = denominator(torch.as_tensor(a), torch.as_tensor(b))
            size = size if floor is None else size.clamp(min=floor)
            return float(reduce((torch.as_tensor(a) - b).abs() / size))
        return relative_error

    def plus(a, b):
        return a.abs() + b.abs()
    assert_caught("relative_error", formula(plus, floor=None), "0 in both", "floor")
    assert_caught("relative_error", formula(plus, torch.mean), "take the max")
    assert_caught("relative_error", formula(lambda a, b: torch.maximum(a.abs(), b.abs())),
                  "max(|a|, |b|)")
    assert_caught("relative_error", formula(lambda a, b: b.abs()), "|b| alone")
    assert_caught("relative_error", formula(lambda a, b: (a + b).abs(), floor=None), "|a + b|")
    assert_caught("relative_error", lambda a, b: (a - b).abs() / (a.abs() + b.abs() + 1e-12),
                  "return one number")
    assert_caught("relative_error",
                  lambda a, b: float((a - b).abs().max() / (a.abs() + b.abs()).max()),
                  "element by element")


# ---- linear, ReLU, sigmoid, softmax ---------------------------------------------------------

def test_linear_backward_with_wrong_transposes_gets_a_shape_message():
    result = assert_caught("linear_backward", lambda dout, x, w: (dout @ w.T, x.T @ dout,
                                                                   dout.sum(0)),
                           "shape error", "dx = dout @ w")
    assert "Traceback" not in result.message
    assert_caught("linear_backward", lambda dout, x, w: (dout @ w, x.T @ dout, dout.sum(0)),
                  "transpose of w's")


def test_linear_backward_bias_mistakes_are_named():
    assert_caught("linear_backward", lambda dout, x, w: (dout @ w, dout.T @ x, dout),
                  "sum dout over the batch")
    assert_caught("linear_backward", lambda dout, x, w: (dout @ w, dout.T @ x, dout.mean(0)),
                  "mean of dout")


def test_return_shapes_types_and_autograd_are_policed():
    assert_caught("linear_backward", lambda dout, x, w: (dout @ w, dout.T @ x), "return the tuple")
    assert_caught("linear_backward", lambda dout, x, w: (dout @ w, (dout.T @ x).float(),
                                                         dout.sum(0)), "float32")

    def via_autograd(dout, x, w):
        x, w = x.requires_grad_(), w.requires_grad_()
        (x @ w.T).backward(dout)
        return x.grad, w.grad, dout.sum(0)
    assert_caught("linear_backward", via_autograd, "called autograd")
    leaf = torch.ones(2, requires_grad=True)  # autograd works again after the check
    (leaf * 3).sum().backward()
    assert leaf.grad.tolist() == [3.0, 3.0]


def test_relu_backward_mistakes_are_named():
    assert_caught("relu_backward", lambda dout, x: dout.clone(), "where x < 0")
    assert_caught("relu_backward", lambda dout, x: dout * (x >= 0), "x >= 0")
    assert_caught("relu_backward", lambda dout, x: (x > 0).double(), "multiply it by dout")
    assert_caught("relu_backward", lambda dout, x: dout * x.clamp(min=0), "relu(x)")


def test_sigmoid_backward_mistakes_are_named():
    assert run("sigmoid_backward", reference.sigmoid_backward).passed
    assert_caught("sigmoid_backward", lambda dout, out: out * (1 - out), "multiply by dout")
    assert_caught("sigmoid_backward",
                  lambda dout, out: dout * torch.sigmoid(out) * (1 - torch.sigmoid(out)),
                  "already the sigmoid's output")


def test_sigmoid_derivative_applied_to_the_pre_activation_is_named():
    """s(1 - s) written with the sigmoid's input x (recovered here from out) instead of s."""
    def on_the_input(dout, out):
        x = torch.log(out / (1 - out))  # the pre-activation
        return dout * x * (1 - x)
    result = assert_caught("sigmoid_backward", on_the_input, "sigmoid's input",
                           "pre-activation", "dout * out * (1 - out)")
    assert "multiply by dout)" not in result.message

    def on_the_input_without_dout(dout, out):
        x = torch.log(out / (1 - out))
        return x * (1 - x)
    assert_caught("sigmoid_backward", on_the_input_without_dout, "pre-activation",
                  "and multiply by dout")


def softmax_ce(shift=True, mean=True, divide=True, sign=1.0, onehot=True):
    """shift: True (each row's max) | False (none) | "batch" (the max of the whole batch)."""
    def softmax_cross_entropy(logits, y):
        if shift == "batch":
            z = logits - logits.max()
        else:
            z = logits - logits.max(1, keepdim=True).values if shift else logits
        p = z.exp() / z.exp().sum(1, keepdim=True)
        losses = -p[torch.arange(len(y)), y].log()
        target = F.one_hot(y, logits.shape[1]).double() if onehot else 0.0
        grad = sign * (p - target) / (len(y) if divide else 1)
        return (losses.mean() if mean else losses.sum()), grad
    return softmax_cross_entropy


def test_softmax_cross_entropy_mistakes_are_named():
    assert run("softmax_cross_entropy", softmax_ce()).passed
    result = assert_caught("softmax_cross_entropy", softmax_ce(shift=False), "overflows",
                           "Subtract each row's own largest logit")
    assert "near 1000" in result.message and "whole BATCH" not in result.message
    assert_caught("softmax_cross_entropy", softmax_ce(mean=False), "takes the mean")
    assert_caught("softmax_cross_entropy", softmax_ce(divide=False), "N times too large")
    assert_caught("softmax_cross_entropy", softmax_ce(sign=-1.0), "wrong sign")
    assert_caught("softmax_cross_entropy", softmax_ce(onehot=False), "one-hot target")


def test_softmax_shifted_by_the_batch_maximum_is_named():
    """Fine while all rows sit at one scale; NaN on the rows far below the batch's maximum."""
    result = assert_caught("softmax_cross_entropy", softmax_ce(shift="batch"), "whole BATCH",
                           "logits.max(dim=1, keepdim=True)")
    assert "very different scales" in result.message, result.message
    assert "rows 1 (" in result.message and "2 (" in result.message, result.message

    def log_softmax_of_the_batch(logits, y):
        z = logits - logits.max()
        log_p = z - z.exp().sum(1, keepdim=True).log()
        n = len(y)
        onehot = F.one_hot(y, logits.shape[1]).to(logits.dtype)
        return -log_p[torch.arange(n), y].mean(), (log_p.exp() - onehot) / n
    assert_caught("softmax_cross_entropy", log_softmax_of_the_batch, "whole BATCH")


def test_softmax_cross_entropy_reference_handles_rows_at_very_different_scales():
    logits = torch.tensor([[1000.0, 1001.0, 998.0], [-1000.0, -1002.0, -999.0]],
                          dtype=torch.float64)
    y = torch.tensor([1, 2])
    loss, dlogits = reference.softmax_cross_entropy(logits, y)
    leaf = logits.clone().requires_grad_()
    expected = F.cross_entropy(leaf, y)
    expected.backward()
    assert torch.isfinite(dlogits).all() and torch.allclose(loss, expected)
    assert torch.allclose(dlogits, leaf.grad)


# ---- pooling and convolution ----------------------------------------------------------------

def test_max_pool_backward_mistakes_are_named():
    def average_by_hand(dout, x, kernel_size=2, stride=None):
        stride = stride or kernel_size
        n, c, h, w = x.shape
        spread = dout.reshape(n, c, 1, -1).expand(-1, -1, kernel_size ** 2, -1)
        return F.fold(spread.reshape(n, -1, spread.shape[-1]) / kernel_size ** 2, (h, w),
                      kernel_size, stride=stride)
    assert_caught("max_pool2d_backward", average_by_hand, "average pooling")
    assert_caught("max_pool2d_backward", lambda dout, x, kernel_size=2, stride=None:
                  average_by_hand(dout, x, kernel_size, stride) * kernel_size ** 2,
                  "every pixel of the window")

    def assigning(dout, x, kernel_size=2, stride=None):
        stride = stride or kernel_size
        dx = torch.zeros_like(x)
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                for i in range(dout.shape[2]):
                    for j in range(dout.shape[3]):
                        top, left = i * stride, j * stride
                        window = x[n, c, top:top + kernel_size, left:left + kernel_size]
                        u, v = divmod(int(window.argmax()), kernel_size)
                        dx[n, c, top + u, left + v] = dout[n, c, i, j]  # should be +=
        return dx
    result = assert_caught("max_pool2d_backward", assigning, "add (+=)")
    assert "overlapping" in result.message


def conv_backward(flip=True, output_padding=True, dw_layout="ok", db_reduce="sum"):
    def conv2d_backward(dout, x, w, stride=1, padding=0):
        dx, dw, db = reference.conv2d_backward(dout, x, w, stride, padding)
        if not flip:
            dx = reference.conv2d_backward(dout, x, w.flip(-1, -2), stride, padding)[0]
        if not output_padding:
            dx = F.conv_transpose2d(dout, w, stride=stride, padding=padding)
        if dw_layout == "swapped":
            dw = dw.transpose(0, 1)
        elif dw_layout == "flipped":
            dw = dw.flip(-1, -2)
        if db_reduce == "batch only":
            db = dout.sum(0)
        return dx, dw, db
    return conv2d_backward


def test_conv_backward_mistakes_are_named():
    assert run("conv2d_backward", conv_backward()).passed
    assert_caught("conv2d_backward", conv_backward(flip=False), "FLIPPED")
    result = assert_caught("conv2d_backward", conv_backward(output_padding=False),
                           "output_padding")
    assert "does not divide" in result.message
    assert_caught("conv2d_backward", conv_backward(dw_layout="swapped"), "swap its first two")
    assert_caught("conv2d_backward", conv_backward(dw_layout="flipped"), "dw is flipped")
    assert_caught("conv2d_backward", conv_backward(db_reduce="batch only"), "dims 0, 2, 3")


def test_calling_torch_nn_grad_is_refused():
    def builtin(dout, x, w, stride=1, padding=0):
        return (torch.nn.grad.conv2d_input(x.shape, w, dout, stride, padding),
                torch.nn.grad.conv2d_weight(x, w.shape, dout, stride, padding),
                dout.sum((0, 2, 3)))
    result = assert_caught("conv2d_backward", builtin, "built-in convolution gradients")
    assert "autograd" not in result.message and result.method


def test_conv2d_input_gets_the_conv_gradient_message_not_the_autograd_one():
    def conv2d_backward(dout, x, w, stride=1, padding=0):
        dx = torch.nn.grad.conv2d_input(x.shape, w, dout, stride, padding)
        _, dw, db = reference.conv2d_backward(dout, x, w, stride, padding)
        return dx, dw, db
    result = assert_caught("conv2d_backward", conv2d_backward, "torch.nn.grad.conv2d_input",
                           "PyTorch's built-in convolution gradients", "ready-made",
                           "computed from its definition", "any method")
    assert "autograd" not in result.message and result.method


def test_conv2d_weight_through_f_grad_is_named_and_everything_is_restored():
    originals = (torch.nn.grad.conv2d_input, torch.nn.grad.conv2d_weight,
                 torch.autograd.grad, torch.autograd.backward, torch.Tensor.backward)

    def conv2d_backward(dout, x, w, stride=1, padding=0):
        dx, _, db = reference.conv2d_backward(dout, x, w, stride, padding)
        return dx, F.grad.conv2d_weight(x, w.shape, dout, stride, padding), db
    result = assert_caught("conv2d_backward", conv2d_backward, "torch.nn.grad.conv2d_weight")
    assert "autograd" not in result.message
    assert (torch.nn.grad.conv2d_input, torch.nn.grad.conv2d_weight, torch.autograd.grad,
            torch.autograd.backward, torch.Tensor.backward) == originals


def test_autograd_in_a_backward_pass_gets_the_autograd_message():
    def conv2d_backward(dout, x, w, stride=1, padding=0):
        leaves = [t.clone().requires_grad_() for t in (x, w)]
        F.conv2d(*leaves, stride=stride, padding=padding).backward(dout)
        return leaves[0].grad, leaves[1].grad, dout.sum((0, 2, 3))
    with torch.enable_grad():
        result = assert_caught("conv2d_backward", conv2d_backward, "called autograd")
    assert result.method and "convolution gradients" not in result.message


# ---- the training step ----------------------------------------------------------------------

def train_step(scale_grad=1.0, report_after=False):
    def cnn_train_step(params, x, y, lr):
        loss, new = reference.cnn_train_step(params, x, y, lr)
        scale = len(y) if scale_grad == "N" else scale_grad
        new = {k: params[k] + scale * (new[k] - params[k]) for k in params}
        if report_after:
            loss = float(F.cross_entropy(reference.tiny_cnn_logits(new, x), y))
        return loss, new
    return cnn_train_step


def test_train_step_mistakes_are_named():
    assert run("cnn_train_step", train_step()).passed
    assert_caught("cnn_train_step", train_step(scale_grad=-1.0), "moved uphill")
    result = assert_caught("cnn_train_step", train_step(scale_grad="N"), "4 times too large")
    assert "batch of 4" in result.message
    assert_caught("cnn_train_step", train_step(scale_grad=0.0), "did not change")
    assert_caught("cnn_train_step", train_step(report_after=True), "after the update")
    assert_caught("cnn_train_step", lambda params, x, y, lr: params, "(loss, new_params)")


def test_learner_exception_is_reported_with_its_line():
    def broken(dout, x):
        return dout[99]
    result = run("relu_backward", broken)
    assert "your code raised IndexError" in result.message and "in broken, line" in result.message


def test_printed_verdict(capsys):
    checks.check_relu_backward(reference.relu_backward)
    assert capsys.readouterr().out.startswith("✅ relu_backward")
    checks.check_conv2d_backward(conv_backward(flip=False))
    assert capsys.readouterr().out.startswith("❌ conv2d_backward")
