"""Chapter 3: pooling from scratch, and the shapes through a conv-pool stack."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cnn_course.arith import LayerSpec, check_specs, conv_output_size


def _windows(x: torch.Tensor, kernel_size: int, stride: int, padding: int,
             fill: float) -> torch.Tensor:
    """Every pooling window of ``x`` as [N, C, H_out, W_out, k*k]; padding holds ``fill``."""
    x = F.pad(x, (padding, padding, padding, padding), value=fill)
    patches = x.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride)
    return patches.reshape(*patches.shape[:4], kernel_size * kernel_size)


def max_pool2d(x: torch.Tensor, kernel_size: int, stride: int | None = None,
               padding: int = 0) -> torch.Tensor:
    """Max pooling as ``F.max_pool2d`` computes it: padding is -inf, so it never wins.

    x: [N, C, H, W]. Returns [N, C, H_out, W_out]; ``stride=None`` means ``kernel_size``.
    """
    stride = kernel_size if stride is None else stride
    return _windows(x, kernel_size, stride, padding, float("-inf")).amax(dim=-1)


def avg_pool2d(x: torch.Tensor, kernel_size: int, stride: int | None = None,
               padding: int = 0) -> torch.Tensor:
    """Average pooling as ``F.avg_pool2d`` computes it by default (``count_include_pad=True``):
    padded zeros count, so every window is divided by ``kernel_size**2``.

    x: [N, C, H, W]. Returns [N, C, H_out, W_out]; ``stride=None`` means ``kernel_size``.
    """
    stride = kernel_size if stride is None else stride
    return _windows(x, kernel_size, stride, padding, 0.0).mean(dim=-1)


def max_pool2d_winners(x: torch.Tensor, kernel_size: int, stride: int | None = None
                       ) -> torch.Tensor:
    """Where max pooling (no padding) takes its values from: a tensor shaped like ``x`` that
    counts, at each input position, the windows whose maximum it is.

    x: [N, C, H, W]; ``stride=None`` means ``kernel_size``. When several values of a window
    tie for its maximum, the first in reading order (row by row, left to right) wins, as
    ``argmax`` and PyTorch's max pooling pick it. Without overlapping windows every entry is 0
    or 1; with them, one input can win several windows. Returns [N, C, H, W], dtype of ``x``.
    """
    stride = kernel_size if stride is None else stride
    n, c, height, width = x.shape
    windows = x.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride)
    h_out, w_out = windows.shape[2:4]
    winner = windows.reshape(n, c, h_out, w_out, -1).argmax(dim=-1)   # first maximum wins
    top = torch.arange(h_out).view(h_out, 1) * stride
    left = torch.arange(w_out).view(1, w_out) * stride
    rows, cols = top + winner // kernel_size, left + winner % kernel_size
    counts = torch.zeros(n, c, height * width, dtype=x.dtype)
    # scatter_add_ adds, so an input that wins several overlapping windows counts each
    counts.scatter_add_(2, (rows * width + cols).reshape(n, c, -1),
                        torch.ones(n, c, h_out * w_out, dtype=x.dtype))
    return counts.view(n, c, height, width)


def pooled_shapes(input_shape: Sequence[int], layers: Sequence[LayerSpec]
                  ) -> list[tuple[int, int, int]]:
    """Shape (C, H, W) after each layer of a stack, without running it.

    ``layers`` holds layer specs (:mod:`cnn_course.arith`): ``("conv", out_channels,
    kernel_size, stride, padding)`` and ``("pool", kernel_size, stride, padding)``; pooling,
    max or average, gives the same shapes.
    """
    channels, height, width = input_shape
    shapes = []
    for layer in check_specs(layers):
        if layer[0] == "conv":
            _, channels, kernel, stride, padding = layer
        else:
            _, kernel, stride, padding = layer
        height = conv_output_size(height, kernel, padding=padding, stride=stride)
        width = conv_output_size(width, kernel, padding=padding, stride=stride)
        shapes.append((channels, height, width))
    return shapes
