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


def max_pool2d_backward(x: torch.Tensor, grad_output: torch.Tensor, kernel_size: int,
                        stride: int | None = None) -> torch.Tensor:
    """Gradient of max pooling (no padding) with respect to its input.

    x: [N, C, H, W]; grad_output: [N, C, H_out, W_out]. Each output's gradient goes to the
    position that held its window's maximum (the first one if several tie); positions that
    win several overlapping windows add up their gradients. Returns [N, C, H, W].
    """
    stride = kernel_size if stride is None else stride
    n, c, height, width = x.shape
    h_out, w_out = grad_output.shape[-2:]
    grad_input = torch.zeros(n, c, height * width, dtype=grad_output.dtype)
    for i in range(h_out):
        for j in range(w_out):
            top, left = i * stride, j * stride
            window = x[:, :, top:top + kernel_size, left:left + kernel_size].reshape(n, c, -1)
            winner = window.argmax(dim=-1, keepdim=True)      # [N, C, 1], first maximum wins
            row, col = top + winner // kernel_size, left + winner % kernel_size
            # scatter_add_ adds, so a position that wins several windows gets their sum
            grad_input.scatter_add_(2, row * width + col, grad_output[:, :, i:i + 1, j])
    return grad_input.view(n, c, height, width)


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
