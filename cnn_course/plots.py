"""Plotting helpers shared by the notebooks and the book."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle

from cnn_course.figure_translation import figure_tr, set_title, use_cjk_font
from cnn_course.messages import tr


def label_axes(ax: plt.Axes, xlabel: str | None = None, ylabel: str | None = None,
               title: str | None = None, **title_kwargs) -> None:
    """Set the axis labels and the title that are given, each in a font with Chinese glyphs
    if it holds any (the texts come translated, from ``figure_tr``)."""
    if xlabel is not None:
        use_cjk_font(ax.set_xlabel(xlabel))
    if ylabel is not None:
        use_cjk_font(ax.set_ylabel(ylabel))
    if title is not None:
        set_title(ax, title, **title_kwargs)


def legend(ax: plt.Axes, **kwargs) -> None:
    """``ax.legend(**kwargs)``, its texts in a font with Chinese glyphs where they hold any."""
    for text in ax.legend(**kwargs).get_texts():
        use_cjk_font(text)


def show_images(images: Sequence[torch.Tensor] | torch.Tensor, titles: Sequence[str] | None = None,
                ncols: int | None = None, cmap: str = "gray", size: float = 2.2,
                symmetric: bool | Sequence[bool] = False) -> plt.Figure:
    """Show 2-D maps or [C, H, W] images side by side.

    ``symmetric=True`` centres the colour map on zero, which suits feature maps and kernels
    whose values have both signs.
    """
    images = list(images)
    symmetric = [symmetric] * len(images) if isinstance(symmetric, bool) else list(symmetric)
    ncols = ncols or len(images)
    nrows = (len(images) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= len(images):
            continue
        image = images[index].detach().cpu().float()
        if image.dim() == 3 and image.shape[0] == 1:
            image = image[0]
        if image.dim() == 3:  # [C, H, W] colour image
            low, high = image.min(), image.max()
            ax.imshow(((image - low) / (high - low + 1e-12)).permute(1, 2, 0).numpy())
        elif symmetric[index]:
            limit = float(image.abs().max()) or 1.0
            ax.imshow(image.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        else:
            ax.imshow(image.numpy(), cmap=cmap)
        if titles is not None:
            set_title(ax, titles[index], fontsize=9)
    fig.tight_layout()
    return fig


def show_kernel_values(kernel: torch.Tensor, ax: plt.Axes | None = None,
                       title: str = "") -> plt.Axes:
    """Draw a small 2-D kernel with its numbers written in the cells."""
    kernel = kernel.detach().cpu().float()
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * kernel.shape[1] + 0.8, 0.6 * kernel.shape[0] + 0.6))
    limit = float(kernel.abs().max()) or 1.0
    ax.imshow(kernel.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
    for (i, j), value in zip(torch.cartesian_prod(torch.arange(kernel.shape[0]),
                                                  torch.arange(kernel.shape[1])).tolist(),
                             kernel.flatten().tolist(), strict=True):
        ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    set_title(ax, title, fontsize=9)
    return ax


def draw_conv_grid(ax: plt.Axes, n: int, kernel_size: int, padding: int | tuple[int, int],
                   stride: int, dilation: int, out_row: int, out_col: int) -> None:
    """Draw the zero-padded input grid and the cells the kernel reads for one output position.

    ``padding`` is one number for both sides, or ``(before, after)`` where they differ, as for
    ``padding='same'`` with an even kernel (PyTorch puts the odd extra row and column after).
    """
    before, after = (padding, padding) if isinstance(padding, int) else tuple(padding)
    if min(before, after) < 0:
        raise ValueError(tr("padding must be a non-negative int or (before, after) pair, "
                            "got {padding!r}", padding=padding))
    size = before + n + after
    ax.clear()
    for i in range(size):
        for j in range(size):
            is_padding = not (before <= i < before + n and before <= j < before + n)
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor="#eeeeee" if is_padding else "white",
                                   edgecolor="#999999", linewidth=0.5))
    top, left = out_row * stride, out_col * stride
    for a in range(kernel_size):
        for b in range(kernel_size):
            ax.add_patch(Rectangle((left + b * dilation, top + a * dilation), 1, 1,
                                   facecolor="#1f77b4", alpha=0.55, edgecolor="#1f77b4"))
    span = dilation * (kernel_size - 1) + 1
    ax.add_patch(Rectangle((left, top), span, span, fill=False, edgecolor="#d62728", linewidth=2))
    ax.set_xlim(0, size)
    ax.set_ylim(size, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    set_title(ax, figure_tr("padded input {size}x{size} (grey = zero padding); kernel at output "
                            "({row}, {col})", size=size, row=out_row, col=out_col), fontsize=9)


def plot_history(history, title: str = "") -> plt.Figure:
    """Loss and accuracy per epoch for training and, if measured, test data."""
    epochs = range(1, history.epochs + 1)
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.2))
    train, test = figure_tr("train"), figure_tr("test")
    loss_ax.plot(epochs, history.train_loss, "o-", label=train)
    acc_ax.plot(epochs, history.train_acc, "o-", label=train)
    if history.test_loss:
        loss_ax.plot(epochs, history.test_loss, "s-", label=test)
        acc_ax.plot(epochs, history.test_acc, "s-", label=test)
    # the caller's title, with what each panel shows after it
    loss_title = figure_tr("{title} loss", title=title) if title else figure_tr("loss")
    acc_title = figure_tr("{title} accuracy", title=title) if title else figure_tr("accuracy")
    label_axes(loss_ax, figure_tr("epoch"), figure_tr("loss"), loss_title.strip())
    label_axes(acc_ax, figure_tr("epoch"), figure_tr("accuracy"), acc_title.strip())
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        legend(ax)
    fig.tight_layout()
    return fig
