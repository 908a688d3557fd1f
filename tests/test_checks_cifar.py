"""The Chapter 8 checkers pass correct answers and catch plausible wrong ones with a hint."""

import math

import pytest
import torch
import torch.nn.functional as F
from spec_mistakes import three_entry_flat_size
from torch import nn

from cnn_course.checks import cifar as checks
from cnn_course.checks.core import has_passed
from cnn_course.reference import cifar as reference


def run(exercise, fn, hidden=False):
    return checks.run_check(exercise, fn, hidden=hidden)


def failure(exercise, fn):
    result = run(exercise, fn)
    assert not result.passed, f"{exercise}: a wrong answer passed"
    return result.message


def test_learner_exception_is_reported_without_a_traceback():
    def broken(x, padding=4, generator=None):
        return x[None][5]
    message = failure("random_crop_flip", broken)
    assert "your code raised IndexError" in message and "in broken, line" in message


# ---- Exercise 1 -----------------------------------------------------------------------------

def _size(input_shape, specs, pool=True, padding=True, rounding=math.floor, channels=True):
    """in_features by a rule with one of the usual mistakes switched on."""
    c, h, w = input_shape
    for spec in specs:
        if spec[0] == "conv":
            _, c, k, s, p = spec
        elif pool:
            _, k, s, p = spec
        else:
            continue
        p = p if padding else 0
        h, w = rounding((h + 2 * p - k) / s) + 1, rounding((w + 2 * p - k) / s) + 1
    return (c if channels else 1) * h * w


def test_in_features_mistakes_are_named():
    assert "MaxPool2d(2), which halves height and width" in failure(
        "linear_in_features", lambda shape, specs: _size(shape, specs, pool=False))
    assert "left out the padding" in failure(
        "linear_in_features", lambda shape, specs: _size(shape, specs, padding=False))
    assert "rounds down" in failure(
        "linear_in_features", lambda shape, specs: _size(shape, specs, rounding=math.ceil))
    assert "number of channels (64)" in failure(
        "linear_in_features", lambda shape, specs: _size(shape, specs, channels=False))
    assert "a float" in failure(
        "linear_in_features", lambda shape, specs: float(reference.linear_in_features(shape,
                                                                                      specs)))


def test_in_features_with_three_entry_pool_specs_is_named():
    message = failure("linear_in_features", three_entry_flat_size)
    assert "four entries" in message and "_, kernel, stride, padding = spec" in message


def test_in_features_constant_answer_fails_on_a_variant():
    message = failure("linear_in_features", lambda shape, specs: 1024)
    assert "LeNet-like" in message and "real layers give 400" in message


