"""Chapter 8 benchmark: CIFAR-10 accuracy targets, the cost of the data pipeline, and speed.

    python benchmarks/cifar10.py                     # all parts; writes the results file
    python benchmarks/cifar10.py --parts pipeline    # some parts (merged into the file)
    python benchmarks/cifar10.py --quick             # smoke run on a subset, writes nothing
                                                     # unless --output is given

Parts:

- ``accuracy``: the tutorial's network as published (no activation), the same with average
  pooling (a purely linear classifier), with ReLU, and the chapter's improved model, each trained
  with the chapter's recipe; test accuracy per epoch, training time, and for the improved model
  its confusion matrix and some misclassified test images.
- ``pipeline``: one training epoch fed by a per-image ``DataLoader`` (PIL images and
  torchvision transforms) versus one fed from tensors already on the device (batched
  augmentation): the share of the epoch spent waiting for data, and images per second.
- ``tutorial``: the tutorial's own recipe for reference (inputs only scaled to [0, 1], plain
  SGD at learning rate 0.01, batches of 64, no schedule, 10 epochs), without and with ReLU.
- ``speed``: training images per second for several batch sizes, memory layouts
  (``channels_last``), mixed precision (bfloat16 autocast) and ``torch.compile``.

Results go to ``benchmarks/results/cifar10_<device>.json`` (``cpu`` or ``cuda``), with the
machine, the date and the load average; the book's Chapter 8 page reads that file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cnn_course.data import TensorBatches, to_float_images
from cnn_course.device import describe_device, get_device
from cnn_course.lessons.cifar import (
    DATASET_NAME,
    Recipe,
    cifar10_tensors,
    cifar10_uint8,
    confusion_matrix,
    count_params,
    improved_cnn,
    make_optimizer,
    misclassified,
    per_class_accuracy,
    random_crop_flip,
    subset_indices,
    train,
    tutorial_cnn,
)
from cnn_course.tools.benchmark_results import load_average, results_path, stamp, write_results
from cnn_course.training import fit, predict

PARTS = ("accuracy", "tutorial", "pipeline", "speed")

# The chapter's recipes: (description, model builder, recipe) for each accuracy run.
RECIPES: dict[str, tuple[str, Callable[[], nn.Module], Recipe]] = {
    "published": ("tutorial network as published (no activation)",
                  lambda: tutorial_cnn(relu=False), Recipe(epochs=8)),
    "linear": ("as published, average pooling: a linear classifier",
               lambda: tutorial_cnn(relu=False, pooling=nn.AvgPool2d), Recipe(epochs=8)),
    "relu": ("tutorial network with ReLU", lambda: tutorial_cnn(relu=True), Recipe(epochs=8)),
    "improved": ("improved: batch norm, wider, augmentation", improved_cnn,
                 Recipe(epochs=10, optimizer="sgd", max_lr=0.1, weight_decay=5e-4,
                        label_smoothing=0.1, augment=True, channels_last=True)),
}
TARGETS = {"published": 0.68, "relu": 0.72, "improved": 0.82}
TIME_LIMITS = {"relu": 300.0, "improved": 600.0}  # seconds of wall time, training + evaluation
DATA_SHARE_TARGET = 0.05


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rounded(values: Iterable[float], digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in values]


# ---- accuracy -------------------------------------------------------------------------------

def run_accuracy(device: torch.device, quick: bool, names: list[str], log,
                 previous: dict | None = None, save: Callable[[dict], None] | None = None
                 ) -> dict:
    """Train each named run; runs already in ``previous`` but not named are kept. ``save``
    gets the part after every run, so an interrupted benchmark loses one run at most."""
    data = cifar10_tensors(device, train_size=1000 if quick else None,
                           test_size=500 if quick else None)
    runs = dict(previous.get("runs", {})) if previous else {}
    part = {"measured": stamp(device), "dataset": DATASET_NAME,
            "train_images": len(data.y_train), "test_images": len(data.y_test), "runs": runs}
    for name in names:
        description, build, recipe = RECIPES[name]
        if quick:
            recipe = Recipe(**{**recipe.__dict__, "epochs": 1})
        torch.manual_seed(0)
        model = build().to(device)
        started = stamp(device)
        log(f"-- {name}: {description}; {recipe}")
        synchronize(device)
        start = time.perf_counter()
        history = train(model, data, recipe, seed=0, log=lambda line: log("   " + line))
        synchronize(device)
        wall = time.perf_counter() - start
        run = {"description": description, "params": count_params(model),
               "recipe": recipe.__dict__, "epochs": recipe.epochs,
               "train_seconds": round(history.train_seconds, 1), "wall_seconds": round(wall, 1),
               "train_loss": rounded(history.train_loss), "train_acc": rounded(history.train_acc),
               "test_loss": rounded(history.test_loss), "test_acc": rounded(history.test_acc)}
        if name == "improved":
            predicted, true = predict(model, TensorBatches(data.x_test, data.y_test, 1000))
            wrong = misclassified(predicted, true, count=24)
            test_index = subset_indices(cifar10_uint8(False)[1], 500 if quick else None, 1)
            run["confusion"] = confusion_matrix(predicted, true).tolist()
            run["per_class_acc"] = rounded(per_class_accuracy(predicted, true))
            # [index in the test split, true class, predicted class]
            run["misclassified"] = [[int(test_index[i]), int(true[i]), int(predicted[i])]
                                    for i in wrong]
        run["measured"] = started
        runs[name] = run
        log(f"   {name}: test accuracy {history.test_acc[-1]:.2%}, training "
            f"{history.train_seconds:.0f} s, wall {wall:.0f} s")
        if save is not None:
            save(part)
    return part


# ---- the tutorial's recipe ------------------------------------------------------------------

TUTORIAL_EPOCHS = 10


def run_tutorial(device: torch.device, quick: bool, log) -> dict:
    """The tutorial's recipe: ``ToTensor`` only (pixels scaled to [0, 1], no normalization),
    plain SGD at learning rate 0.01, batches of 64, constant rate, 10 epochs. The mirror lists
    its images class by class, so batches are drawn in a new random order every epoch."""
    started = stamp(device)
    train_images, train_labels = cifar10_uint8(True)
    test_images, test_labels = cifar10_uint8(False)
    train_index = subset_indices(train_labels, 1000 if quick else None)
    test_index = subset_indices(test_labels, 500 if quick else None, 1)
    unscaled = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # mean 0, std 1: only the division by 255
    train_batches = TensorBatches(to_float_images(train_images[train_index], *unscaled, device),
                                  train_labels[train_index].to(device), 64, shuffle=True, seed=0)
    test_batches = TensorBatches(to_float_images(test_images[test_index], *unscaled, device),
                                 test_labels[test_index].to(device), 1000)
    epochs = 1 if quick else TUTORIAL_EPOCHS
    runs = {}
    for name, relu in (("published", False), ("relu", True)):
        torch.manual_seed(0)
        model = tutorial_cnn(relu=relu).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        log(f"-- {name}: the tutorial's recipe, {epochs} epochs")
        history = fit(model, train_batches, test_batches, optimizer, epochs, progress=False,
                      log=lambda line: log("   " + line))
        runs[name] = {"description": "with ReLU" if relu else "as published (no activation)",
                      "train_seconds": round(history.train_seconds, 1),
                      "test_acc": rounded(history.test_acc),
                      "train_acc": rounded(history.train_acc)}
    return {"measured": started, "dataset": DATASET_NAME,
            "recipe": "pixels / 255 only, SGD lr 0.01 (no momentum), batch 64, constant rate",
            "epochs": epochs, "runs": runs}


# ---- pipeline -------------------------------------------------------------------------------

def timed_epoch(model: nn.Module, batches: Iterable, device: torch.device,
                max_images: int | None = None) -> dict:
    """One training pass; time spent producing batches versus training on them."""
    optimizer = make_optimizer(model, Recipe(epochs=1))
    model.train()
    data_seconds = step_seconds = 0.0
    images = 0
    iterator = iter(batches)
    start = time.perf_counter()
    while max_images is None or images < max_images:
        tick = time.perf_counter()
        try:
            inputs, labels = next(iterator)
        except StopIteration:
            break
        inputs, labels = inputs.to(device, non_blocking=True), labels.to(device)
        synchronize(device)
        tock = time.perf_counter()
        loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)
        data_seconds += tock - tick
        step_seconds += time.perf_counter() - tock
        images += len(labels)
    total = time.perf_counter() - start
    return {"images": images, "epoch_seconds": round(total, 2),
            "data_seconds": round(data_seconds, 2), "data_share": round(data_seconds / total, 4),
            "images_per_second": round(images / total, 1),
            "data_microseconds_per_image": round(1e6 * data_seconds / images, 1)}


def data_only(batches: Iterable, device: torch.device, max_images: int) -> float:
    """Images per second of the data pipeline alone (no model)."""
    images = 0
    start = time.perf_counter()
    for inputs, labels in batches:
        inputs.to(device)
        images += len(labels)
        if images >= max_images:
            break
    synchronize(device)
    return round(images / (time.perf_counter() - start), 1)


def per_image_loader(images: torch.Tensor, labels: torch.Tensor, mean, std, batch_size: int,
                     workers: int, device: torch.device):
    """The usual pipeline: one PIL image at a time through torchvision transforms."""
    from torch.utils.data import DataLoader
    from torchvision import transforms

    from cnn_course.data import ImageTensorDataset

    transform = transforms.Compose([transforms.RandomCrop(32, padding=4),
                                    transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                                    transforms.Normalize(mean, std)])
    return DataLoader(ImageTensorDataset(images, labels, transform), batch_size=batch_size,
                      shuffle=True, num_workers=workers, pin_memory=device.type == "cuda",
                      persistent_workers=False)


def run_pipeline(device: torch.device, quick: bool, log) -> dict:
    started = stamp(device)
    images, labels = cifar10_uint8(True)
    if quick:
        keep = subset_indices(labels, 1024)
        images, labels = images[keep], labels[keep]
    data = cifar10_tensors(device, train_size=len(labels) if quick else None)
    batch_size = 128
    generator = torch.Generator().manual_seed(0)
    tensor_batches = TensorBatches(
        data.x_train, data.y_train, batch_size, shuffle=True, seed=0,
        transform=lambda xb: random_crop_flip(xb, 4, generator=generator))
    pipelines = {
        "dataloader_0_workers": lambda: per_image_loader(images, labels, data.mean, data.std,
                                                         batch_size, 0, device),
        "dataloader_2_workers": lambda: per_image_loader(images, labels, data.mean, data.std,
                                                         batch_size, 2, device),
        "tensor_on_device": lambda: tensor_batches,
    }
    if quick:  # starting worker processes costs seconds
        del pipelines["dataloader_2_workers"]
    descriptions = {
        "dataloader_0_workers": "DataLoader, per-image PIL transforms, 0 workers",
        "dataloader_2_workers": "DataLoader, per-image PIL transforms, 2 worker processes",
        "tensor_on_device": "tensors on the device, batched crop + flip",
    }
    results = {}
    for name, make in pipelines.items():
        torch.manual_seed(0)
        model = tutorial_cnn(relu=True).to(device)
        timed_epoch(model, make(), device, max_images=4 * batch_size)  # warm-up
        epoch = timed_epoch(model, make(), device)
        epoch["data_only_images_per_second"] = data_only(make(), device,
                                                         1024 if quick else 20_000)
        epoch["description"] = descriptions[name]
        results[name] = epoch
        log(f"-- {name:22s} epoch {epoch['epoch_seconds']:7.1f} s, data "
            f"{epoch['data_share']:6.1%} ({epoch['data_microseconds_per_image']:.0f} us/image), "
            f"{epoch['images_per_second']:7.0f} images/s; data alone "
            f"{epoch['data_only_images_per_second']:9.0f} images/s")
    return {"measured": started, "model": "tutorial network with ReLU",
            "batch_size": batch_size, "pipelines": results}


# ---- speed ----------------------------------------------------------------------------------

def images_per_second(model: nn.Module, device: torch.device, batch_size: int, images: int,
                      channels_last: bool = False, autocast: bool = False,
                      steps_min: int = 8, repeats: int = 3, warmup: int = 3) -> float:
    """Steady-state training images per second on random data, after ``warmup`` steps: the
    median of ``repeats`` timed runs of ``images`` images each (a single run of a few seconds
    varied by a third from one benchmark run to the next)."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch_size, 3, 32, 32, generator=generator).to(device)
    labels = torch.randint(0, 10, (batch_size,), generator=generator).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, Recipe(epochs=1))
    dtype = torch.bfloat16

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=autocast):
            loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    steps = max(steps_min, images // batch_size)
    rates = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        rates.append(steps * batch_size / (time.perf_counter() - start))
    return round(statistics.median(rates), 1)


def compiler_available() -> bool:
    from shutil import which

    return any(which(name) for name in ("g++", "c++", "clang++")) or sys.platform == "win32"


def run_speed(device: torch.device, quick: bool, compile_model: bool, log) -> dict:
    # A cold compile, as on a learner's first run: nothing reused from earlier compilations.
    with tempfile.TemporaryDirectory() as cache:
        previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        try:
            return _run_speed(device, quick, compile_model, log)
        finally:
            if previous is None:
                del os.environ["TORCHINDUCTOR_CACHE_DIR"]
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous


def _run_speed(device: torch.device, quick: bool, compile_model: bool, log) -> dict:
    started = stamp(device)
    images = 256 if quick else 8192
    # A quick run only proves that every part runs: one short timed run each (bfloat16
    # autocast alone trains at a few dozen images per second on some CPUs).
    timing = {"steps_min": 1, "repeats": 1, "warmup": 1} if quick else {}
    models = {"tutorial_relu": lambda: tutorial_cnn(relu=True), "improved": improved_cnn}
    if quick:
        del models["improved"]
    sweep = []
    for batch_size in (32, 128) if quick else (16, 32, 64, 128, 256, 512):
        torch.manual_seed(0)
        rate = images_per_second(models["tutorial_relu"]().to(device), device, batch_size,
                                 images, **timing)
        sweep.append({"batch_size": batch_size, "images_per_second": rate})
        log(f"-- batch {batch_size:4d}: {rate:8.0f} images/s (tutorial network with ReLU)")
    variants = []
    settings = [("baseline (float32, contiguous)", {}),
                ("channels_last", {"channels_last": True}),
                ("bfloat16 autocast", {"autocast": True}),
                ("channels_last + bfloat16 autocast", {"channels_last": True, "autocast": True})]
    for model_name, build in models.items():
        for label, options in settings:
            torch.manual_seed(0)
            rate = images_per_second(build().to(device), device, 128, images, **options,
                                     **timing)
            variants.append({"model": model_name, "setting": label, "images_per_second": rate})
            log(f"-- {model_name:14s} {label:34s} {rate:8.0f} images/s")
        if compile_model and compiler_available():
            torch.manual_seed(0)
            model = build().to(device)
            start = time.perf_counter()
            try:
                compiled = torch.compile(model)
                # The first steps trigger the compilation; time them separately.
                images_per_second(compiled, device, 128, 128, steps_min=1, repeats=1)
                compile_seconds = time.perf_counter() - start
                rate = images_per_second(compiled, device, 128, images)
            except Exception as error:  # no working compiler toolchain: report, go on
                log(f"-- {model_name:14s} torch.compile failed: {type(error).__name__}: "
                    f"{str(error).splitlines()[0][:200]}")
                continue
            variants.append({"model": model_name, "setting": "torch.compile",
                             "images_per_second": rate,
                             "compile_seconds": round(compile_seconds, 1)})
            log(f"-- {model_name:14s} {'torch.compile':34s} {rate:8.0f} images/s "
                f"(compiling took {compile_seconds:.0f} s)")
    return {"measured": started, "batch_sizes": sweep, "variants": variants}


# ---- main -----------------------------------------------------------------------------------

def check_targets(results: dict, log) -> bool:
    """Print each target with PASS or FAIL; True if all measured ones pass."""
    ok = True
    runs = results.get("accuracy", {}).get("runs", {})
    for name, target in TARGETS.items():
        if name not in runs:
            continue
        acc, wall = runs[name]["test_acc"][-1], runs[name]["wall_seconds"]
        limit = TIME_LIMITS.get(name)
        passed = acc >= target and (limit is None or wall <= limit)
        ok &= passed
        timing = f", wall {wall:.0f} s <= {limit:.0f} s" if limit else ""
        log(f"{'PASS' if passed else 'FAIL'} {name}: test accuracy {acc:.2%} >= {target:.0%}"
            f"{timing}")
    pipelines = results.get("pipeline", {}).get("pipelines", {})
    if "tensor_on_device" in pipelines:
        share = pipelines["tensor_on_device"]["data_share"]
        passed = share <= DATA_SHARE_TARGET
        ok &= passed
        log(f"{'PASS' if passed else 'FAIL'} tensor-resident data share {share:.1%} <= "
            f"{DATA_SHARE_TARGET:.0%}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated parts to run, from {', '.join(PARTS)}")
    parser.add_argument("--runs", default=",".join(RECIPES),
                        help=f"accuracy runs, from {', '.join(RECIPES)}")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: small subsets, 1 epoch, few steps; targets not checked")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the best one)")
    parser.add_argument("--output", type=Path, default=None,
                        help="results file (default: benchmarks/results/cifar10_<device>.json; "
                             "quick runs write only if this is given)")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    names = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = [p for p in parts if p not in PARTS] + [r for r in names if r not in RECIPES]
    if unknown:
        parser.error(f"unknown part or run: {', '.join(unknown)}")
    device = get_device(args.device)

    def log(line: str) -> None:
        print(line, flush=True)

    log(f"CIFAR-10 benchmark on {describe_device(device)}; {datetime.date.today()}; "
        f"load average {load_average()}; {'quick' if args.quick else 'full'} run")
    output = args.output or (None if args.quick else results_path("cifar10", device.type))
    results = json.loads(output.read_text()) if output and output.exists() else {}
    results.update({"benchmark": "benchmarks/cifar10.py", "device": device.type,
                    "quick": args.quick})
    started = time.perf_counter()

    def save(part: str, value: dict) -> None:
        results[part] = value
        if output:
            write_results(output, results)

    for part in parts:
        log(f"== {part}")
        if part == "accuracy":
            save(part, run_accuracy(device, args.quick, names, log, results.get(part),
                                    lambda value: save("accuracy", value)))
        elif part == "tutorial":
            save(part, run_tutorial(device, args.quick, log))
        elif part == "pipeline":
            save(part, run_pipeline(device, args.quick, log))
        else:
            save(part, run_speed(device, args.quick, not args.no_compile and not args.quick,
                                 log))
    log(f"== done in {time.perf_counter() - started:.0f} s; load average {load_average()}")
    if output:
        log(f"results written to {output}")
    all_passed = True if args.quick else check_targets(results, log)
    return 0 if all_passed else 1


if __name__ == "__main__":
    sys.exit(main())
