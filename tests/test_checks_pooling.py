"""The Chapter 3 checkers pass correct answers and catch plausible wrong ones by name."""

import math

import torch
import torch.nn.functional as F
from spec_mistakes import three_entry_pool_shapes

from cnn_course.arith import spec_output_shapes
from cnn_course.checks import pooling as checks
from cnn_course.checks.core import has_passed, solved_or_reference
from cnn_course.reference import pooling as reference


def run(exercise, fn, hidden=False):
    return checks.run_check(exercise, fn, hidden=hidden)


def windows(x, k, s, p, fill):
    """[N, C, H_out, W_out, k*k] windows, written without PyTorch's pooling."""
    x = F.pad(x, (p, p, p, p), value=fill)
    patches = x.unfold(2, k, s).unfold(3, k, s)
    return patches.reshape(*patches.shape[:4], k * k)


# ---- correct answers and stubs --------------------------------------------------------------

def test_hidden_cases_add_to_the_visible_ones():
    assert run("max_pool2d", reference.max_pool2d, hidden=True).cases_run > \
        run("max_pool2d", reference.max_pool2d).cases_run


def test_visible_cases_cover_the_edge_cases_the_brief_names():
    configs = checks._POOL_CONFIGS
    assert any(shape[0] > 1 and shape[1] > 1 for _, shape, *_ in configs)      # batch, channels
    assert any(shape[2] != shape[3] for _, shape, *_ in configs)                # non-square
    assert any(s is not checks.OMIT and s < k for _, _, k, s, _, _ in configs)  # overlapping
    assert any(s is checks.OMIT for _, _, _, s, _, _ in configs)                # default stride
    assert any(p > 0 and negative for *_, p, negative in configs)               # -inf padding
    assert any(s is not checks.OMIT and (n - k) % s for _, (*_, n), k, s, _, _ in configs)


# ---- max pooling ----------------------------------------------------------------------------

def test_max_pool_ignoring_stride_is_named():
    result = run("max_pool2d", lambda x, k, stride=None, padding=0:
                 windows(x, k, 1, padding, -math.inf).amax(-1))
    assert not result.passed and "what stride 1 gives" in result.message


def test_max_pool_wrong_stride_default_is_named():
    def default_one(x, k, stride=None, padding=0):
        return windows(x, k, stride or 1, padding, -math.inf).amax(-1)
    result = run("max_pool2d", default_one)
    assert not result.passed and "stride=None means stride = kernel_size" in result.message


def test_max_pool_always_stride_kernel_is_named():
    result = run("max_pool2d", lambda x, k, stride=None, padding=0:
                 windows(x, k, k, padding, -math.inf).amax(-1))
    assert not result.passed and "stride = kernel_size = 3 gives" in result.message


def test_max_pool_zero_padding_is_named_on_negative_input():
    result = run("max_pool2d", lambda x, k, stride=None, padding=0:
                 windows(x, k, stride or k, padding, 0.0).amax(-1))
    assert not result.passed and "all-negative" in result.message
    assert "pads with -inf" in result.message and "Hint" not in result.message


def test_max_pool_ignoring_padding_is_named():
    result = run("max_pool2d", lambda x, k, stride=None, padding=0:
                 windows(x, k, stride or k, 0, -math.inf).amax(-1))
    assert not result.passed and "ignores the padding" in result.message


def test_max_pool_rounding_up_is_named():
    def ceil_pool(x, k, stride=None, padding=0):
        s = stride or k
        h, w = (math.ceil((n + 2 * padding - k) / s) + 1 for n in x.shape[-2:])
        padded = F.pad(x, (padding, padding + s, padding, padding + s), value=-math.inf)
        return windows(padded, k, s, 0, -math.inf).amax(-1)[..., :h, :w]
    result = run("max_pool2d", ceil_pool)
    assert not result.passed and "rounds down" in result.message and "ceil_mode" in result.message


