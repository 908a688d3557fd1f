"""Model definitions shared by the chapters: LeNet-5 and the facts of its 1998 paper.

LeCun, Bottou, Bengio and Haffner, "Gradient-Based Learning Applied to Document Recognition",
Proceedings of the IEEE 86(11), 1998.
"""

from __future__ import annotations

import torch
from torch import nn

from cnn_course.arith import conv_output_size

#: Which of the 6 S2 maps feed each of the 16 C3 maps in the 1998 paper (its Table I).
C3_CONNECTIONS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


def c3_table_params(connections: tuple[tuple[int, ...], ...] = C3_CONNECTIONS,
                    kernel_size: int = 5) -> int:
    """Trainable parameters of the paper's partially connected C3: one 5x5 kernel per
    (input map, output map) connection, plus one bias per output map."""
    return sum(len(inputs) for inputs in connections) * kernel_size ** 2 + len(connections)


class LeNet5(nn.Module):
    """LeNet-5 in today's usual form: ReLU activations, max pooling, a fully connected C3.

    The layers are named after the paper: ``c1, s2, c3, s4, c5, f6, output`` (plus the
    activations ``act1, act3, act5, act6`` and ``flatten``), registered in the order the forward
    pass runs them. C5 is written as a Linear layer on the flattened 16x5x5 maps, which is what
    the paper's 5x5 convolution on 5x5 maps computes.

    Input: [N, in_channels, input_size, input_size]; output: logits [N, num_classes].
    By default the input is 32x32, as in the paper. ``c1_padding=2`` makes the same network take
    MNIST's 28x28 digits directly (``input_size`` then defaults to 28).
    ``activation=nn.Tanh, pooling=nn.AvgPool2d`` comes closer to the 1998 network.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, c1_padding: int = 0,
                 input_size: int | None = None, activation: type[nn.Module] = nn.ReLU,
                 pooling: type[nn.Module] = nn.MaxPool2d) -> None:
        super().__init__()
        if input_size is None:
            input_size = 32 - 2 * c1_padding
        self.input_size = input_size
        size = conv_output_size(input_size, 5, padding=c1_padding)  # C1
        size = conv_output_size(conv_output_size(size, 2, stride=2), 5)  # S2, C3
        size = conv_output_size(size, 2, stride=2)  # S4
        self.flat_features = 16 * size * size
        self.c1 = nn.Conv2d(in_channels, 6, kernel_size=5, padding=c1_padding)
        self.act1 = activation()
        self.s2 = pooling(kernel_size=2, stride=2)
        self.c3 = nn.Conv2d(6, 16, kernel_size=5)
        self.act3 = activation()
        self.s4 = pooling(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.c5 = nn.Linear(self.flat_features, 120)
        self.act5 = activation()
        self.f6 = nn.Linear(120, 84)
        self.act6 = activation()
        self.output = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Shapes for the default 32x32 input (or 28x28 digits with c1_padding=2).
        x = self.s2(self.act1(self.c1(x)))   # [N, 6, 14, 14]
        x = self.s4(self.act3(self.c3(x)))   # [N, 16, 5, 5]
        x = self.flatten(x)                  # [N, 400]
        x = self.act5(self.c5(x))            # [N, 120]
        x = self.act6(self.f6(x))            # [N, 84]
        return self.output(x)                # [N, num_classes]


def lenet5_for_mnist(num_classes: int = 10) -> LeNet5:
    """The chapter's recipe network: LeNet-5 taking 28x28 digits, with ``padding=2`` on C1."""
    return LeNet5(num_classes=num_classes, c1_padding=2)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
