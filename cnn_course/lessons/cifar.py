"""Chapter 8: a CNN on CIFAR-10.

The models (the popular tutorial's network as published, with ReLU, and the chapter's improved
model), data augmentation on whole batches, the training recipe, per-class evaluation,
rebuilding training histories from the benchmark's results file
(``cnn_course.tools.benchmark_results.load_results("cifar10")``), and the chapter's figures.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from cnn_course.data import (
    CIFAR10_CLASSES,
    TensorBatches,
    channel_stats,
    load_cifar10,
    to_float_images,
)
from cnn_course.figure_translation import figure_tr, figure_translated, set_title, use_cjk_font
from cnn_course.messages import N_
from cnn_course.models import count_params
from cnn_course.plots import label_axes
from cnn_course.plots import legend as draw_legend
from cnn_course.training import History, Recipe, fit_recipe
from cnn_course.training import make_optimizer as make_optimizer  # re-exported for Chapter 8

DATASET_NAME = "CIFAR-10 (JPEG mirror)"

# The classes as the figures name them, translated where they are drawn (the data keeps
# CIFAR10_CLASSES, in English).
CLASS_NAMES = (N_("airplane"), N_("automobile"), N_("bird"), N_("cat"), N_("deer"), N_("dog"),
               N_("frog"), N_("horse"), N_("ship"), N_("truck"))
assert CLASS_NAMES == CIFAR10_CLASSES


def _class_labels(classes: Sequence[str]) -> list[str]:
    """CIFAR-10's class names in the reader's language; other classes as the caller gave them."""
    if tuple(classes) == CIFAR10_CLASSES:
        return [figure_translated(name) for name in classes]
    return list(classes)


def _cjk_ticks(ax: plt.Axes) -> None:
    for text in (*ax.get_xticklabels(), *ax.get_yticklabels()):
        use_cjk_font(text)


# ---- models ---------------------------------------------------------------------------------

def tutorial_cnn(relu: bool = False, pooling: type[nn.Module] = nn.MaxPool2d) -> nn.Sequential:
    """The popular tutorial's CIFAR-10 network: three 5x5 convolutions with ``padding=2``, each
    followed by 2x2 pooling, then ``Linear(1024, 64)`` and ``Linear(64, 10)``.

    As published it has no activation function (``relu=False``); ``relu=True`` puts a ReLU
    after every convolution and after the hidden Linear layer. ``pooling=nn.AvgPool2d`` (with
    ``relu=False``) removes the last nonlinearity and leaves a purely linear classifier.
    Input [N, 3, 32, 32], output logits [N, 10]; 145,578 parameters.
    """
    def activation() -> list[nn.Module]:
        return [nn.ReLU()] if relu else []

    layers: list[nn.Module] = []
    for c_in, c_out in [(3, 32), (32, 32), (32, 64)]:
        layers += [nn.Conv2d(c_in, c_out, kernel_size=5, padding=2), *activation(), pooling(2)]
    layers += [nn.Flatten(), nn.Linear(64 * 4 * 4, 64), *activation(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def improved_cnn(widths: tuple[int, int, int] = (48, 96, 128), hidden: int = 128
                 ) -> nn.Sequential:
    """The chapter's improved model: the tutorial's layout (three 5x5 convolutions with
    ``padding=2``, each followed by 2x2 max pooling, then two Linear layers) with batch
    normalization and ReLU after every pooling, ReLU after the hidden Linear layer, and wider
    layers.

    Input [N, 3, 32, 32], output logits [N, 10].
    """
    layers: list[nn.Module] = []
    c_in = 3
    for c_out in widths:
        # No bias: batch norm subtracts the mean right after. Pooling before batch norm and
        # ReLU lets those two run on a quarter of the values.
        layers += [nn.Conv2d(c_in, c_out, kernel_size=5, padding=2, bias=False),
                   nn.MaxPool2d(2), nn.BatchNorm2d(c_out), nn.ReLU()]
        c_in = c_out
    layers += [nn.Flatten(), nn.Linear(c_in * 4 * 4, hidden), nn.ReLU(), nn.Linear(hidden, 10)]
    return nn.Sequential(*layers)


# ---- data -----------------------------------------------------------------------------------

@dataclass
class CifarTensors:
    """CIFAR-10 as normalized float tensors on one device.

    ``x_train`` [N, 3, 32, 32], ``y_train`` [N]; likewise for the test split. ``mean`` and
    ``std`` are the per-channel statistics of the whole training split (0-1 scale).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]


def subset_indices(labels: torch.Tensor, size: int | None, seed: int = 0) -> torch.Tensor:
    """``size`` indices drawn without replacement, the same for the same seed (all if None).

    CIFAR-10's mirror lists the images class by class, so a subset must be drawn at random,
    never taken from the front.
    """
    n = len(labels)
    if size is None or size >= n:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)[:size].sort().values