def test_average_instead_of_max_and_builtin_are_refused():
    result = run("max_pool2d", lambda x, k, stride=None, padding=0:
                 windows(x, k, stride or k, padding, 0.0).mean(-1))
    assert not result.passed and "window's average" in result.message
    builtin = run("max_pool2d", lambda x, k, stride=None, padding=0:
                  torch.nn.MaxPool2d(k, stride, padding)(x))
    assert not builtin.passed and "built-in pooling" in builtin.message
    # the guard is lifted afterwards
    assert F.max_pool2d(torch.arange(4.0).view(1, 1, 2, 2), 2).item() == 3.0
    assert F.avg_pool2d(torch.arange(4.0).view(1, 1, 2, 2), 2).item() == 1.5


# ---- average pooling ------------------------------------------------------------------------

def test_avg_pool_excluding_padded_zeros_is_named():
    def exclude_padding(x, k, stride=None, padding=0):
        s = stride or k
        total = windows(x, k, s, padding, 0.0).sum(-1)
        counts = windows(torch.ones_like(x[:1, :1]), k, s, padding, 0.0).sum(-1)
        return total / counts
    result = run("avg_pool2d", exclude_padding)
    assert not result.passed and "count_include_pad=True" in result.message
    assert "Hint" not in result.message


def test_avg_pool_sum_max_and_stride_mistakes_are_named():
    summed = run("avg_pool2d", lambda x, k, stride=None, padding=0:
                 windows(x, k, stride or k, padding, 0.0).sum(-1))
    assert "did not divide by kernel_size**2" in summed.message
    maxed = run("avg_pool2d", lambda x, k, stride=None, padding=0:
                windows(x, k, stride or k, padding, -math.inf).amax(-1))
    assert "window's maximum" in maxed.message
    default = run("avg_pool2d", lambda x, k, stride=None, padding=0:
                  windows(x, k, stride or 1, padding, 0.0).mean(-1))
    assert "stride=None means stride = kernel_size" in default.message


def test_learner_exception_and_wrong_type_are_reported_without_traceback():
    def broken(x, k, stride=None, padding=0):
        return x[5]
    result = run("avg_pool2d", broken)
    assert "your code raised IndexError" in result.message and "in broken, line" in result.message
    assert "should be a torch.Tensor" in run("avg_pool2d", lambda *a, **kw: [[0.0]]).message


# ---- where max pooling takes its values from -----------------------------------------------

