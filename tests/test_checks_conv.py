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


def test_low_level_convolution_ops_are_refused():
    def via(op):
        def fn(x, w, b=None, stride=1, padding=0):
            return op(x, w, b, stride, padding)
        return fn
    lowered = {
        "thnn_conv2d": lambda x, w, b, s, p: torch.ops.aten.thnn_conv2d(
            x, w, list(w.shape[-2:]), b, [s, s], [p, p]),
        "_slow_conv2d_forward": lambda x, w, b, s, p: torch.ops.aten._slow_conv2d_forward(
            x, w, list(w.shape[-2:]), b, [s, s], [p, p]),
        "mkldnn_convolution": lambda x, w, b, s, p: torch.ops.aten.mkldnn_convolution(
            x, w, b, [p, p], [s, s], [1, 1], 1),
        "slow_conv_dilated2d": lambda x, w, b, s, p: torch.ops.aten.slow_conv_dilated2d(
            x, w, list(w.shape[-2:]), b, [s, s], [p, p]),
        "convolution_backward": lambda x, w, b, s, p: torch.nn.grad.conv2d_weight(
            x, w.shape, torch.ones(x.shape[0], w.shape[0], x.shape[2] - w.shape[2] + 1,
                                   x.shape[3] - w.shape[3] + 1)),
    }
    for name, op in lowered.items():
        result = run("conv2d_loops", via(op))
        assert not result.passed and "built-in convolution" in result.message, (name, result)
    # the guard is lifted afterwards
    assert torch.ops.aten.thnn_conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3),
                                      [3, 3]).item() == 9.0


def test_convolutions_reached_without_a_patchable_attribute_are_refused():
    bound = F.conv2d   # as `from torch.nn.functional import conv2d` would bind it

    def with_a_module(x, w, b=None, stride=1, padding=0):
        layer = torch.nn.Conv2d(w.shape[1], w.shape[0], w.shape[-2:], stride, padding,
                                bias=b is not None)
        with torch.no_grad():
            layer.weight.copy_(w)
            if b is not None:
                layer.bias.copy_(b)
        return layer(x)
    for fn in (lambda x, w, b=None, stride=1, padding=0: bound(x, w, b, stride, padding),
               with_a_module):
        result = run("conv2d_loops", fn)
        assert not result.passed and result.method
        assert "built-in convolution" in result.message


def test_hidden_cases_add_new_shapes_and_keep_the_visible_ones():
    visible = [case.description for case in checks.conv2d_cases(reference.conv2d_loops)]
    hidden = [case.description for case in checks.conv2d_cases(reference.conv2d_loops,
                                                                hidden=True)]
    assert hidden[:len(visible)] == visible
    assert len(hidden) >= len(visible) + 4
    shapes = {(x, w, s, p) for _, x, w, s, p, _ in checks._CONV_CONFIGS}
    extra = {(x, w, s, p) for _, x, w, s, p, _ in checks._HIDDEN_CONV_CONFIGS}
    assert extra and not extra & shapes


def test_solution_that_only_handles_the_visible_shapes_fails_hidden_cases():
    visible_shapes = {(x, w) for _, x, w, *_ in checks._CONV_CONFIGS}

    def memorised(x, w, b=None, stride=1, padding=0):
        if (tuple(x.shape), tuple(w.shape)) not in visible_shapes:
            return torch.zeros(1)
        return reference.conv2d_loops(x, w, b, stride, padding)
    assert run("conv2d_loops", memorised).passed
    assert not run("conv2d_loops", memorised, hidden=True).passed


def test_even_sized_vertical_edge_kernel_is_accepted():
    assert run("vertical_edge_kernel", lambda: torch.tensor([[1.0, -1.0], [1.0, -1.0]])).passed
    assert run("vertical_edge_kernel", lambda: torch.tensor([[1.0, -1.0], [1.0, -1.0]]),
               hidden=True).passed
    four = torch.tensor([[1.0, 1.0, -1.0, -1.0]] * 4)
    assert run("vertical_edge_kernel", lambda: four).passed


