"""Chapter 7: LeNet-5 on MNIST."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from cnn_course.arith import conv_output_size, conv_params, linear_params

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
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


class LeNet5(nn.Module):
    """LeNet-5 for 28x28 digits: ``padding=2`` on C1 gives it the paper's 32x32 view.

    x: [N, 1, 28, 28] -> logits [N, num_classes].
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.c3 = nn.Conv2d(6, 16, kernel_size=5)
        self.pool = nn.MaxPool2d(2)
        self.c5 = nn.Linear(16 * 5 * 5, 120)
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.c1(x)))   # [N, 6, 14, 14]
        x = self.pool(torch.relu(self.c3(x)))   # [N, 16, 5, 5]
        x = x.flatten(1)                        # [N, 400]
        x = torch.relu(self.c5(x))
        x = torch.relu(self.f6(x))
        return self.output(x)



lenet5 = LeNet5  # under the exercise's name, like every other reference answer

def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def train_one_epoch(model: nn.Module, batches: Batches, optimizer: torch.optim.Optimizer,
                    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
                    ) -> tuple[float, float]:
    """One pass over ``batches`` in training mode; returns (mean loss per sample, accuracy)."""
    device = _model_device(model)
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for inputs, labels in batches:
        inputs, labels = inputs.to(device), labels.to(device)
        logits = model(inputs)            # 1. forward
        loss = loss_fn(logits, labels)    # 2. loss
        optimizer.zero_grad()
        loss.backward()                   # 3. backward
        optimizer.step()                  # 4. update
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.item() * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
    return total_loss / seen, correct / seen


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, batches: Batches) -> float:
    """Fraction of samples whose highest logit is the true label (eval mode, no gradients)."""
    device = _model_device(model)
    model.eval()
    correct, seen = 0, 0
    for inputs, labels in batches:
        inputs, labels = inputs.to(device), labels.to(device)
        correct += (model(inputs).argmax(1) == labels).sum().item()
        seen += len(labels)
    return correct / seen
