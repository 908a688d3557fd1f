"""Chapter 4: fully connected layers, shapes and parameter counts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

from cnn_course.arith import LayerSpec, conv_output_size, linear_params  # noqa: F401  (re-exported)
from cnn_course.lessons.fully_connected import ink_features, one_hot  # noqa: F401  (re-exported)
from cnn_course.reference.pooling import pooled_shapes

# The CIFAR-10 model's convolutions and poolings, as layer specs (see cnn_course.arith).
CIFAR10_SPECS: list[LayerSpec] = [
    ("conv", 32, 5, 1, 2), ("pool", 2, 2, 0),
    ("conv", 32, 5, 1, 2), ("pool", 2, 2, 0),
    ("conv", 64, 5, 1, 2), ("pool", 2, 2, 0),
]


def mlp_params(sizes: Sequence[int]) -> int:
    """Parameters of a stack of ``nn.Linear`` layers (all with bias) joining consecutive
    ``sizes``, e.g. ``[784, 128, 10]`` is Linear(784, 128) then Linear(128, 10)."""
    return sum(linear_params(a, b) for a, b in pairwise(sizes))


def flatten_size(input_shape: tuple[int, int, int], specs: Sequence[LayerSpec]) -> int:
    """Number of values per image that ``nn.Flatten`` produces after the layers in ``specs``
    (layer specs, as in Chapter 3's ``pooled_shapes``).

    input_shape: (C, H, W) of one image, without the batch dimension.
    """
    shapes = pooled_shapes(input_shape, specs)
    return math.prod(shapes[-1] if shapes else input_shape)


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
