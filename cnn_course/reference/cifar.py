"""Chapter 8: a CNN on CIFAR-10."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from cnn_course.arith import LayerSpec
from cnn_course.lessons.cifar import per_class_accuracy, random_crop_flip, tutorial_cnn
from cnn_course.reference.fully_connected import flatten_size

__all__ = ["linear_in_features", "per_class_accuracy", "random_crop_flip", "relu_cnn"]


def linear_in_features(input_shape: tuple[int, int, int], specs: Sequence[LayerSpec]) -> int:
    """The ``in_features`` of the first Linear layer after the layers in ``specs`` (layer specs:
    the tutorial network is three ``("conv", c, 5, 1, 2), ("pool", 2, 2, 0)`` pairs).

    input_shape: (C, H, W) of one image. It is Chapter 4's ``flatten_size``: the values per
    image that ``nn.Flatten`` hands on.
    """
    return flatten_size(input_shape, specs)


def relu_cnn() -> nn.Sequential:
    """The tutorial's model with a ReLU after every convolution and the hidden Linear layer."""
    return tutorial_cnn(relu=True)