def test_edge_kernel_return_contract_is_explained():
    """The exercise returns a float32 tensor of shape [k, k]; every other form is refused with
    what to change, and no case runs the kernel before that."""
    sobel = reference.vertical_edge_kernel()
    wrong = {
        "a [1, 1, k, k] tensor": (lambda: sobel[None, None], ["(1, 1, 3, 3)", "[k, k]"]),
        "a list of rows": (lambda: sobel.tolist(), ["Python list", "torch.tensor"]),
        "integers": (lambda: sobel.long(), ["torch.int64", "decimal point"]),
        "float64": (lambda: sobel.double(), ["torch.float64", "float32"]),
        "no return value": (lambda: None, ["returned None", "[k, k]"]),
        "a flat vector": (lambda: sobel.flatten(), ["(9,)", "[k, k]"]),
    }
    for name, (fn, fragments) in wrong.items():
        for hidden in (False, True):
            result = run("vertical_edge_kernel", fn, hidden=hidden)
            assert not result.passed, name
            assert "float32 tensor of shape [k, k]" in result.message, (name, result.message)
            for fragment in fragments:
                assert fragment in result.message, (name, result.message)
            assert "Hint" not in result.message, name
    assert run("vertical_edge_kernel", lambda: sobel, hidden=True).passed


def test_edge_kernel_with_nan_or_huge_size_is_explained():
    nan = run("vertical_edge_kernel", lambda: torch.full((3, 3), float("nan")))
    assert not nan.passed and "nan" in nan.message
    huge = run("vertical_edge_kernel", lambda: torch.zeros(40, 40))
    assert not huge.passed and "at most" in huge.message


# ---- im2col without loops -------------------------------------------------------------------

def per_image(x, w, b=None, stride=1, padding=0):
    return torch.cat([reference.conv2d_im2col(x[i:i + 1], w, b, stride, padding)
                      for i in range(x.shape[0])])


def per_output_channel(x, w, b=None, stride=1, padding=0):
    return torch.cat([reference.conv2d_im2col(x, w[o:o + 1], None if b is None else b[o:o + 1],
                                              stride, padding) for o in range(w.shape[0])], 1)


def per_input_channel(x, w, b=None, stride=1, padding=0):
    out = sum(reference.conv2d_im2col(x[:, c:c + 1], w[:, c:c + 1], None, stride, padding)
              for c in range(x.shape[1]))
    return out if b is None else out + b.view(1, -1, 1, 1)


LOOPS = [(reference.conv2d_loops, "loops over the output positions"),
         (per_image, "loops over the images of the batch"),
         (per_output_channel, "loops over the output channels"),
         (per_input_channel, "loops over the input channels")]


def test_im2col_with_loops_is_refused_by_name():
    for answer, words in LOOPS:
        # each answer is right: only the rule of the exercise refuses it
        assert run("conv2d_loops", answer).passed
        for hidden in (False, True):
            result = run("conv2d_im2col", answer, hidden=hidden)
            assert not result.passed and result.method, (words, result.message)
            assert words in result.message and "rules out loops" in result.message, \
                result.message
            assert "PyTorch operations" in result.message


def test_im2col_without_loops_passes_in_other_forms():
    assert run("conv2d_im2col", reference.conv2d_im2col).passed

    def with_tensor_unfold(x, w, b=None, stride=1, padding=0):
        kh, kw = w.shape[-2:]
        patches = F.pad(x, (padding,) * 4).unfold(2, kh, stride).unfold(3, kw, stride)
        out = torch.einsum("ncijuv,ocuv->noij", patches, w)
        return out if b is None else out + b.view(1, -1, 1, 1)
    assert run("conv2d_im2col", with_tensor_unfold).passed
    assert run("conv2d_im2col", with_tensor_unfold, hidden=True).passed


def test_loop_rule_only_applies_to_im2col():
    names = [case.description for case in checks.EXERCISES["conv2d_loops"].cases(
        reference.conv2d_loops)]
    assert not any("no loop" in name for name in names)
    im2col = [case.description for case in checks.EXERCISES["conv2d_im2col"].cases(
        reference.conv2d_im2col)]
    assert sum("no loop over the" in name for name in im2col) == 4


def test_loop_rule_survives_a_graders_replay():
    from test_checks_replay import _assert_replay_agrees

    assert _assert_replay_agrees("conv", "conv2d_im2col", reference.conv2d_im2col).passed
    result = _assert_replay_agrees("conv", "conv2d_im2col", per_image)
    assert result.method and "images of the batch" in result.message
