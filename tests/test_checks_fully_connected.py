"""The Chapter 4 checkers pass correct answers and catch plausible wrong ones by name."""

import math

import pytest
import torch
from spec_mistakes import three_entry_flat_size
from torch import nn

import cnn_course.summary as summary_module
from cnn_course.arith import layers_from_specs
from cnn_course.checks import fully_connected as checks
from cnn_course.checks.core import has_passed
from cnn_course.reference import fully_connected as reference
from cnn_course.summary import model_summary


def run(exercise, fn, hidden=False):
    return checks.run_check(exercise, fn, hidden=hidden)


def test_reference_flatten_size_gives_the_cifar_model_1024():
    assert reference.flatten_size((3, 32, 32), reference.CIFAR10_SPECS) == 64 * 4 * 4
    assert not hasattr(reference, "layers_from_specs")  # the one builder is cnn_course.arith's


# ---- parameter counts -----------------------------------------------------------------------

def test_linear_count_without_bias_is_named():
    result = run("linear_params", lambda n_in, n_out, bias=True: n_in * n_out)
    assert not result.passed and "the weights only" in result.message
    assert "64 biases" in result.message


def test_linear_bias_per_input_is_named():
    result = run("linear_params", lambda n_in, n_out, bias=True: n_in * n_out + n_in)
    assert not result.passed and "per OUTPUT feature" in result.message


def test_linear_ignoring_bias_false_is_named():
    result = run("linear_params", lambda n_in, n_out, bias=True: n_in * n_out + n_out)
    assert not result.passed and "bias=False" in result.message and "Linear(10, 10" in \
        result.message


def test_linear_plus_one_both_sides_is_named():
    result = run("linear_params", lambda n_in, n_out, bias=True: (n_in + 1) * (n_out + 1))
    assert not result.passed and "(1024+1)x(64+1)" in result.message


def test_linear_float_and_shape_answers_are_explained():
    as_float = run("linear_params", lambda n_in, n_out, bias=True: float(n_in * n_out + n_out))
    assert "a float" in as_float.message
    as_shape = run("linear_params", lambda n_in, n_out, bias=True: (n_out, n_in))
    assert "a shape" in as_shape.message


def test_mlp_mistakes_are_named():
    def pairs(sizes):
        return list(zip(sizes, sizes[1:], strict=False))
    no_bias = run("mlp_params", lambda sizes: sum(a * b for a, b in pairs(sizes)))
    assert "weights only" in no_bias.message
    input_bias = run("mlp_params", lambda sizes: sum(a * b for a, b in pairs(sizes)) + sum(sizes))
    assert "the 784 inputs biases too" in input_bias.message
    bias_per_input = run("mlp_params", lambda sizes: sum(a * b + a for a, b in pairs(sizes)))
    assert "per OUTPUT unit" in bias_per_input.message
    product = run("mlp_params", lambda sizes: math.prod(sizes) + sum(sizes[1:]))
    assert "SUM over its Linear layers" in product.message


def test_mlp_single_size_means_no_layers():
    # Correct on real stacks, wrong only where the list holds the input alone.
    def one_layer_minimum(sizes):
        return reference.mlp_params(sizes) if len(sizes) > 1 else sizes[0]
    result = run("mlp_params", one_layer_minimum)
    assert not result.passed and "0 parameters" in result.message


# ---- in_features ----------------------------------------------------------------------------

def _spatial_only(input_shape, specs):
    channels_kept = reference.flatten_size(input_shape, specs)
    last_channels = next((s[1] for s in reversed(specs) if s[0] == "conv"), input_shape[0])
    return channels_kept // last_channels


def test_in_features_without_channels_is_named():
    result = run("flatten_size", _spatial_only)
    assert not result.passed
    assert "4 x 4" in result.message and "64 x 4 x 4 = 1024" in result.message