@functools.lru_cache(maxsize=2)
def cifar10_uint8(train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`cnn_course.data.load_cifar10`, read from disk once per process and split:
    ``(images uint8 [N, 32, 32, 3], labels int64 [N])``. Do not modify the tensors."""
    return load_cifar10(train)


def cifar10_tensors(device: torch.device | str = "cpu", train_size: int | None = None,
                    test_size: int | None = None, seed: int = 0) -> CifarTensors:
    """Load CIFAR-10, normalize it with the training split's channel statistics, and put it
    on ``device``; ``train_size``/``test_size`` draw random subsets (for short runs)."""
    train_images, train_labels = cifar10_uint8(train=True)
    test_images, test_labels = cifar10_uint8(train=False)
    mean, std = channel_stats(train_images)
    train_index = subset_indices(train_labels, train_size, seed)
    test_index = subset_indices(test_labels, test_size, seed + 1)
    return CifarTensors(
        to_float_images(train_images[train_index], mean, std, device),
        train_labels[train_index].to(device),
        to_float_images(test_images[test_index], mean, std, device),
        test_labels[test_index].to(device),
        mean, std)


def random_crop_flip(x: torch.Tensor, padding: int = 4,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, for a whole batch at once.

    x: [N, C, H, W]. Every image is padded with ``padding`` zeros on each side, cropped back
    to H x W at its own random offset (0 to 2*padding along each axis), and mirrored left to
    right with probability 1/2. No Python loop over images. ``generator`` (a CPU generator)
    makes the draw repeatable.
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    rows, cols = torch.randint(0, 2 * padding + 1, (2, n), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    # Every possible crop as a view [N, C, 2p+1, 2p+1, H, W]; indexing copies one per image.
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)
    out = windows[torch.arange(n, device=x.device), :, rows, cols]   # [N, C, H, W]
    mirrored = flip.nonzero().flatten()
    return out.index_copy_(0, mirrored, out.index_select(0, mirrored).flip(-1))


# ---- training -------------------------------------------------------------------------------

AugmentFn = Callable[..., torch.Tensor]


def train_batches(data: CifarTensors, recipe: Recipe, seed: int = 0,
                  augment_fn: AugmentFn | None = None) -> TensorBatches:
    """Shuffled training batches, augmented on the fly (whole batches) if the recipe says so,
    with ``augment_fn(x, padding=4, generator=...)`` (default :func:`random_crop_flip`)."""
    generator = torch.Generator().manual_seed(seed + 1)
    augment_fn = augment_fn or random_crop_flip
    transforms: list[Callable[[torch.Tensor], torch.Tensor]] = []
    if recipe.augment:
        transforms.append(lambda xb: augment_fn(xb, padding=4, generator=generator))
    if recipe.channels_last:
        transforms.append(lambda xb: xb.contiguous(memory_format=torch.channels_last))

    def transform(xb: torch.Tensor) -> torch.Tensor:
        for step in transforms:
            xb = step(xb)
        return xb

    return TensorBatches(data.x_train, data.y_train, recipe.batch_size, shuffle=True, seed=seed,
                         transform=transform if transforms else None)


def train(model: nn.Module, data: CifarTensors, recipe: Recipe, seed: int = 0,
          log: Callable[[str], None] | None = print, progress: bool = False,
          augment_fn: AugmentFn | None = None) -> History:
    """Train ``model`` (already on the data's device) with ``recipe``: shuffled mini-batches,
    AdamW or SGD, and a one-cycle learning-rate schedule stepped every batch
    (:func:`cnn_course.training.fit_recipe`). Evaluates on the test split after every epoch."""
    torch.manual_seed(seed)
    if recipe.channels_last:
        model.to(memory_format=torch.channels_last)
    batches = train_batches(data, recipe, seed, augment_fn)
    test = TensorBatches(data.x_test, data.y_test, batch_size=1000)
    return fit_recipe(model, batches, test, recipe, progress=progress, log=log)


# ---- evaluation -----------------------------------------------------------------------------

def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int = 10
                     ) -> torch.Tensor:
    """Counts [num_classes, num_classes]: row = true class, column = predicted class."""
    index = labels.long().cpu() * num_classes + predicted.long().cpu()
    return torch.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def per_class_accuracy(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int = 10
                       ) -> torch.Tensor:
    """For each class, the share of its images predicted correctly (the recall), float [K].

    A class that never occurs in ``labels`` has no accuracy: its entry is ``nan``. A class
    that occurs but is never predicted has accuracy 0.
    """
    counts = confusion_matrix(predicted, labels, num_classes).double()
    return (counts.diagonal() / counts.sum(dim=1)).float()  # 0/0 gives nan


def misclassified(predicted: torch.Tensor, labels: torch.Tensor, count: int = 16,
                  seed: int = 0) -> torch.Tensor:
    """Indices of ``count`` wrongly predicted samples, drawn at random (repeatably)."""
    wrong = (predicted.cpu() != labels.cpu()).nonzero().flatten()
    order = torch.randperm(len(wrong), generator=torch.Generator().manual_seed(seed))
    return wrong[order[:count]].sort().values


# ---- benchmark results ----------------------------------------------------------------------

def history_from_results(run: dict) -> History:
    """A :class:`History` rebuilt from one run stored in a results file."""
    return History(run["train_loss"], run["train_acc"], run["test_loss"], run["test_acc"],
                   run["train_seconds"])


# ---- figures -------------------------------------------------------------------------------


def to_displayable(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Normalized float images [N, 3, H, W] back to [N, H, W, 3] in [0, 1] for imshow."""
    mean_t = torch.tensor(mean).view(1, -1, 1, 1)
    std_t = torch.tensor(std).view(1, -1, 1, 1)
    return (x.detach().cpu() * std_t + mean_t).clamp(0, 1).permute(0, 2, 3, 1)


def show_image_grid(images: torch.Tensor, titles: Sequence[str] | None = None, ncols: int = 8,
                    size: float = 1.25, title_size: int = 8) -> plt.Figure:
    """Images [N, H, W, 3] (uint8, or float in [0, 1]) in a grid, with optional titles."""
    n = len(images)
    nrows = (n + ncols - 1) // ncols
    title_lines = max((str(t).count("\n") + 1 for t in titles), default=0) if titles else 0
    row_height = size + 0.16 * title_lines
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, row_height * nrows),
                             squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < n:
            ax.imshow(images[index].cpu().numpy(), interpolation="nearest")  # the real pixels
            if titles is not None:
                set_title(ax, titles[index], fontsize=title_size)
    fig.tight_layout()
    return fig


def show_class_grid(images: torch.Tensor, labels: torch.Tensor, per_class: int = 8,
                    seed: int = 0) -> plt.Figure:
    """``per_class`` random images [N, H, W, 3] of each of the 10 classes, one row per class."""
    generator = torch.Generator().manual_seed(seed)
    fig, axes = plt.subplots(10, per_class, figsize=(per_class * 0.95, 10 * 0.95))
    for row, name in enumerate(CIFAR10_CLASSES):
        members = (labels == row).nonzero().flatten()
        chosen = members[torch.randperm(len(members), generator=generator)[:per_class]]
        for col, index in enumerate(chosen.tolist()):
            ax = axes[row, col]
            ax.imshow(images[index].numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        use_cjk_font(axes[row, 0].set_ylabel(figure_translated(name), rotation=0, ha="right",
                                             va="center", fontsize=9))
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def plot_curves(histories: dict[str, History], title: str = "") -> plt.Figure:
    """Train (dashed) and test (solid) accuracy per epoch for several runs."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for index, (name, history) in enumerate(histories.items()):
        color = f"C{index}"
        epochs = range(1, history.epochs + 1)
        ax.plot(epochs, history.test_acc, "o-", color=color,
                label=figure_tr("{name}: test", name=name))
        ax.plot(epochs, history.train_acc, "--", color=color, alpha=0.7,
                label=figure_tr("{name}: train", name=name))
    label_axes(ax, figure_tr("epoch"), figure_tr("accuracy"), title)
    ax.grid(alpha=0.3)
    draw_legend(ax, fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_confusion(counts: torch.Tensor, classes: Sequence[str] = CIFAR10_CLASSES,
                   title: str = "") -> plt.Figure:
    """A confusion matrix [K, K] (rows: true class, columns: predicted), with its counts."""
    counts = torch.as_tensor(counts)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    shares = counts.double() / counts.sum(1, keepdim=True).clamp(min=1)
    ax.imshow(shares.numpy(), cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            value = int(counts[i, j])
            color = "white" if shares[i, j] > 0.5 else "black"
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color=color)
    names = _class_labels(classes)
    ax.set_xticks(range(len(classes)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), names, fontsize=8)
    _cjk_ticks(ax)
    label_axes(ax, figure_tr("predicted class"), figure_tr("true class"), title)
    fig.tight_layout()
    return fig


def plot_per_class(accuracy: torch.Tensor, classes: Sequence[str] = CIFAR10_CLASSES,
                   title: str = "") -> plt.Figure:
    """Horizontal bars of per-class accuracy, with the value written at each bar."""
    accuracy = torch.as_tensor(accuracy, dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.barh(range(len(classes)), accuracy.numpy(), color="C0")
    for i, value in enumerate(accuracy.tolist()):
        ax.text(value + 0.01, i, f"{value:.0%}", va="center", fontsize=8)
    ax.set_yticks(range(len(classes)), _class_labels(classes), fontsize=8)
    _cjk_ticks(ax)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.08)
    label_axes(ax, figure_tr("accuracy on the test images of the class"), title=title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


__all__ = ["CIFAR10_CLASSES", "DATASET_NAME", "CifarTensors", "Recipe", "cifar10_tensors",
           "cifar10_uint8", "confusion_matrix", "count_params", "history_from_results",
           "improved_cnn", "misclassified", "per_class_accuracy", "plot_confusion", "plot_curves",
           "plot_per_class", "random_crop_flip", "show_class_grid", "show_image_grid",
           "subset_indices", "to_displayable", "train", "train_batches", "tutorial_cnn"]
