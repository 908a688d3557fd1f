"""Chapter 8's models, augmentation, evaluation helpers, results file and benchmark."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnn_course import training
from cnn_course.data import DataUnavailable, TensorBatches, load_cifar10
from cnn_course.lessons import cifar
from cnn_course.tools.benchmark_results import load_results, results_path

ROOT = Path(__file__).resolve().parent.parent


def _linear_gap(model: nn.Module) -> float:
    """How far ``model`` is from additive: |f(a+b) - f(a) - f(b) + f(0)|, largest entry."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(2, 3, 32, 32, generator=generator) for _ in range(2))
    with torch.no_grad():
        zero = model(torch.zeros_like(a))
        return (model(a + b) - model(a) - model(b) + zero).abs().max().item()


def test_tutorial_network_as_published():
    model = cifar.tutorial_cnn()
    assert cifar.count_params(model) == 145_578
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "MaxPool2d"] * 3 + ["Flatten", "Linear", "Linear"]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert model[0](torch.zeros(1, 3, 32, 32)).shape[-2:] == (32, 32)  # padding 2 keeps 32


def test_relu_version_has_a_relu_after_each_conv_and_the_hidden_linear():
    model = cifar.tutorial_cnn(relu=True)
    assert cifar.count_params(model) == 145_578
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d"] * 3 + ["Flatten", "Linear", "ReLU", "Linear"]


def test_without_activations_only_max_pooling_is_nonlinear():
    torch.manual_seed(0)
    assert _linear_gap(cifar.tutorial_cnn(pooling=nn.AvgPool2d)) < 1e-4
    assert _linear_gap(cifar.tutorial_cnn()) > 1e-3
    assert _linear_gap(cifar.tutorial_cnn(relu=True)) > 1e-3


def test_improved_model_shape_and_batch_norm():
    model = cifar.improved_cnn()
    assert model(torch.zeros(4, 3, 32, 32)).shape == (4, 10)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 3
    assert cifar.count_params(model) > cifar.count_params(cifar.tutorial_cnn())


def test_random_crop_flip_is_repeatable_and_keeps_shape_and_device():
    x = torch.randn(6, 3, 32, 32)
    first = cifar.random_crop_flip(x, 4, torch.Generator().manual_seed(1))
    again = cifar.random_crop_flip(x, 4, torch.Generator().manual_seed(1))
    assert first.shape == x.shape and torch.equal(first, again)
    only_flips = cifar.random_crop_flip(x, 0, torch.Generator().manual_seed(2))
    for image, original in zip(only_flips, x, strict=True):
        assert torch.equal(image, original) or torch.equal(image, original.flip(-1))


def test_confusion_matrix_and_per_class_accuracy():
    predicted = torch.tensor([0, 1, 2, 2, 0])
    labels = torch.tensor([0, 1, 1, 3, 0])
    counts = cifar.confusion_matrix(predicted, labels, 5)
    assert counts.tolist() == [[2, 0, 0, 0, 0], [0, 1, 1, 0, 0], [0] * 5, [0, 0, 1, 0, 0],
                               [0] * 5]
    accuracy = cifar.per_class_accuracy(predicted, labels, 5)
    assert accuracy[:2].tolist() == [1.0, 0.5] and accuracy[3].item() == 0.0
    assert torch.isnan(accuracy[2]) and torch.isnan(accuracy[4])  # absent from the labels


def test_misclassified_and_subsets_are_repeatable():
    predicted, labels = torch.tensor([0, 1, 1, 0, 2]), torch.tensor([0, 0, 1, 1, 1])
    assert cifar.misclassified(predicted, labels, count=10).tolist() == [1, 3, 4]
    labels = torch.arange(1000) // 100  # sorted by class, like the mirror
    subset = cifar.subset_indices(labels, 200, seed=3)
    assert torch.equal(subset, cifar.subset_indices(labels, 200, seed=3))
    assert len(subset.unique()) == 200 and labels[subset].bincount().min() > 5
    assert torch.equal(cifar.subset_indices(labels, None), torch.arange(1000))


def _random_data(n: int = 256) -> cifar.CifarTensors:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (n,), generator=generator)
    x = torch.randn(n, 3, 32, 32, generator=generator) + labels.view(-1, 1, 1, 1) * 0.1
    return cifar.CifarTensors(x, labels, x[:64], labels[:64], (0.5,) * 3, (0.25,) * 3)


@pytest.mark.parametrize("recipe", [
    cifar.Recipe(epochs=2),
    cifar.Recipe(epochs=1, optimizer="sgd", max_lr=0.05, weight_decay=5e-4,
                 label_smoothing=0.1, augment=True, channels_last=True),
])
def test_train_runs_the_recipe(recipe):
    lines = []
    history = cifar.train(cifar.improved_cnn((8, 8, 8), 16), _random_data(), recipe,
                          log=lines.append)
    assert history.epochs == recipe.epochs == len(lines) and len(history.test_acc) == recipe.epochs
    assert all(0 <= acc <= 1 for acc in history.test_acc)