def test_in_features_with_input_channels_is_named():
    def input_channels(input_shape, specs):
        return input_shape[0] * _spatial_only(input_shape, specs)
    result = run("flatten_size", input_channels)
    assert not result.passed and "input's 3 channel(s)" in result.message


def test_in_features_counting_a_batch_is_named():
    result = run("flatten_size", lambda shape, specs: 2 * reference.flatten_size(shape, specs))
    assert not result.passed and "ONE image" in result.message


def test_in_features_returned_as_a_shape_is_explained():
    def shape_not_count(input_shape, specs):
        layers = layers_from_specs(input_shape[0], specs)
        return tuple(layers(torch.zeros(1, *input_shape)).shape[1:])
    result = run("flatten_size", shape_not_count)
    assert not result.passed and "a shape" in result.message


def test_in_features_ignoring_padding_fails_with_the_real_shape():
    def no_padding(input_shape, specs):
        channels, height, width = input_shape
        for spec in specs:
            if spec[0] == "conv":
                channels, kernel, stride = spec[1], spec[2], spec[3]
            else:
                kernel, stride = spec[1], spec[2]
            height = (height - kernel) // stride + 1
            width = (width - kernel) // stride + 1
        return channels * height * width
    result = run("flatten_size", no_padding)
    assert not result.passed and "returned 0" in result.message
    assert "64 x 4 x 4 = 1024" in result.message and "Hint" in result.message


def test_in_features_ignoring_stride_is_caught_on_its_case():
    def no_stride(input_shape, specs):
        return reference.flatten_size(input_shape, [
            (s[0], s[1], s[2], 1, s[4]) if s[0] == "conv" else s for s in specs])
    result = run("flatten_size", no_stride)
    assert not result.passed and "stride 2" in result.message


def test_pool_spec_unpacked_as_three_entries_is_named():
    result = run("flatten_size", three_entry_flat_size)
    assert not result.passed and "too many values to unpack" in result.message
    assert '("pool", kernel_size, stride, padding)' in result.message
    assert "four entries" in result.message and "Hint" not in result.message


def test_pooling_without_its_padding_is_named():
    def pool_padding_ignored(input_shape, specs):
        channels, height, width = input_shape
        for spec in specs:
            if spec[0] == "conv":
                _, channels, kernel, stride, padding = spec
            else:
                kernel, stride, padding = spec[1], spec[2], 0
            height = (height + 2 * padding - kernel) // stride + 1
            width = (width + 2 * padding - kernel) // stride + 1
        return channels * height * width
    result = run("flatten_size", pool_padding_ignored)
    assert not result.passed and "leaves out the pooling padding" in result.message
    assert "('pool', 3, 2, 1)" in result.message and "(n + 2*1 - 3) // 2 + 1" in result.message
    assert "5 x 6 x 6 = 180" in result.message and "Hint" not in result.message


def test_in_features_by_an_impossible_view_names_the_expected_size():
    def by_view(input_shape, specs):
        maps = layers_from_specs(input_shape[0], specs)(torch.zeros(1, *input_shape))
        return maps.view(1, 16 * 5 * 5).shape[1]   # LeNet-5's number, for every model
    result = run("flatten_size", by_view)
    assert not result.passed and "expected 1024 values per image" in result.message
    assert "Flatten turns [1, 64, 4, 4] into [1, 1024]" in result.message
    assert "could not reshape a tensor of 1,024 values to [1, 400]" in result.message


def test_unrelated_unpacking_error_is_not_blamed_on_the_pool_spec():
    def broken(input_shape, specs):
        channels, height = input_shape
        return channels * height
    result = run("flatten_size", broken)
    assert not result.passed and "your code raised ValueError" in result.message
    assert "four entries" not in result.message


def _pool_rule(pool_size):
    def fn(input_shape, specs):
        channels, height, width = input_shape
        for spec in specs:
            if spec[0] == "conv":
                _, channels, kernel, stride, padding = spec
                height = (height + 2 * padding - kernel) // stride + 1
                width = (width + 2 * padding - kernel) // stride + 1
            else:
                height, width = pool_size(height, spec), pool_size(width, spec)
        return channels * height * width
    return fn


