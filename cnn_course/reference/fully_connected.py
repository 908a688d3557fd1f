"""Chapter 4: fully connected layers, shapes and parameter counts."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

from cnn_course.arith import conv_output_size, linear_params  # noqa: F401  (re-exported)
from cnn_course.lessons.fully_connected import ink_features, one_hot  # noqa: F401  (re-exported)

# A layer spec: ("conv", out_channels, kernel_size, stride, padding) or
# ("pool", kernel_size, stride), as used by ``flatten_size``.
LayerSpec = tuple

CIFAR10_SPECS: list[LayerSpec] = [
    ("conv", 32, 5, 1, 2), ("pool", 2, 2),
    ("conv", 32, 5, 1, 2), ("pool", 2, 2),
    ("conv", 64, 5, 1, 2), ("pool", 2, 2),
]


def mlp_params(sizes: Sequence[int]) -> int:
    """Parameters of a stack of ``nn.Linear`` layers (all with bias) joining consecutive
    ``sizes``, e.g. ``[784, 128, 10]`` is Linear(784, 128) then Linear(128, 10)."""
    return sum(linear_params(a, b) for a, b in pairwise(sizes))


def flatten_size(input_shape: tuple[int, int, int], specs: Sequence[LayerSpec]) -> int:
    """Number of values per image that ``nn.Flatten`` produces after the layers in ``specs``.

    input_shape: (C, H, W) of one image, without the batch dimension.
    """
    channels, height, width = input_shape
    for spec in specs:
        if spec[0] == "conv":
            _, channels, kernel, stride, padding = spec
        else:
            _, kernel, stride = spec
            padding = 0
        height = conv_output_size(height, kernel, padding=padding, stride=stride)
        width = conv_output_size(width, kernel, padding=padding, stride=stride)
    return channels * height * width


def layers_from_specs(in_channels: int, specs: Sequence[LayerSpec]) -> nn.Sequential:
    """The real ``nn.Conv2d``/``nn.MaxPool2d`` layers that ``specs`` describe."""
    layers: list[nn.Module] = []
    for spec in specs:
        if spec[0] == "conv":
            _, out_channels, kernel, stride, padding = spec
            layers.append(nn.Conv2d(in_channels, out_channels, kernel, stride, padding))
            in_channels = out_channels
        elif spec[0] == "pool":
            _, kernel, stride = spec
            layers.append(nn.MaxPool2d(kernel, stride))
        else:
            raise ValueError(f"unknown layer spec {spec!r}: use 'conv' or 'pool'")
    return nn.Sequential(*layers)


def layer_table(model: nn.Sequential, input_shape: tuple[int, ...]
                ) -> list[tuple[str, tuple[int, ...], int]]:
    """(class name, output shape without the batch dimension, own parameter count) for each
    layer of ``model``, found by passing one zero image of ``input_shape`` through it."""
    rows = []
    x = torch.zeros(1, *input_shape)
    with torch.no_grad():
        for layer in model:
            x = layer(x)
            params = sum(p.numel() for p in layer.parameters())
            rows.append((type(layer).__name__, tuple(x.shape[1:]), params))
    return rows