def test_in_features_cases_are_the_tutorial_layout():
    for _, input_shape, specs in checks._FEATURE_CONFIGS:
        assert input_shape[0] == 3 and specs[1::2] == [("pool", 2, 2, 0)] * (len(specs) // 2)
        assert all(spec[0] == "conv" and spec[3] == 1 for spec in specs[::2])
    assert reference.linear_in_features((3, 32, 32), checks._FEATURE_CONFIGS[0][2]) == 1024


# ---- Exercise 2 -----------------------------------------------------------------------------

def _tutorial_layers(relu_after_convs=True, relu_after_linear=True, final=None,
                     activation=nn.ReLU, relu_after_pool=False):
    layers = []
    for c_in, c_out in [(3, 32), (32, 32), (32, 64)]:
        block = [nn.Conv2d(c_in, c_out, 5, padding=2), nn.MaxPool2d(2)]
        if relu_after_convs:
            block.insert(2 if relu_after_pool else 1, activation())
        layers += block
    layers += [nn.Flatten(), nn.Linear(1024, 64)]
    if relu_after_linear:
        layers.append(activation())
    layers.append(nn.Linear(64, 10))
    if final is not None:
        layers.append(final)
    return nn.Sequential(*layers)


def test_relu_after_pooling_is_accepted():
    assert run("relu_cnn", lambda: _tutorial_layers(relu_after_pool=True)).passed


def test_relu_cnn_mistakes_are_named():
    assert "no nn.ReLU layer at all" in failure(
        "relu_cnn", lambda: _tutorial_layers(False, False))
    assert "between the two Linear layers" in failure(
        "relu_cnn", lambda: _tutorial_layers(relu_after_linear=False))
    assert "ends with ReLU" in failure("relu_cnn", lambda: _tutorial_layers(final=nn.ReLU()))
    assert "ends with Softmax" in failure(
        "relu_cnn", lambda: _tutorial_layers(final=nn.Softmax(dim=1)))
    assert "uses Tanh" in failure("relu_cnn", lambda: _tutorial_layers(activation=nn.Tanh))
    assert "returned a list" in failure("relu_cnn", lambda: list(_tutorial_layers()))


def test_relu_cnn_wrong_settings_are_named():
    def no_padding():
        model = _tutorial_layers()
        model[0] = nn.Conv2d(3, 32, 5)
        return model
    assert "expected Conv2d(3, 32, kernel_size=5, padding=2)" in failure("relu_cnn", no_padding)

    def wide_hidden():
        model = _tutorial_layers()
        model[10], model[12] = nn.Linear(1024, 128), nn.Linear(128, 10)
        return model
    assert "expected Linear(1024, 64)" in failure("relu_cnn", wide_hidden)


@pytest.mark.parametrize("in_features, slip", [
    (64 * 8 * 8, "64x8x8, the maps before the third pooling"),
    (32 * 4 * 4, "the second convolution's 32 channels"),
    (1600, ""),
])
def test_relu_cnn_wrong_linear_size_names_the_expected_shape(in_features, slip):
    def wrong_size():
        model = _tutorial_layers()
        model[10] = nn.Linear(in_features, 64)
        return model
    message = failure("relu_cnn", wrong_size)
    assert f"built for {in_features:,} features" in message
    assert "receives 64*4*4 = 1024 features per image" in message and slip in message


def test_relu_cnn_with_a_typed_wrong_view_names_the_expected_shape():
    class TypedView(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = _tutorial_layers()

        def forward(self, x):
            for index, layer in enumerate(self.body):
                x = x.view(-1, 1600) if index == 9 else layer(x)
            return x
    message = failure("relu_cnn", TypedView)
    assert "while flattening" in message and "1024 features per image" in message
    assert "your code raised" not in message


def test_relu_cnn_matrix_shape_error_is_explained():
    class Mismatch(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = _tutorial_layers()

        def forward(self, x):
            return self.body(x[:, :, :16, :16])  # [N, 64, 2, 2]: 256 features
    with pytest.raises(checks.CaseFailed, match="built for 1,024 inputs received 256 features"):
        checks._run_model(Mismatch(), torch.zeros(1, 3, 32, 32))


def test_relu_cnn_forward_with_functional_relu_is_explained():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = _tutorial_layers(False, False)

        def forward(self, x):
            return self.body(x).relu()
    assert "F.relu" in failure("relu_cnn", Functional)


def test_relu_cnn_that_never_applies_its_relus_is_caught():
    class Skips(nn.Sequential):
        def forward(self, x):
            for layer in self:
                if not isinstance(layer, nn.ReLU):
                    x = layer(x)
            return x
    message = failure("relu_cnn", lambda: Skips(*_tutorial_layers()))
    assert "ReLU number 1 is a layer of the model but the forward pass never calls it" in message


# ---- Exercise 3 -----------------------------------------------------------------------------

def _shifts(n, padding, generator, high=None):
    high = 2 * padding + 1 if high is None else high
    return torch.randint(0, high, (2, n), generator=generator)


def _crop_loop(x, padding, rows, cols, flips, mode="constant", flip_dim=-1):
    padded = F.pad(x, (padding,) * 4, mode=mode) if padding else x
    out = []
    for i in range(len(x)):
        crop = padded[i, :, rows[i]:rows[i] + x.shape[2], cols[i]:cols[i] + x.shape[3]]
        out.append(crop.flip(flip_dim) if flips[i] else crop)
    return torch.stack(out)


def loop_version(x, padding=4, generator=None, **mistakes):
    rows, cols = _shifts(len(x), padding, generator)
    flips = torch.rand(len(x), generator=generator) < 0.5
    return _crop_loop(x, padding, rows, cols, flips, **mistakes)


def test_a_per_image_loop_is_correct_but_not_vectorized():
    message = failure("random_crop_flip", loop_version)
    assert "loops over the images" in message


def _vectorized(x, padding, rows, cols, flips, flip_dim=-1):
    """Correct gather for given per-image shifts and flips (to build wrong variants)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    r = rows[:, None] + torch.arange(h)
    k = cols[:, None] + torch.arange(w)
    out = padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None],
                 r[:, None, :, None], k[:, None, None, :]]
    return torch.where(flips[:, None, None, None], out.flip(flip_dim), out)


@pytest.mark.parametrize("variant,expected", [
    ("vertical", "upside down"),
    ("no_flip", "no image of a 512-image batch was flipped"),
    ("flip_all", "every image was flipped"),
    ("same_shift", "every image got the same shift"),
    ("diagonal", "same amount down and right"),
    ("off_by_one", "never reaches 8 = 2*padding"),
    ("global_rng", "identically seeded generators"),
    ("padded", "that is the padded batch"),
    ("reflect", "'reflect' mode"),
    ("in_place", "changed its input batch in place"),
    ("rarely", "about half should be"),
])
def test_augmentation_mistakes_are_named(variant, expected):
    def wrong(x, padding=4, generator=None):
        n = len(x)
        rows, cols = _shifts(n, padding, generator)
        flips = torch.rand(n, generator=generator) < 0.5
        if variant == "vertical":
            return _vectorized(x, padding, rows, cols, flips, flip_dim=-2)
        if variant == "no_flip":
            return _vectorized(x, padding, rows, cols, torch.zeros(n, dtype=torch.bool))
        if variant == "flip_all":
            return _vectorized(x, padding, rows, cols, torch.ones(n, dtype=torch.bool))
        if variant == "rarely":
            return _vectorized(x, padding, rows, cols, torch.rand(n, generator=generator) < 0.2)
        if variant == "same_shift":
            return _vectorized(x, padding, rows[:1].expand(n), cols[:1].expand(n), flips)
        if variant == "diagonal":
            return _vectorized(x, padding, rows, rows, flips)
        if variant == "off_by_one":
            rows, cols = _shifts(n, padding, generator, high=max(2 * padding, 1))
            return _vectorized(x, padding, rows, cols, flips)
        if variant == "global_rng":
            rows, cols = torch.randint(0, 2 * padding + 1, (2, n))
            return _vectorized(x, padding, rows, cols, flips)
        if variant == "padded":
            return F.pad(x, (padding,) * 4)
        if variant == "reflect":
            if padding == 0:
                return x.clone()
            padded = F.pad(x, (padding,) * 4, mode="reflect")
            return torch.stack([padded[i, :, r:r + x.shape[2], k:k + x.shape[3]]
                                for i, (r, k) in enumerate(zip(rows, cols, strict=True))])
        if variant == "in_place":
            x.mul_(1.0).add_(0.5)
            return _vectorized(x, padding, rows, cols, flips)
        raise AssertionError(variant)
    assert expected in failure("random_crop_flip", wrong)


def test_slow_augmentation_is_caught(monkeypatch):
    clock = iter(range(0, 1000, 2))
    monkeypatch.setattr(checks.time, "perf_counter", lambda: float(next(clock)))
    cases = checks.random_crop_flip_cases(reference.random_crop_flip)
    fast = next(case for case in cases if "well under a second" in case.description)
    with pytest.raises(checks.CaseFailed, match="took 2.0 s"):
        fast.run()


def test_wrong_augmentation_values_are_caught():
    message = failure("random_crop_flip", lambda x, padding=4, generator=None: x * 1.5)
    assert "is not a crop of its zero-padded input" in message


# ---- Exercise 4 -----------------------------------------------------------------------------

def _counts(predicted, labels, k):
    counts = torch.zeros(k, k)
    for p, t in zip(predicted.tolist(), labels.tolist(), strict=True):
        counts[t, p] += 1
    return counts


def test_per_class_accuracy_mistakes_are_named():
    def precision(predicted, labels, k=10):
        counts = _counts(predicted, labels, k)
        return counts.diagonal() / counts.sum(0)
    assert "precision" in failure("per_class_accuracy", precision)

    def zero_for_absent(predicted, labels, k=10):
        return torch.nan_to_num(reference.per_class_accuracy(predicted, labels, k), nan=0.0)
    assert "return nan for it, not 0" in failure("per_class_accuracy", zero_for_absent)

    def integer_division(predicted, labels, k=10):
        counts = _counts(predicted, labels, k).long()
        return counts.diagonal() // counts.sum(1).clamp(min=1)
    assert "convert the counts to float" in failure("per_class_accuracy", integer_division)

    def no_minlength(predicted, labels, k=10):
        correct = torch.bincount(labels[predicted == labels]).float()
        total = torch.bincount(labels).float()
        n = min(len(correct), len(total))
        return correct[:n] / total[:n]
    assert "minlength" in failure("per_class_accuracy", no_minlength)

    def overall(predicted, labels, k=10):
        return torch.full((k,), (predicted == labels).float().mean().item())
    assert "overall accuracy" in failure("per_class_accuracy", overall)

    def over_all_samples(predicted, labels, k=10):
        correct = torch.bincount(labels[predicted == labels], minlength=k).float()
        return correct / len(labels)
    message = failure("per_class_accuracy", over_all_samples)
    assert "by the number of all samples (400)" in message
    assert "number of samples of that class" in message

    assert "should be a torch.Tensor" in failure(
        "per_class_accuracy", lambda p, t, k=10: reference.per_class_accuracy(p, t, k).tolist())


def test_per_class_accuracy_off_values_name_the_class():
    def off(predicted, labels, k=10):
        result = reference.per_class_accuracy(predicted, labels, k)
        result[1] += 0.01
        return result
    message = failure("per_class_accuracy", off)
    assert message.startswith('case "perfect predictions": class 1: got 1.01, expected 1')


def test_printed_verdict_and_pass_record(capsys):
    checks.check_per_class_accuracy(reference.per_class_accuracy)
    assert capsys.readouterr().out.startswith("✅ per_class_accuracy")
    assert has_passed("per_class_accuracy")
    checks.check_relu_cnn(lambda: nn.Linear(3, 3))
    assert capsys.readouterr().out.startswith("❌ relu_cnn")
