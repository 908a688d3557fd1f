"""The Chapter 1 checkers pass correct answers and catch plausible wrong ones with a hint."""

import torch
import torch.nn.functional as F

from cnn_course.checks import conv as checks
from cnn_course.checks.core import has_passed, solved_or_reference
from cnn_course.reference import conv as reference


def run(exercise, fn, hidden=False):
    return checks.run_check(exercise, fn, hidden=hidden)


def test_flipped_kernel_is_named():
    def flipped(x, w, b=None, stride=1, padding=0):
        return reference.conv2d_loops(x, w.flip(-1, -2), b, stride, padding)
    result = run("conv2d_loops", flipped)
    assert not result.passed and "flipped the kernel" in result.message


def test_missing_bias_is_named():
    result = run("conv2d_loops", lambda x, w, b=None, stride=1, padding=0:
                 reference.conv2d_loops(x, w, None, stride, padding))
    assert not result.passed and "bias is missing" in result.message


def test_ignoring_stride_fails_with_the_case():
    result = run("conv2d_im2col", lambda x, w, b=None, stride=1, padding=0:
                 reference.conv2d_im2col(x, w, b, 1, padding))
    assert not result.passed and "stride 2" in result.message and "shape" in result.message


def test_calling_f_conv2d_is_refused_and_restored():
    result = run("conv2d_loops", lambda x, w, b=None, stride=1, padding=0:
                 F.conv2d(x, w, b, stride, padding))
    assert not result.passed and "built-in convolution" in result.message
    assert F.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3)).item() == 9.0
    sneaky = run("conv2d_loops", lambda x, w, b=None, stride=1, padding=0: torch.convolution(
        x, w, b, (stride, stride), (padding, padding), (1, 1), False, (0, 0), 1))
    assert not sneaky.passed and "built-in convolution" in sneaky.message


def test_learner_exception_is_reported_with_its_line_not_a_traceback():
    def broken(x, w, b=None, stride=1, padding=0):
        return x[99]
    result = run("conv2d_loops", broken)
    assert not result.passed
    assert "your code raised IndexError" in result.message and "in broken, line" in result.message


def test_wrong_return_types_are_explained():
    assert "should be a torch.Tensor" in run("conv2d_loops", lambda *a, **k: [[0.0]]).message
    assert "a float" in run("conv_output_size",
                            lambda n, k, padding=0, stride=1, dilation=1:
                            (n + 2 * padding - k) / stride + 1).message
    assert "shape" in run("vertical_edge_kernel", lambda: torch.ones(2, 3)).message


def test_parameter_count_mistakes_are_named():
    no_bias = run("conv_params", lambda c_in, c_out, k, bias=True: k * k * c_in * c_out)
    assert "leaves out the 16 biases" in no_bias.message
    no_channels = run("conv_params", lambda c_in, c_out, k, bias=True: k * k * c_out + c_out)
    assert "spans all 3 input channels" in no_channels.message


def test_output_size_without_dilation_is_caught():
    result = run("conv_output_size", lambda n, k, padding=0, stride=1, dilation=1:
                 (n + 2 * padding - k) // stride + 1)
    assert not result.passed and "dilation=2" in result.message and "Hint" in result.message


def test_edge_kernel_mistakes():
    horizontal = run("vertical_edge_kernel", lambda: reference.vertical_edge_kernel().T)
    assert not horizontal.passed
    blur = run("vertical_edge_kernel", lambda: torch.ones(3, 3))
    assert not blur.passed and "flat grey" in blur.message
    both = run("vertical_edge_kernel", lambda: torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0, -1]]))
    assert not both.passed and "horizontal edge" in both.message


def test_printed_verdict_and_fallback(capsys):
    checks.check_conv_params(reference.conv_params)
    assert capsys.readouterr().out.startswith("✅ conv_params")
    assert has_passed("conv_params")
    checks.check_conv_output_size(lambda *a, **k: 0)
    assert capsys.readouterr().out.startswith("❌ conv_output_size")
    learner = object()
    assert solved_or_reference("conv_output_size", learner, reference.conv_output_size) \
        is reference.conv_output_size
    assert "reference implementation" in capsys.readouterr().out
