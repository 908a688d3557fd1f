"""LeNet-5 on MNIST: time to 99% test accuracy, accuracy over seeds, and what the input
pipeline and the batch size cost.

    python benchmarks/lenet5_mnist.py            # the full benchmark (a few minutes on 2 cores)
    python benchmarks/lenet5_mnist.py --quick    # a smoke run on data subsets (seconds)

Prints the machine and the date first; every figure after that is measured in this run. A full
run also writes them to ``benchmarks/results/lenet5_mnist_<device>.json`` (Chapter 7's page
reads that file) and exits with status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from cnn_course.data import TensorBatches, mnist_dataloader, mnist_tensors
from cnn_course.device import describe_device, get_device, seed_everything
from cnn_course.lessons.lenet import DESCRIPTION, RECIPE, train_lenet5
from cnn_course.models import lenet5_for_mnist
from cnn_course.tools.benchmark_results import load_average, results_path, stamp, write_results
from cnn_course.training import History, evaluate, train_epoch

TARGET = 0.99
TIME_LIMITS = {"training_seconds": 20.0, "total_seconds": 30.0}
PIPELINE_RATIO_TARGET = 2.0
PAPER_ERROR = 0.0095  # LeNet-5 without distortions, LeCun et al. 1998


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Subset:
    """The first ``n`` batches of a DataLoader (for --quick runs)."""

    def __init__(self, loader, n: int) -> None:
        self.loader, self.n = loader, n

    def __len__(self) -> int:
        return min(self.n, len(self.loader))

    def __iter__(self):
        for index, batch in enumerate(self.loader):
            if index >= self.n:
                return
            yield batch


def train_recipe(data, seed: int, epochs: int,
                 on_epoch: Callable[[int, float, float], None] | None = None) -> list[float]:
    """Train LeNet-5 with the chapter's recipe (:data:`cnn_course.lessons.lenet.RECIPE`, for
    ``epochs`` epochs); return the test accuracy after each epoch.

    ``on_epoch(epoch, cumulative training seconds, test accuracy)`` is called after each
    epoch; evaluation time is not counted as training time.
    """
    def report(epoch: int, history: History) -> None:
        if on_epoch is not None:
            on_epoch(epoch, history.train_seconds, history.test_acc[-1])

    _, history = train_lenet5(*data, seed=seed, epochs=epochs, on_epoch=report, log=None)
    return history.test_acc


def time_to_target(data, device: torch.device, load_seconds: float, epochs: int) -> dict:
    print(f"\n== 1. time to {TARGET:.0%} test accuracy ({DESCRIPTION}, seed 0)")
    print(f"data loading (mnist_tensors, both splits, onto {device.type}): {load_seconds:.1f} s")
    start = time.perf_counter()
    reached: list[tuple[int, float, float]] = []

    def on_epoch(epoch: int, training: float, accuracy: float) -> None:
        print(f"epoch {epoch}: test accuracy {accuracy:.2%}, training time so far {training:.1f} s")
        if accuracy >= TARGET and not reached:
            reached.append((epoch, training, time.perf_counter() - start + load_seconds))

    measured = stamp(device)
    accuracies = train_recipe(data, seed=0, epochs=epochs, on_epoch=on_epoch)
    part = {"measured": measured, "recipe": DESCRIPTION, "load_seconds": round(load_seconds, 2),
            "test_acc": [round(a, 4) for a in accuracies], "reached": None}
    if reached:
        epoch, training, total = reached[0]
        print(f"time to {TARGET:.0%}: reached after epoch {epoch}: {training:.1f} s of training, "
              f"{total:.1f} s including data loading and the per-epoch evaluations")
        part["reached"] = {"epoch": epoch, "training_seconds": round(training, 2),
                           "total_seconds": round(total, 2)}
    else:
        print(f"time to {TARGET:.0%}: not reached in {epochs} epochs "
              f"(best {max(accuracies):.2%})")
    return part


def accuracy_over_seeds(data, device: torch.device, seeds: int, epochs: int,
                        first: list[float]) -> dict:
    print(f"\n== 2. final test accuracy over {seeds} seed(s) ({DESCRIPTION})")
    measured = stamp(device)
    finals = [first[-1]]
    print(f"seed 0: {first[-1]:.2%}")
    for seed in range(1, seeds):
        finals.append(train_recipe(data, seed=seed, epochs=epochs)[-1])
        print(f"seed {seed}: {finals[-1]:.2%}")
    spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
    print(f"accuracy over seeds: mean {statistics.mean(finals):.2%}, std {spread:.2%}, "
          f"min {min(finals):.2%}, max {max(finals):.2%}; test error "
          f"{1 - statistics.mean(finals):.2%} (LeNet-5 in 1998, no distortions: "
          f"{PAPER_ERROR:.2%})")
    return {"measured": measured, "recipe": DESCRIPTION,
            "final_test_acc": [round(a, 4) for a in finals],
            "mean": round(statistics.mean(finals), 4), "std": round(spread, 4)}


def _epoch_seconds(batches, device: torch.device, max_batches: int | None) -> tuple[float, int]:
    """Seconds for one training epoch over ``batches`` (LeNet-5, Adam), and batches seen."""
    seed_everything(0)
    model = lenet5_for_mnist().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    source = batches if max_batches is None else Subset(batches, max_batches)
    _sync(device)
    start = time.perf_counter()
    train_epoch(model, source, optimizer, F.cross_entropy)
    _sync(device)
    return time.perf_counter() - start, len(source)


def pipelines(data, device: torch.device, max_batches: int | None) -> dict:
    print("\n== 3. seconds per training epoch: per-image DataLoader vs tensor-resident batches "
          "(batch 256)")
    measured = stamp(device)
    x_train, y_train = data[0], data[1]
    loader = mnist_dataloader(train=True, batch_size=256, shuffle=True)
    full = len(loader)
    seconds_loader, seen = _epoch_seconds(loader, device, max_batches)
    per_epoch_loader = seconds_loader * full / seen
    tensors = TensorBatches(x_train, y_train, batch_size=256, shuffle=True, seed=0)
    seconds_tensors, seen_tensors = _epoch_seconds(tensors, device, max_batches)
    per_epoch_tensors = seconds_tensors * full / seen_tensors
    note = "" if max_batches is None else f" (timed on {seen} batches, scaled to {full})"
    print(f"DataLoader (ToTensor + Normalize per image, 0 workers): {per_epoch_loader:.1f} s/epoch"
          f"{note}")
    print(f"tensor-resident (mnist_tensors + TensorBatches):       {per_epoch_tensors:.1f} s/epoch")
    print(f"pipeline ratio: {per_epoch_loader / per_epoch_tensors:.1f}x faster with tensors")
    return {"measured": measured, "batch_size": 256,
            "dataloader_epoch_seconds": round(per_epoch_loader, 2),
            "tensors_epoch_seconds": round(per_epoch_tensors, 2),
            "ratio": round(per_epoch_loader / per_epoch_tensors, 2)}


def batch_sizes(data, device: torch.device, samples: int) -> dict:
    print(f"\n== 4. batch size 1 vs 256: training steps over the same {samples:,} samples")
    measured = stamp(device)
    x_train, y_train = data[0][:samples], data[1][:samples]
    results = {}
    for batch_size in (1, 256):
        batches = TensorBatches(x_train, y_train, batch_size=batch_size)
        seconds, steps = _epoch_seconds(batches, device, None)
        results[batch_size] = seconds
        print(f"batch {batch_size:>3}: {steps:>5} steps, {seconds:6.2f} s, "
              f"{samples / seconds:9,.0f} samples/s")
    print(f"batch-size ratio: batch 1 is {results[1] / results[256]:.0f}x slower per sample")
    return {"measured": measured, "samples": samples,
            "seconds": {str(size): round(seconds, 3) for size, seconds in results.items()},
            "samples_per_second": {str(size): round(samples / seconds)
                                   for size, seconds in results.items()}}


def tutorial(device: torch.device, epochs: int, max_batches: int | None) -> dict:
    print(f"\n== 5. a popular tutorial's recipe: SGD lr 0.001 (no momentum), batch 64, "
          f"DataLoader, {epochs} epoch(s)")
    measured = stamp(device)
    accuracies, seconds = [], []
    seed_everything(0)
    model = lenet5_for_mnist().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    loader = mnist_dataloader(train=True, batch_size=64, shuffle=True)
    source = loader if max_batches is None else Subset(loader, max_batches)
    test = mnist_dataloader(train=False, batch_size=1000)
    training = 0.0
    for epoch in range(1, epochs + 1):
        _sync(device)
        start = time.perf_counter()
        train_epoch(model, source, optimizer, F.cross_entropy)
        _sync(device)
        training += time.perf_counter() - start
        accuracy = evaluate(model, test)[1]
        accuracies.append(round(accuracy, 4))
        seconds.append(round(training, 2))
        print(f"epoch {epoch}: test accuracy {accuracy:.2%}, training time so far {training:.1f} s")
    print(f"tutorial recipe: {accuracy:.2%} after {epochs} epoch(s), {training:.1f} s of training")
    return {"measured": measured, "recipe": "SGD lr 0.001, no momentum, batch 64, DataLoader",
            "test_acc": accuracies, "training_seconds": seconds}


def check_targets(results: dict) -> bool:
    """Print each target with PASS or FAIL; True if all of them pass."""
    checks = []
    reached = results["time_to_target"]["reached"]
    for key, limit in TIME_LIMITS.items():
        value = reached[key] if reached else float("inf")
        checks.append((f"time to {TARGET:.0%}, {key.replace('_', ' ')}: {value:.1f} s <= "
                       f"{limit:.0f} s", value <= limit))
    mean = results["seeds"]["mean"]
    checks.append((f"mean test accuracy over seeds {mean:.2%} >= {TARGET:.0%}", mean >= TARGET))
    ratio = results["pipelines"]["ratio"]
    checks.append((f"pipeline ratio {ratio:.1f}x >= {PIPELINE_RATIO_TARGET:.0f}x",
                   ratio >= PIPELINE_RATIO_TARGET))
    for text, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'} {text}")
    return all(passed for _, passed in checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: data subsets, 1 epoch, 1 seed, few timed batches")
    parser.add_argument("--seeds", type=int, default=None, help="seeds for the accuracy spread "
                        "(default 3, quick 1)")
    parser.add_argument("--tutorial-epochs", type=int, default=None,
                        help="epochs of the tutorial recipe; 0 skips it (default 10, quick 0)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: the best one)")
    parser.add_argument("--output", type=Path, default=None,
                        help="results file (default: benchmarks/results/lenet5_mnist_<device>"
                             ".json; quick runs write only if this is given)")
    args = parser.parse_args(argv)
    quick = args.quick
    epochs = 1 if quick else RECIPE.epochs
    seeds = args.seeds if args.seeds is not None else (1 if quick else 3)
    tutorial_epochs = args.tutorial_epochs if args.tutorial_epochs is not None else \
        (0 if quick else 10)
    device = get_device(args.device)

    print("LeNet-5 on MNIST benchmark" + (" (--quick: subsets, figures not meaningful)"
                                          if quick else ""))
    print(f"machine: {describe_device(device)}")
    print(f"date: {datetime.date.today().isoformat()}, torch {torch.__version__}, "
          f"load average at start: {load_average()}")

    start = time.perf_counter()
    x_train, y_train = mnist_tensors(train=True, device=device)
    x_test, y_test = mnist_tensors(train=False, device=device)
    _sync(device)
    load_seconds = time.perf_counter() - start
    if quick:
        x_train, y_train, x_test, y_test = x_train[:2048], y_train[:2048], x_test[:1000], \
            y_test[:1000]
    data = (x_train, y_train, x_test, y_test)

    results: dict = {"benchmark": "benchmarks/lenet5_mnist.py", "device": device.type,
                     "quick": quick, "paper_error": PAPER_ERROR}
    results["time_to_target"] = time_to_target(data, device, load_seconds, epochs)
    results["seeds"] = accuracy_over_seeds(data, device, seeds, epochs,
                                           results["time_to_target"]["test_acc"])
    results["pipelines"] = pipelines(data, device, max_batches=3 if quick else None)
    results["batch_sizes"] = batch_sizes(data, device, samples=64 if quick else 2000)
    if tutorial_epochs > 0:
        results["tutorial"] = tutorial(device, tutorial_epochs,
                                       max_batches=10 if quick else None)
    print(f"\nload average at end: {load_average()}; whole benchmark "
          f"{time.perf_counter() - start:.0f} s")
    output = args.output or (None if quick else results_path("lenet5_mnist", device.type))
    if output is not None:
        write_results(output, results)
        print(f"results written to {output}")
    if quick:
        return 0
    return 0 if check_targets(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
