"""Chapter 7's recipe (one object for the notebook and the benchmark), and the LeNet-5
benchmark, which runs end to end in its quick mode and prints every report line."""

import importlib.util
import json
import subprocess
import sys

import nbformat
import pytest
import torch
import torch.nn.functional as F

from cnn_course.data import TensorBatches
from cnn_course.device import seed_everything
from cnn_course.lessons import lenet as lesson
from cnn_course.models import lenet5_for_mnist
from cnn_course.reference import lenet as reference
from cnn_course.tools.benchmark_results import load_results, results_path
from cnn_course.training import evaluate, train_epoch


def _benchmark(root):
    spec = importlib.util.spec_from_file_location("lenet5_mnist_benchmark",
                                                  root / "benchmarks" / "lenet5_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digits(n=700, seed=0):
    """Random stand-ins for MNIST tensors: [n, 1, 28, 28] floats and labels that depend on them."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 28, 28, generator=generator)
    y = (x[:, 0, 10:18, 10:18].mean((1, 2)) * 30).long().clamp(-4, 5) + 4
    return x[:500], y[:500], x[500:], y[500:]


def test_the_recipe_is_the_chapters():
    recipe = lesson.RECIPE
    assert (recipe.epochs, recipe.batch_size, recipe.optimizer, recipe.max_lr,
            recipe.weight_decay, recipe.label_smoothing) == (3, 256, "adam", 0.01, 0.0, 0.0)
    assert lesson.DESCRIPTION == ("Adam + OneCycleLR (max_lr 0.01), batch 256, 3 epochs, "
                                  "ReLU + max pooling")


def test_the_recipe_trains_like_the_explicit_adam_one_cycle_loop():
    x_train, y_train, x_test, y_test = _digits()
    model, history = lesson.train_lenet5(x_train, y_train, x_test, y_test, seed=1, epochs=2,
                                         log=None)

    seed_everything(1)
    expected = lenet5_for_mnist()
    batches = TensorBatches(x_train, y_train, batch_size=256, shuffle=True, seed=1)
    test_batches = TensorBatches(x_test, y_test, batch_size=1000)
    optimizer = torch.optim.Adam(expected.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01,
                                                    total_steps=2 * len(batches))
    accuracies = []
    for _ in range(2):
        train_epoch(expected, batches, optimizer, F.cross_entropy, scheduler)
        accuracies.append(evaluate(expected, test_batches)[1])

    got, want = model.state_dict(), expected.state_dict()
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)
    assert history.test_acc == accuracies and history.epochs == 2


def test_the_learners_epoch_function_and_model_class_train_the_same_weights():
    data = _digits(seed=2)
    course, _ = lesson.train_lenet5(*data, epochs=1, log=None)
    reports = []
    learner, history = lesson.train_lenet5(
        *data, epochs=1, model_fn=reference.LeNet5, epoch_fn=reference.train_one_epoch,
        on_epoch=lambda epoch, history: reports.append(epoch), log=None)
    assert reports == [1] and history.epochs == 1
    assert all(torch.equal(v, learner.state_dict()[k]) for k, v in course.state_dict().items())


def test_the_benchmark_and_the_notebook_use_the_chapters_recipe(root):
    bench = _benchmark(root)
    assert bench.RECIPE is lesson.RECIPE and bench.DESCRIPTION is lesson.DESCRIPTION
    notebook = nbformat.read(root / "solutions" / "07_lenet5.ipynb", as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "from cnn_course.lessons.lenet import DESCRIPTION, train_lenet5" in code
    assert code.count("train_lenet5(") == 1
    for typed_again in ("OneCycleLR", "torch.optim.Adam", "max_lr", "batch_size=256"):
        assert typed_again not in code, f"the notebook types the recipe again: {typed_again}"
    # the committed results were measured with this recipe
    if results_path("lenet5_mnist", "cpu").exists():
        results = load_results("lenet5_mnist", "cpu")
        assert results["time_to_target"]["recipe"] == lesson.DESCRIPTION


def test_benchmark_train_recipe_reports_each_epoch(root):
    bench = _benchmark(root)
    data = _digits(seed=3)
    reports = []
    accuracies = bench.train_recipe(data, seed=0, epochs=2,
                                    on_epoch=lambda *report: reports.append(report))
    assert [epoch for epoch, _, _ in reports] == [1, 2]
    assert [accuracy for _, _, accuracy in reports] == accuracies
    assert 0 < reports[0][1] <= reports[1][1]
    _, history = lesson.train_lenet5(*data, seed=0, epochs=2, log=None)
    assert history.test_acc == accuracies


@pytest.mark.slow  # the whole benchmark, on data subsets
def test_quick_benchmark_prints_every_report_line(root, tmp_path):
    output = tmp_path / "lenet.json"
    try:
        result = subprocess.run(
            [sys.executable, str(root / "benchmarks" / "lenet5_mnist.py"), "--quick",
             "--tutorial-epochs", "1", "--output", str(output)],
            cwd=root, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("benchmarks/lenet5_mnist.py --quick took more than 60 s")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for line_start in ("machine: ", "date: ", "data loading (mnist_tensors", "time to 99%: ",
                       "accuracy over seeds: mean ", "DataLoader (ToTensor", "tensor-resident (",
                       "pipeline ratio: ", "batch   1: ", "batch 256: ", "batch-size ratio: ",
                       "tutorial recipe: ", "load average at end: "):
        assert any(line.startswith(line_start) for line in out.splitlines()), (
            f"no line starting with {line_start!r} in:\n{out}")
    results = json.loads(output.read_text())
    assert results["quick"] is True
    for part in ("time_to_target", "seeds", "pipelines", "batch_sizes", "tutorial"):
        assert results[part]["measured"]["date"] and results[part]["measured"]["machine"], part
    assert len(results["seeds"]["final_test_acc"]) == 1
    assert set(results["batch_sizes"]["seconds"]) == {"1", "256"}