def test_pooling_that_ignores_its_stride_is_named():
    stride_one = run("flatten_size", _pool_rule(lambda n, spec: n - spec[1] + 1))
    assert not stride_one.passed and "ignores the pooling stride" in stride_one.message
    assert "Hint" not in stride_one.message
    # dividing by the kernel is right for 2x2 windows with stride 2, wrong for AlexNet's 3, 2
    by_kernel = run("flatten_size", _pool_rule(lambda n, spec: n // spec[1]))
    assert not by_kernel.passed and "ignores the pooling stride" in by_kernel.message
    assert "('pool', 3, 2, 0)" in by_kernel.message


# ---- layer table ----------------------------------------------------------------------------

def _table_from(transform):
    def table(model, input_shape):
        return [transform(row, layer) for row, layer in
                zip(reference.layer_table(model, input_shape), model, strict=True)]
    return table


def test_table_with_batch_dimension_is_named():
    result = run("layer_table", _table_from(lambda row, layer: (row[0], (1, *row[1]), row[2])))
    assert not result.passed and "includes the batch dimension" in result.message


def test_table_from_an_unbatched_run_is_named():
    def unbatched(model, input_shape):
        rows, x = [], torch.zeros(*input_shape)
        for layer in model:
            x = layer(x)
            rows.append((type(layer).__name__, tuple(x.shape),
                         sum(p.numel() for p in layer.parameters())))
        return rows
    result = run("layer_table", unbatched)
    assert not result.passed and "MNIST" in result.message  # plain vectors work unbatched
    assert "WITHOUT a batch dimension" in result.message
    assert "Either the shapes still hold the batch" in result.message  # (1, 784) fits both

    def unbatched_then_sliced(model, input_shape):
        return [(kind, shape[1:], params) for kind, shape, params in unbatched(model, input_shape)]
    result = run("layer_table", unbatched_then_sliced)
    assert not result.passed and "WITHOUT a batch dimension" in result.message
    assert "Either" not in result.message

    def unbatched_on_conv_models(model, input_shape):
        if any(isinstance(layer, nn.Conv2d) for layer in model):
            return unbatched_then_sliced(model, input_shape)
        return reference.layer_table(model, input_shape)
    result = run("layer_table", unbatched_on_conv_models)
    assert not result.passed and "CIFAR-10" in result.message
    assert "your code raised RuntimeError" in result.message
    assert "WITHOUT a batch dimension" in result.message


def test_unrelated_learner_error_is_not_blamed_on_the_batch():
    def broken(model, input_shape):
        raise RuntimeError("something else")
    result = run("layer_table", broken)
    assert "your code raised RuntimeError: something else" in result.message
    assert "batch" not in result.message


def test_table_without_biases_is_named():
    def weights_only(row, layer):
        return row[0], row[1], sum(p.numel() for n, p in layer.named_parameters() if n != "bias")
    result = run("layer_table", _table_from(weights_only))
    assert not result.passed and "weights only" in result.message


def test_table_with_linear_as_in_times_out_is_caught():
    def in_times_out(row, layer):
        count = layer.in_features * layer.out_features if isinstance(layer, nn.Linear) else row[2]
        return row[0], row[1], count
    result = run("layer_table", _table_from(in_times_out))
    assert not result.passed and "weights only" in result.message and "Linear" in result.message


def _count_with(count):
    def table(model, input_shape):
        rows, x = [], torch.zeros(1, *input_shape)
        for layer in model:
            x = layer(x)
            rows.append((type(layer).__name__, tuple(x.shape[1:]), count(layer)))
        return rows
    return table


def test_table_counting_buffers_is_named():
    # iterating state_dict() counts BatchNorm's running statistics too
    result = run("layer_table", _count_with(lambda layer: sum(
        v.numel() for v in layer.state_dict().values())))
    assert not result.passed and "BatchNorm2d" in result.message
    assert "buffers" in result.message and "running_mean, running_var" in result.message
    assert "state_dict()" in result.message and "Hint" not in result.message


def test_table_skipping_frozen_parameters_is_named():
    result = run("layer_table", _count_with(lambda layer: sum(
        p.numel() for p in layer.parameters() if p.requires_grad)))
    assert not result.passed and "frozen" in result.message
    assert "requires_grad=False" in result.message and "156" in result.message


def test_table_counting_the_whole_model_is_named():
    def whole(model, input_shape):
        total = sum(p.numel() for p in model.parameters())
        return [(kind, shape, total) for kind, shape, _ in reference.layer_table(model,
                                                                                input_shape)]
    result = run("layer_table", whole)
    assert not result.passed and "whole model's count" in result.message


def test_table_models_really_hold_buffers_and_frozen_parameters():
    visible = [make() for _, make, _ in checks._TABLE_MODELS]
    hidden = [make() for _, make, _ in checks._HIDDEN_TABLE_MODELS]
    for models in (visible, hidden):
        assert any(list(model.buffers()) for model in models)
        assert any(not p.requires_grad for model in models for p in model.parameters())
    # model_summary, which the checker compares with, counts frozen parameters and no buffers
    frozen = next(m for m in visible if any(not p.requires_grad for p in m.parameters()))
    summary = model_summary(frozen, (1, 16, 16))
    assert summary.rows[0].params == 156 and summary.trainable_params == summary.total_params - 156


def test_table_with_an_impossible_reshape_names_the_expected_shapes():
    def reshaping(model, input_shape):
        rows, x = [], torch.zeros(1, *input_shape)
        for layer in model:
            x = x.view(1, 784) if isinstance(layer, nn.Flatten) else layer(x)
            rows.append((type(layer).__name__, tuple(x.shape[1:]),
                         sum(p.numel() for p in layer.parameters())))
        return rows
    result = run("layer_table", reshaping)
    assert not result.passed and "CIFAR-10" in result.message
    assert "could not reshape a tensor of 1,024 values to [1, 784]" in result.message
    assert "Flatten [1, 1024]" in result.message and "MaxPool2d [1, 64, 4, 4]" in result.message
    assert "in reshaping, line" in result.message


def test_table_names_and_row_format_are_explained():
    named = run("layer_table", lambda model, shape: [
        (name, row[1], row[2]) for (name, _), row in
        zip(model.named_children(), reference.layer_table(model, shape), strict=True)])
    assert "type(layer).__name__" in named.message
    flat = run("layer_table", lambda model, shape: [row[1] for row in
                                                    reference.layer_table(model, shape)])
    assert "each row should be a tuple" in flat.message
    short = run("layer_table", lambda model, shape: reference.layer_table(model, shape)[:-1])
    assert "rows, but the model has" in short.message


def test_table_rows_may_be_lists_and_sizes():
    def loose(model, shape):
        return [[kind, torch.Size(out), params]
                for kind, out, params in reference.layer_table(model, shape)]
    assert run("layer_table", loose).passed


def test_table_through_model_summary_is_refused_and_restored():
    def borrowed(model, shape):
        return [(r.kind, r.output_shape, r.params) for r in model_summary(model, shape).rows]
    result = run("layer_table", borrowed)
    assert not result.passed and "walk the layers yourself" in result.message
    assert summary_module.LayerRow.__name__ == "LayerRow"
    assert model_summary(nn.Sequential(nn.Linear(3, 2)), (3,)).total_params == 8


def test_table_check_leaves_the_global_seed_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run("layer_table", reference.layer_table)
    run("flatten_size", reference.flatten_size)
    assert torch.equal(torch.rand(3), expected)


# ---- features and targets -------------------------------------------------------------------

def test_ink_features_mistakes_are_named():
    unflat = run("ink_features", lambda images, grid: reference.ink_features(
        images, grid).reshape(len(images), grid, grid))
    assert "flatten the grid" in unflat.message
    transposed = run("ink_features", lambda images, grid: reference.ink_features(
        images, grid).reshape(len(images), grid, grid).transpose(1, 2).reshape(len(images), -1))
    assert "wrong order" in transposed.message

    def summed(images, grid):
        n, height, width = images.shape
        return reference.ink_features(images, grid) * (height // grid) * (width // grid)
    assert "MEAN" in run("ink_features", summed).message

    def grid_as_cell_size(images, grid):
        n, height, width = images.shape
        return images.reshape(n, height // grid, grid, width // grid, grid).mean(
            dim=(2, 4)).reshape(n, -1)
    assert "not the size of a cell" in run("ink_features", grid_as_cell_size).message


def test_ink_features_impossible_reshape_names_the_expected_shape():
    # reshaping the pixels straight to [N, grid * grid] cannot work: it would drop values
    result = run("ink_features", lambda images, grid: images.reshape(len(images), grid * grid))
    assert not result.passed
    assert "expected features [1, 4] from images [1, 4, 4]" in result.message
    assert "could not reshape a tensor of 16 values to [1, 4]" in result.message
    assert "that shape holds 4 values" in result.message and "[1, 2, 2, 2, 2]" in result.message
    assert "RuntimeError" not in result.message and "Hint" not in result.message

    def inferred(images, grid):
        return images.reshape(len(images), grid, -1, grid, 3).mean(dim=(2, 4)).flatten(1)
    result = run("ink_features", inferred)
    assert "does not divide 16, so -1 cannot be filled in" in result.message

    def view_after_transpose(images, grid):
        n, height, width = images.shape
        cells = images.reshape(n, grid, height // grid, grid, width // grid).transpose(2, 3)
        return cells.view(n, grid * grid, -1).mean(-1)
    result = run("ink_features", view_after_transpose)
    assert not result.passed and "use reshape(...)" in result.message
    assert "expected features [1, 4]" in result.message


def test_an_unrelated_runtime_error_is_reported_as_it_is():
    def broken(images, grid):
        raise RuntimeError("something else")
    result = run("ink_features", broken)
    assert "your code raised RuntimeError: something else" in result.message


def test_ink_features_return_type_is_explained():
    result = run("ink_features", lambda images, grid: reference.ink_features(images, grid)
                 .tolist())
    assert not result.passed and "should be a torch.Tensor" in result.message


def test_one_hot_mistakes_are_named():
    import torch.nn.functional as F
    integers = run("one_hot", lambda labels, k: F.one_hot(labels, k))
    assert "return floats" in integers.message
    transposed = run("one_hot", lambda labels, k: reference.one_hot(labels, k).T)
    assert "one ROW per label" in transposed.message
    too_few = run("one_hot", lambda labels, k: F.one_hot(labels).float())
    assert "num_classes = 10 columns" in too_few.message
    one_based = run("one_hot", lambda labels, k: reference.one_hot(labels - 1, k))
    assert "label -1" in one_based.message


def test_learner_exception_is_reported_without_a_traceback():
    def broken(model, input_shape):
        return [model[99]]
    result = run("layer_table", broken)
    assert not result.passed and "your code raised IndexError" in result.message


@pytest.mark.parametrize("exercise", list(checks.EXERCISES))
def test_printed_verdicts(exercise, capsys):
    getattr(checks, f"check_{exercise}")(getattr(reference, exercise))
    assert capsys.readouterr().out.startswith(f"✅ {exercise}")
    assert has_passed(exercise)


def test_keras_example_in_pytorch_layout():
    model = checks._keras_example()
    rows = model_summary(model, (3, 224, 224)).rows
    assert [r.output_shape for r in rows] == [(16, 223, 223), (16, 111, 111), (111, 111, 16),
                                              (111, 111, 133)]
    assert [r.params for r in rows] == [208, 0, 0, 2261]
    assert sum(r.params for r in rows) == 2469