def winners_by_loops(x, k, stride=None, *, assign=False, every_tie=False, last_tie=False,
                     default_stride=None, offset=True):
    """Winners written with plain loops, with one switch per plausible mistake."""
    s = stride or default_stride or k
    n, c, height, width = x.shape
    out = torch.zeros_like(x)
    for i in range((height - k) // s + 1):
        for j in range((width - k) // s + 1):
            top, left = (i * s, j * s) if offset else (0, 0)
            window = x[:, :, i * s:i * s + k, j * s:j * s + k]
            for b in range(n):
                for ch in range(c):
                    values = window[b, ch].flatten()
                    best = values.max()
                    places = [m for m in range(k * k) if values[m] == best]
                    chosen = places if every_tie else [places[-1] if last_tie else places[0]]
                    for m in chosen:
                        row, col = top + m // k, left + m % k
                        if assign:
                            out[b, ch, row, col] = 1
                        else:
                            out[b, ch, row, col] += 1
    return out


def test_winners_by_loops_is_right_and_matches_pytorch_and_chapter_5():
    from cnn_course.reference.backprop import max_pool2d_backward
    assert run("max_pool2d_winners", winners_by_loops).passed
    x = torch.randint(0, 3, (2, 2, 7, 9), generator=torch.Generator().manual_seed(0)).float()
    counts = reference.max_pool2d_winners(x, 3, 2)
    pooled, index = F.max_pool2d(x, 3, 2, return_indices=True)
    assert torch.equal(counts.flatten(2).gather(2, index.flatten(2)) > 0,
                       torch.ones_like(index.flatten(2), dtype=torch.bool))
    assert counts.sum() == pooled.numel() and counts.max() >= 2   # overlap: some win twice
    # Chapter 5 routes gradients along exactly these marks: with all-ones gradients, its
    # backward pass gives the counts
    assert torch.equal(max_pool2d_backward(torch.ones_like(pooled), x, 3, 2), counts)


def test_visible_winner_cases_hold_ties_overlap_and_the_default_stride():
    configs = checks._WINNER_CONFIGS
    assert any(values == "ties" for *_, values in configs)
    assert any(s is checks.OMIT for _, _, _, s, _ in configs)
    assert any(s is not checks.OMIT and s < k for _, _, k, s, _ in configs)
    # (that the tie cases really hold ties shows in the next test: marking every tie fails)


def test_winners_marking_every_tie_is_named():
    result = run("max_pool2d_winners", lambda x, k, stride=None:
                 winners_by_loops(x, k, stride, every_tie=True))
    assert not result.passed and "marked all of them" in result.message
    assert "first in reading order" in result.message and "Hint" not in result.message


def test_winners_marking_the_last_tie_is_named():
    result = run("max_pool2d_winners", lambda x, k, stride=None:
                 winners_by_loops(x, k, stride, last_tie=True))
    assert not result.passed and "marked the last of them" in result.message


def test_winners_setting_instead_of_counting_is_named_on_overlap():
    result = run("max_pool2d_winners", lambda x, k, stride=None:
                 winners_by_loops(x, k, stride, assign=True))
    assert not result.passed and "+= 1" in result.message
    assert "overlapping windows" in result.message  # the first case with overlap fails


def test_winners_at_output_positions_are_named():
    def at_output(x, k, stride=None):
        s = stride or k
        out = torch.zeros_like(x)
        out[:, :, :(x.shape[2] - k) // s + 1, :(x.shape[3] - k) // s + 1] = 1
        return out
    result = run("max_pool2d_winners", at_output)
    assert not result.passed and "OUTPUT positions" in result.message

    def output_shaped(x, k, stride=None):
        return torch.ones_like(reference.max_pool2d(x, k, stride))
    result = run("max_pool2d_winners", output_shaped)
    assert not result.passed and "the pooled output's" in result.message
    assert "x's shape" in result.message


def test_winners_without_the_window_offset_are_named():
    result = run("max_pool2d_winners", lambda x, k, stride=None:
                 winners_by_loops(x, k, stride, offset=False))
    assert not result.passed and "top-left corner" in result.message


def test_winners_stride_mistakes_are_named():
    default_one = run("max_pool2d_winners", lambda x, k, stride=None:
                      winners_by_loops(x, k, stride, default_stride=1))
    assert not default_one.passed
    assert "stride=None means stride = kernel_size" in default_one.message
    always_kernel = run("max_pool2d_winners", lambda x, k, stride=None:
                        reference.max_pool2d_winners(x, k, k))
    assert "stride = kernel_size = 3" in always_kernel.message

    def none_used(x, k, stride=None):
        rows = (x.shape[2] - k) // stride + 1
        return reference.max_pool2d_winners(x, k, stride) * rows / rows
    result = run("max_pool2d_winners", none_used)
    assert not result.passed and "your code raised TypeError" in result.message
    assert "stride = kernel_size if stride is None" in result.message


def test_winners_of_partial_windows_are_named():
    def ceil_windows(x, k, stride=None):
        s = stride or k
        padded = F.pad(x, (0, s, 0, s), value=-math.inf)
        return winners_by_loops(padded, k, s)[..., :x.shape[-2], :x.shape[-1]]
    result = run("max_pool2d_winners", ceil_windows)
    assert not result.passed and "partial windows" in result.message


def test_winners_with_builtin_pooling_or_autograd_are_refused_and_restored():
    def with_indices(x, k, stride=None):
        pooled, index = F.max_pool2d(x, k, stride, return_indices=True)
        return torch.zeros_like(x).flatten(2).scatter_add_(2, index.flatten(2),
                                                           torch.ones_like(pooled).flatten(2))
    result = run("max_pool2d_winners", with_indices)
    assert not result.passed and result.method and "built-in pooling" in result.message

    def with_autograd(x, k, stride=None):
        leaf = x.clone().requires_grad_(True)
        torch.autograd.backward(reference.max_pool2d(leaf, k, stride).sum())
        return leaf.grad
    result = run("max_pool2d_winners", with_autograd)
    assert not result.passed and result.method and "used autograd" in result.message
    leaf = torch.ones(2, requires_grad=True)
    (leaf * 3).sum().backward()
    assert leaf.grad.tolist() == [3.0, 3.0]


def test_winners_may_be_bool_or_int_where_no_window_overlaps():
    def as_int(x, k, stride=None):
        return reference.max_pool2d_winners(x, k, stride).long()
    assert run("max_pool2d_winners", as_int).passed


# ---- shapes through a stack -----------------------------------------------------------------

def shapes_with(input_shape, layers, *, keep_channels=False, pool_stride=None, rounding=None,
                square=False, pool_padding=None):
    c, h, w = input_shape
    out = []
    for layer in layers:
        if layer[0] == "conv":
            _, c_out, k, s, p = layer
            c = c if keep_channels else c_out
        else:
            _, k, s, p = layer
            s = pool_stride or s
            p = p if pool_padding is None else pool_padding
        rnd = rounding or math.floor
        h = rnd((h + 2 * p - k) / s) + 1
        w = h if square else rnd((w + 2 * p - k) / s) + 1
        out.append((c, h, w))
    return out


def test_shape_mistakes_are_named():
    cases = {
        "out_channels channels": dict(keep_channels=True),
        "halves height and width": dict(pool_stride=1),
        "the size rounds down": dict(rounding=math.ceil),
        "not square": dict(square=True),
        "the pooling layer's padding": dict(pool_padding=0),
    }
    for message, mistake in cases.items():
        result = run("pooled_shapes", lambda shape, layers, m=mistake: shapes_with(shape, layers,
                                                                                   **m))
        assert not result.passed and message in result.message, result.message


def test_shape_return_types_are_explained():
    with_batch = run("pooled_shapes", lambda shape, layers: [(1, *s) for s in
                                                             reference.pooled_shapes(shape,
                                                                                     layers)])
    assert "(C, H, W) tuple" in with_batch.message
    floats = run("pooled_shapes", lambda shape, layers: [tuple(float(v) for v in s) for s in
                                                         reference.pooled_shapes(shape, layers)])
    assert "floor division" in floats.message
    last_only = run("pooled_shapes", lambda shape, layers: reference.pooled_shapes(shape,
                                                                                   layers)[-1])
    assert "one shape per layer" in last_only.message


def test_pool_specs_unpacked_as_three_entries_are_named():
    result = run("pooled_shapes", three_entry_pool_shapes)
    assert not result.passed and "too many values to unpack" in result.message
    assert '("pool", kernel_size, stride, padding)' in result.message
    assert "_, kernel, stride, padding = spec" in result.message and "Hint" not in result.message


def test_an_unrelated_error_is_not_blamed_on_the_pool_specs():
    def broken(input_shape, layers):
        c, h = input_shape
        return [(c, h, h)] * len(layers)
    result = run("pooled_shapes", broken)
    assert not result.passed and "your code raised ValueError" in result.message
    assert "four entries" not in result.message


def test_the_stacks_run_on_the_real_layers():
    assert spec_output_shapes((1, 32, 32), checks._STACKS[0][2]) == \
        [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5)]
    assert spec_output_shapes((3, 227, 227), checks._STACKS[2][2])[-1] == (256, 13, 13)
    assert spec_output_shapes((3, 224, 224), checks._STACKS[3][2]) == [(64, 112, 112),
                                                                        (64, 56, 56)]


def test_printed_verdict_and_fallback(capsys):
    checks.check_pooled_shapes(reference.pooled_shapes)
    assert capsys.readouterr().out.startswith("✅ pooled_shapes")
    assert has_passed("pooled_shapes")
    checks.check_max_pool2d(lambda *a, **k: torch.zeros(1))
    assert capsys.readouterr().out.startswith("❌ max_pool2d")
    learner = object()
    assert solved_or_reference("max_pool2d", learner, reference.max_pool2d) \
        is reference.max_pool2d
    assert "reference implementation" in capsys.readouterr().out
