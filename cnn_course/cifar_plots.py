"""Figures of Chapter 8 (CIFAR-10): images, training curves, per-class accuracy, confusion."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch

from cnn_course.data import CIFAR10_CLASSES
from cnn_course.training import History


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
            ax.imshow(images[index].cpu().numpy())
            if titles is not None:
                ax.set_title(titles[index], fontsize=title_size)
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
            ax.imshow(images[index].numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def plot_curves(histories: dict[str, History], title: str = "") -> plt.Figure:
    """Train (dashed) and test (solid) accuracy per epoch for several runs."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for index, (name, history) in enumerate(histories.items()):
        color = f"C{index}"
        epochs = range(1, history.epochs + 1)
        ax.plot(epochs, history.test_acc, "o-", color=color, label=f"{name}: test")
        ax.plot(epochs, history.train_acc, "--", color=color, alpha=0.7, label=f"{name}: train")
    ax.set(xlabel="epoch", ylabel="accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
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
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
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
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1.08), xlabel="accuracy on the test images of the class", title=title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