def test_train_uses_the_given_augmentation():
    calls = []

    def augment(x, padding=4, generator=None):
        calls.append(padding)
        return x
    cifar.train(cifar.tutorial_cnn(), _random_data(), cifar.Recipe(epochs=1, augment=True),
                log=None, augment_fn=augment)
    assert calls == [4, 4]  # 256 images in batches of 128


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="unknown optimizer"):
        cifar.make_optimizer(nn.Linear(2, 2), cifar.Recipe(epochs=1, optimizer="lbfgs"))


def test_recipe_and_make_optimizer_are_the_training_modules():
    assert cifar.Recipe is training.Recipe and cifar.make_optimizer is training.make_optimizer


@pytest.mark.parametrize("recipe", [
    cifar.Recipe(epochs=2),
    cifar.Recipe(epochs=2, optimizer="sgd", max_lr=0.05, weight_decay=5e-4,
                 label_smoothing=0.1, augment=True, channels_last=True),
])
def test_train_keeps_its_numerics(recipe):
    """``train`` gives the same weights and history as the steps it stands for, in this order:
    seed, memory layout, batches, test batches, optimizer, one-cycle schedule, ``fit``."""
    data = _random_data()

    def model():
        torch.manual_seed(7)
        return cifar.improved_cnn((8, 8, 8), 16)

    trained = model()
    history = cifar.train(trained, data, recipe, seed=3, log=None)

    expected = model()
    torch.manual_seed(3)
    if recipe.channels_last:
        expected.to(memory_format=torch.channels_last)
    batches = cifar.train_batches(data, recipe, 3)
    test = TensorBatches(data.x_test, data.y_test, batch_size=1000)
    optimizer = training.make_optimizer(expected, recipe)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.max_lr, epochs=recipe.epochs, steps_per_epoch=len(batches))

    def loss_fn(logits, labels, reduction="mean"):
        smoothing = recipe.label_smoothing if expected.training else 0.0
        return F.cross_entropy(logits, labels, reduction=reduction, label_smoothing=smoothing)

    want = training.fit(expected, batches, test, optimizer, recipe.epochs, scheduler=scheduler,
                        loss_fn=loss_fn, progress=False, log=None)
    got_state, want_state = trained.state_dict(), expected.state_dict()
    assert all(torch.equal(got_state[k], want_state[k]) for k in want_state)
    assert (history.train_loss, history.train_acc, history.test_loss, history.test_acc) == (
        want.train_loss, want.train_acc, want.test_loss, want.test_acc)


# ---- the committed results file and the benchmark -------------------------------------------

def test_committed_results_file_is_small_dated_and_meets_the_targets():
    path = results_path("cifar10", "cpu")
    assert path.exists(), "run benchmarks/cifar10.py to create the results file"
    assert path.stat().st_size < 10_000
    results = load_results("cifar10", "cpu")
    assert not results["quick"]
    for part in ("accuracy", "tutorial", "pipeline", "speed"):
        measured = results[part]["measured"]
        assert measured["machine"].startswith("CPU") and measured["date"].startswith("20")
    runs = results["accuracy"]["runs"]
    assert runs["published"]["test_acc"][-1] >= 0.68
    assert runs["relu"]["test_acc"][-1] >= 0.72 and runs["relu"]["wall_seconds"] <= 300
    assert runs["improved"]["test_acc"][-1] >= 0.82
    assert runs["improved"]["wall_seconds"] <= 600
    assert sum(map(sum, runs["improved"]["confusion"])) == results["accuracy"]["test_images"]
    assert results["pipeline"]["pipelines"]["tensor_on_device"]["data_share"] <= 0.05
    history = cifar.history_from_results(runs["relu"])
    assert history.epochs == runs["relu"]["epochs"]
    tutorial = results["tutorial"]
    assert set(tutorial["runs"]) == {"published", "relu"}
    assert all(len(run["test_acc"]) == tutorial["epochs"] == 10
               for run in tutorial["runs"].values())


