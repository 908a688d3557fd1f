"""Chapter 8: a CNN on CIFAR-10."""

from __future__ import annotations

from torch import nn

from cnn_course.lessons.cifar import per_class_accuracy, random_crop_flip, tutorial_cnn

__all__ = ["linear_in_features", "per_class_accuracy", "random_crop_flip", "relu_cnn"]


def linear_in_features(image_size: int, convs: list[tuple[int, int, int]]) -> int:
    """Inputs of the first Linear layer after a stack of convolutions, each followed by
    ``MaxPool2d(2)``.

    ``convs`` lists ``(out_channels, kernel_size, padding)`` for each stride-1 convolution.
    """
    side = image_size
    for _, kernel_size, padding in convs:
        side = side + 2 * padding - kernel_size + 1   # the convolution
        side = side // 2                              # the pooling rounds down
    return convs[-1][0] * side * side


def relu_cnn() -> nn.Sequential:
    """The tutorial's model with a ReLU after every convolution and the hidden Linear layer."""
    return tutorial_cnn(relu=True)
