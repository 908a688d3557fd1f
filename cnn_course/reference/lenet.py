"""Chapter 7: LeNet-5 on MNIST."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from cnn_course import models
from cnn_course.arith import conv_output_size, conv_params, linear_params
from cnn_course.training import Batches, evaluate, train_epoch

TableRow = tuple[str, tuple[int, ...], int]


def lenet_layer_table(input_size: int = 32, num_classes: int = 10) -> list[TableRow]:
    """LeNet-5's layers as ``(name, output shape without the batch axis, parameters)``.

    For a 1-channel ``input_size`` x ``input_size`` image and no padding on C1; pooling is
    2x2 with stride 2 (no parameters in PyTorch).
    """
    c1 = conv_output_size(input_size, 5)
    s2 = conv_output_size(c1, 2, stride=2)
    c3 = conv_output_size(s2, 5)
    s4 = conv_output_size(c3, 2, stride=2)
    flat = 16 * s4 * s4
    return [
        ("C1", (6, c1, c1), conv_params(1, 6, 5)),
        ("S2", (6, s2, s2), 0),
        ("C3", (16, c3, c3), conv_params(6, 16, 5)),
        ("S4", (16, s4, s4), 0),
        ("C5", (120,), linear_params(flat, 120)),
        ("F6", (84,), linear_params(120, 84)),
        ("output", (num_classes,), linear_params(84, num_classes)),
    ]


class LeNet5(models.LeNet5):
    """The course's LeNet-5 (:class:`cnn_course.models.LeNet5`) for 28x28 digits:
    ``padding=2`` on C1 gives it the paper's 32x32 view.

    x: [N, 1, 28, 28] -> logits [N, num_classes].
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(num_classes=num_classes, c1_padding=2)


lenet5 = LeNet5  # under the exercise's name, like every other reference answer


def train_one_epoch(model: nn.Module, batches: Batches, optimizer: torch.optim.Optimizer,
                    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
                    ) -> tuple[float, float]:
    """One pass over ``batches`` in training mode, stepping ``scheduler`` after every batch;
    returns (mean loss per sample, accuracy). The course's :func:`~cnn_course.training.train_epoch`.
    """
    return train_epoch(model, batches, optimizer, loss_fn, scheduler)


def evaluate_accuracy(model: nn.Module, batches: Batches) -> float:
    """Fraction of samples whose highest logit is the true label (eval mode, no gradients)."""
    return evaluate(model, batches, loss_fn=None)[1]