def test_committed_results_support_what_the_page_says():
    """The Chapter 8 page describes the committed benchmark run in words; a new run that
    changes these facts must come with new words."""
    results = load_results("cifar10", "cpu")
    pipelines = results["pipeline"]["pipelines"]
    assert pipelines["dataloader_2_workers"]["epoch_seconds"] >= \
        pipelines["dataloader_0_workers"]["epoch_seconds"], "workers helped: reword the page"
    rates = {row["batch_size"]: row["images_per_second"]
             for row in results["speed"]["batch_sizes"]}
    assert max(rates, key=rates.get) == 128 and rates[256] < rates[128] and rates[512] < rates[128]
    speed = {(row["model"], row["setting"]): row["images_per_second"]
             for row in results["speed"]["variants"]}
    for model in ("tutorial_relu", "improved"):
        baseline = speed[model, "baseline (float32, contiguous)"]
        assert speed[model, "channels_last"] > baseline
        assert speed[model, "bfloat16 autocast"] > baseline
        assert 1.8 <= speed[model, "channels_last + bfloat16 autocast"] / baseline <= 2.6
        assert speed[model, "torch.compile"] < speed[model, "channels_last"]
    assert speed["tutorial_relu", "torch.compile"] < speed["tutorial_relu",
                                                           "baseline (float32, contiguous)"]
    tutorial = results["tutorial"]["runs"]
    accuracy = results["accuracy"]["runs"]
    assert tutorial["relu"]["test_acc"][-1] <= tutorial["published"]["test_acc"][-1]
    assert max(tutorial["published"]["test_acc"]) < accuracy["published"]["test_acc"][-1]
    assert accuracy["linear"]["test_acc"][-1] < accuracy["published"]["test_acc"][-1] \
        < accuracy["relu"]["test_acc"][-1] < accuracy["improved"]["test_acc"][-1]


def test_the_three_versions_are_compared_at_the_same_epochs():
    """Chapter 8's page compares the published network, its average-pooling version and the
    ReLU version at the same budget, and glues their figures from the results file instead of
    typing them."""
    runs = load_results("cifar10", "cpu")["accuracy"]["runs"]
    epochs = {name: runs[name]["epochs"] for name in ("published", "linear", "relu")}
    assert len(set(epochs.values())) == 1, f"not the same budget: {epochs}"
    page = (ROOT / "book" / "08_cifar10.md").read_text(encoding="utf-8")
    for key in ("cifar_epochs", "cifar_params", "cifar_linear_acc", "cifar_published_acc",
                "cifar_relu_acc", "cifar_tutorial_epochs"):
        assert f"{{glue:text}}`{key}`" in page, key
    for run in runs.values():
        assert f"{run['test_acc'][-1]:.1%}" not in page, "an accuracy is typed into the page"


def test_the_notebooks_stored_training_logs_match_its_full_run_settings():
    """The solved notebook's stored outputs come from the epochs its code names: a change of
    EPOCHS without re-executing the notebook fails here. Its prose says whether its own two
    runs have equal budgets."""
    notebook = nbformat.read(ROOT / "solutions" / "08_cifar10.ipynb", as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    full_run = re.search(r"else:\n\s+TRAIN_SIZE, TEST_SIZE, EPOCHS = None, None, (\{[^}]*\})", code)
    assert full_run, "the notebook's full-run settings moved: update this test"
    full_epochs = ast.literal_eval(full_run.group(1))
    for name, variable in [("published", "history_published"), ("relu", "history_relu"),
                           ("improved", "history_improved")]:
        cell = next(c for c in notebook.cells if c.cell_type == "code"
                    and f"{variable} = train(" in c.source)
        text = "".join(o.get("text", "") for o in cell.outputs)
        logged = {int(n) for n in re.findall(r"epoch \d+/(\d+):", text)}
        assert logged == {full_epochs[name]}, (
            f"{name}: the stored log shows {sorted(logged)} epochs, the code names "
            f"{full_epochs[name]}: re-execute the notebook")
    prose = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    equal = full_epochs["published"] == full_epochs["relu"]
    assert equal == ("same number of epochs" in prose), \
        "the notebook's prose must say whether its two runs have the same number of epochs"


def _cifar_available() -> bool:
    try:
        load_cifar10(train=False)
    except DataUnavailable:
        return False
    return True


@pytest.mark.slow  # the whole benchmark, on data subsets
def test_benchmark_quick_run_writes_every_part(tmp_path):
    if not _cifar_available():
        pytest.skip("CIFAR-10 is not available (set CNN_COURSE_DATA_MIRROR; CI does)")
    output = tmp_path / "quick.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cifar10.py"), "--quick", "--device", "cpu",
         "--output", str(output)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = json.loads(output.read_text())
    assert results["quick"] and set(results["accuracy"]["runs"]) == set(
        ["published", "linear", "relu", "improved"])
    assert set(results["tutorial"]["runs"]) == {"published", "relu"}
    assert {"dataloader_0_workers", "tensor_on_device"} <= set(results["pipeline"]["pipelines"])
    assert [row["batch_size"] for row in results["speed"]["batch_sizes"]] == [32, 128]
    assert "results written to" in completed.stdout
