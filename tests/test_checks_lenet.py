"""The Chapter 7 checkers pass correct answers and catch plausible wrong ones with a message."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnn_course.checks import lenet as checks
from cnn_course.reference import lenet as reference


def run(exercise, fn, hidden=False):
    return checks.run_check(exercise, fn, hidden=hidden)


def failure(exercise, fn):
    result = run(exercise, fn)
    assert not result.passed, f"{exercise}: a wrong answer passed"
    return result.message


# ---- the layer table ------------------------------------------------------------------------

def table_with(change):
    """The reference table with one row changed by ``change(rows, input_size)``."""
    def table(input_size=32, num_classes=10):
        rows = [list(row) for row in reference.lenet_layer_table(input_size, num_classes)]
        change(rows, input_size)
        return [tuple(row) for row in rows]
    return table


def test_c3_without_input_channels_is_the_59706_mistake():
    message = failure("lenet_layer_table", table_with(lambda rows, n: rows[2].__setitem__(2, 416)))
    assert "416" in message and "59,706" in message and "all 6 maps" in message


def test_missing_biases_are_named():
    message = failure("lenet_layer_table", table_with(lambda rows, n: rows[0].__setitem__(2, 150)))
    assert "leaves out its 6 biases" in message


def test_pooling_with_parameters_is_named():
    message = failure("lenet_layer_table", table_with(lambda rows, n: rows[1].__setitem__(2, 12)))
    assert "pooling layers have none" in message


def test_c1_that_keeps_the_size_is_named():
    def change(rows, n):
        rows[0][1] = (6, n, n)
    message = failure("lenet_layer_table", table_with(change))
    assert "fits only 32 - 5 + 1 = 28" in message


def test_pooling_that_rounds_up_is_named():
    def change(rows, n):
        if n == 30:
            rows[1][1] = (6, 13 + 0, 13)  # correct, then S4 of 9 rounded up
            rows[3][1] = (16, 5, 5)
    message = failure("lenet_layer_table", table_with(change))
    assert "round down" in message and "30" in message


def test_c5_row_showing_its_input_is_named():
    def change(rows, n):
        rows[4][1] = (16 * 5 * 5,) if n == 32 else rows[4][1]
    assert "flattened input of C5" in failure("lenet_layer_table", table_with(change))


def test_hard_coded_table_is_named():
    def typed(input_size=32, num_classes=10):
        return reference.lenet_layer_table(32, num_classes)
    assert "compute the sizes from input_size" in failure("lenet_layer_table", typed)


def test_c5_count_for_the_wrong_input_size_is_named():
    def change(rows, n):
        rows[4][2] = 48120
    message = failure("lenet_layer_table", table_with(change))
    assert "the count for 32x32 inputs" in message and "16, 4, 4" in message


def test_table_format_problems_are_explained():
    assert "7: C1, S2" in failure("lenet_layer_table", lambda input_size=32, num_classes=10:
                                  reference.lenet_layer_table(input_size, num_classes)[:5])
    assert "a float" in failure("lenet_layer_table", table_with(
        lambda rows, n: rows[0].__setitem__(2, 156.0)))
    assert "tuple of ints" in failure("lenet_layer_table", table_with(
        lambda rows, n: rows[0].__setitem__(1, "6x28x28")))
    assert "list of rows" in failure("lenet_layer_table", lambda **kwargs: 61706)


# ---- the LeNet-5 module ---------------------------------------------------------------------

class Configurable(nn.Module):
    """A LeNet-5 with knobs for the usual mistakes."""

    def __init__(self, num_classes=10, c1_padding=2, c3_in=6, flat=400, softmax=False,
                 flatten=lambda x: x.flatten(1), bias=True):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5, padding=c1_padding, bias=bias)
        self.c3 = nn.Conv2d(c3_in, 16, 5)
        self.c5 = nn.Linear(flat, 120)
        self.f6 = nn.Linear(120, 84)
        self.out = nn.Linear(84, num_classes)
        self.softmax, self.flatten = softmax, flatten

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c3(x)), 2)
        x = F.relu(self.c5(self.flatten(x)))
        x = self.out(F.relu(self.f6(x)))
        return x.softmax(1) if self.softmax else x


def model_with(**changes):
    return lambda num_classes=10: Configurable(num_classes, **changes)


def test_missing_padding_gives_a_shape_error_message():
    message = failure("lenet5", model_with(c1_padding=0))
    assert "shape error at C5" in message and "padding=2" in message and "256" in message


def test_missing_padding_with_a_view_is_explained_too():
    message = failure("lenet5", model_with(c1_padding=0, flatten=lambda x: x.view(-1, 400)))
    assert "C1 has no padding" in message and "padding=2" in message


def test_missing_padding_with_a_matching_flatten_size():
    assert "needs padding=2" in failure("lenet5", model_with(c1_padding=0, flat=256))


def test_wrong_flatten_size_is_named():
    message = failure("lenet5", model_with(flat=16 * 4 * 4))
    assert "wrong flatten size" in message and "built for 256 features" in message
    assert "receives 16*5*5 = 400 features per image" in message


def test_a_view_with_a_typed_wrong_size_names_the_expected_shape():
    message = failure("lenet5", model_with(flat=256, flatten=lambda x: x.view(-1, 256)))
    assert "while flattening" in message and "S4 gives 16x5x5 = 400 values per image" in message
    assert "x.flatten(1)" in message and "your code raised" not in message


def test_28x28_digits_into_a_layer_sized_for_32x32_name_both_sizes():
    message = failure("lenet5", model_with(c1_padding=0))
    assert "built for 400 inputs but gets 256 per image" in message
    assert "16x4x4 = 256" in message and "16x5x5 = 400" in message


def test_c3_with_one_input_channel_is_the_416_mistake():
    message = failure("lenet5", model_with(c3_in=1))
    assert "nn.Conv2d(6, 16, 5)" in message and "416" in message


def test_flattening_the_batch_axis_is_named():
    assert "batch axis too" in failure("lenet5", model_with(flatten=lambda x: x.flatten()))
    assert "flatten the maps" in failure("lenet5", model_with(flatten=lambda x: x))


def test_mixing_samples_is_caught():
    def mixed(x):
        return x.flatten(1).roll(1, dims=0)
    assert "other images are in the batch" in failure("lenet5", model_with(flatten=mixed))


def test_softmax_output_is_named():
    assert "ends with a softmax" in failure("lenet5", model_with(softmax=True))


def test_missing_bias_and_missing_num_classes_are_named():
    assert "has no bias" in failure("lenet5", model_with(bias=False))
    assert "accept num_classes" in failure("lenet5", lambda: Configurable())


def test_not_a_module():
    assert "not an nn.Module" in failure("lenet5", lambda num_classes=10: "LeNet-5")


def test_extra_parameters_are_caught():
    def bigger(num_classes=10):
        model = Configurable(num_classes)
        model.unused = nn.Linear(10, 10)
        return model
    assert "61,706" in failure("lenet5", bigger)


def test_frozen_parameters_count_and_buffers_do_not():
    """requires_grad=False leaves a parameter a parameter; a buffer is no parameter."""
    def frozen_with_buffer(num_classes=10):
        model = reference.LeNet5(num_classes)
        model.c1.requires_grad_(False)
        model.register_buffer("input_mean", torch.zeros(1))
        return model
    result = run("lenet5", frozen_with_buffer)
    assert result.passed, result.message


def test_batch_norm_parameters_are_named_and_its_buffers_are_not_counted():
    def with_batch_norm(num_classes=10):
        model = Configurable(num_classes)
        model.bn = nn.BatchNorm2d(6)  # 12 parameters; running statistics are buffers
        return model
    message = failure("lenet5", with_batch_norm)
    assert "61,718 parameters in all" in message and "bn (BatchNorm2d) has 12" in message


def test_the_layer_tables_expected_counts_are_parameters_not_buffers():
    """The checker reads its expected counts off a real LeNet-5 with model_summary; they are
    the formulas' counts, whatever buffers or frozen layers the network has."""
    from cnn_course.models import LeNet5 as CourseLeNet5

    original = CourseLeNet5.__init__

    def with_extras(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.c1.requires_grad_(False)
        self.c3.register_buffer("running_scale", torch.ones(16))
    expected_plain = checks._expected_table(30, 10)
    try:
        CourseLeNet5.__init__ = with_extras
        expected_extras = checks._expected_table(30, 10)
    finally:
        CourseLeNet5.__init__ = original
    assert expected_extras == expected_plain == reference.lenet_layer_table(30, 10)


class ForwardVariant(Configurable):
    """The right layers with a plausible mistake in ``forward``."""

    def __init__(self, num_classes=10, activation=F.relu, pool=F.max_pool2d, last=None,
                 skip_f6_relu=False):
        super().__init__(num_classes)
        self.activation, self.pool, self.last = activation, pool, last
        self.skip_f6_relu = skip_f6_relu

    def forward(self, x):
        act = self.activation
        x = self.pool(act(self.c1(x)), 2)
        x = self.pool(act(self.c3(x)), 2)
        x = act(self.c5(x.flatten(1)))
        x = self.f6(x) if self.skip_f6_relu else act(self.f6(x))
        x = self.out(x)
        return self.last(x) if self.last else x


@pytest.mark.parametrize(("changes", "words"), [
    ({"activation": lambda x: x}, "no activation function"),
    ({"last": F.relu}, "applies ReLU to the output layer"),
    ({"activation": torch.tanh}, "uses tanh"),
    ({"activation": torch.sigmoid}, "uses sigmoid"),
    ({"pool": F.avg_pool2d}, "uses average pooling"),
    ({"skip_f6_relu": True}, "gives other scores than your forward pass"),
])
def test_wrong_forward_passes_are_caught(changes, words):
    message = failure("lenet5", lambda num_classes=10: ForwardVariant(num_classes, **changes))
    assert words in message


def test_relu_after_pooling_is_the_same_network():
    def pool_then_relu(x, size):
        return F.max_pool2d(x, size)
    model = ForwardVariant(activation=lambda x: x, pool=lambda x, k: F.relu(F.max_pool2d(x, k)))
    model.forward = ForwardVariant.forward.__get__(model)
    result = run("lenet5", lambda num_classes=10: ForwardVariant(
        num_classes, pool=lambda x, k: F.max_pool2d(F.relu(x), k)))
    assert result.passed, result.message


# ---- the training loop ----------------------------------------------------------------------

def loop(*, zero_grad=True, step=True, train=True, first_only=False, schedule=True,
         fixed_loss=False, mean_of_batches=False, percent=False, returned="both"):
    """A training epoch with one mistake switched on."""
    def train_one_epoch(model, batches, optimizer, loss_fn, scheduler=None):
        if train:
            model.train()
        losses, sizes, correct = [], [], 0
        for inputs, labels in batches:
            logits = model(inputs)
            loss = (F.cross_entropy if fixed_loss else loss_fn)(logits, labels)
            if zero_grad:
                optimizer.zero_grad()
            loss.backward()
            if step:
                optimizer.step()
            if scheduler is not None and schedule:
                scheduler.step()
            losses.append(loss.item())
            sizes.append(len(labels))
            correct += (logits.argmax(1) == labels).sum().item()
            if first_only:
                break
        if mean_of_batches:
            mean = sum(losses) / len(losses)
        else:
            mean = sum(a * b for a, b in zip(losses, sizes, strict=True)) / sum(sizes)
        accuracy = correct / sum(sizes) * (100 if percent else 1)
        return (mean, accuracy) if returned == "both" else mean
    return train_one_epoch


@pytest.mark.parametrize("mistake, words", [
    (dict(zero_grad=False), "call optimizer.zero_grad()"),
    (dict(step=False), "call optimizer.step()"),
    (dict(train=False), "call model.train()"),
    (dict(first_only=True), "only the first batch"),
    (dict(schedule=False), "call scheduler.step()"),
    (dict(fixed_loss=True), "loss_fn argument"),
    (dict(mean_of_batches=True), "weight each batch's loss by its size"),
    (dict(percent=True), "a percentage"),
    (dict(returned="loss only"), "return (mean loss, accuracy)"),
])
def test_training_loop_mistakes_are_named(mistake, words):
    assert words in failure("train_one_epoch", loop(**mistake))


def test_a_correct_loop_of_the_same_shape_passes():
    result = run("train_one_epoch", loop())
    assert result.passed, result.message


def test_zero_grad_between_backward_and_step_is_caught():
    def late(model, batches, optimizer, loss_fn, scheduler=None):
        model.train()
        for inputs, labels in batches:
            loss_fn(model(inputs), labels).backward()
            optimizer.zero_grad()
            optimizer.step()
        return 0.0, 0.0
    assert "parameters did not change" in failure("train_one_epoch", late)


# ---- evaluation -----------------------------------------------------------------------------

def evaluation(*, no_grad=True, eval_mode=True, per_batch=False, percent=False, count=False):
    def evaluate_accuracy(model, batches):
        if eval_mode:
            model.eval()
        correct, seen, batch_means = 0, 0, []
        with torch.set_grad_enabled(not no_grad):
            for inputs, labels in batches:
                hits = (model(inputs).argmax(1) == labels).sum().item()
                correct, seen = correct + hits, seen + len(labels)
                batch_means.append(hits / len(labels))
        if per_batch:
            return sum(batch_means) / len(batch_means)
        if count:
            return correct
        return correct / seen * (100 if percent else 1)
    return evaluate_accuracy


@pytest.mark.parametrize("mistake, words", [
    (dict(no_grad=False), "torch.no_grad()"),
    (dict(eval_mode=False), "call model.eval()"),
    (dict(per_batch=True), "averaged the per-batch accuracies"),
    (dict(percent=True), "a percentage"),
    (dict(count=True), "number of correct predictions"),
])
def test_evaluation_mistakes_are_named(mistake, words):
    assert words in failure("evaluate_accuracy", evaluation(**mistake))


def test_argmax_over_the_wrong_axis_is_caught():
    def wrong_axis(model, batches):
        model.eval()
        with torch.no_grad():
            hits = [(model(x).argmax(0)[: len(y)] == y).float().mean().item() for x, y in batches]
        return sum(hits) / len(hits)
    failure("evaluate_accuracy", wrong_axis)


def test_learner_exception_is_reported_not_raised():
    def broken(model, batches):
        return model(None)
    message = failure("evaluate_accuracy", broken)
    assert "your code raised" in message


def test_printed_verdicts(capsys):
    checks.check_lenet5(reference.LeNet5)
    assert capsys.readouterr().out.startswith("✅ lenet5")
    checks.check_evaluate_accuracy(lambda model, batches: 0.5)
    assert capsys.readouterr().out.startswith("❌ evaluate_accuracy")


def test_a_loop_without_a_scheduler_parameter_is_named():
    def four_arguments(model, batches, optimizer, loss_fn):
        return loop()(model, batches, optimizer, loss_fn)
    assert "scheduler=None" in failure("train_one_epoch", four_arguments)
