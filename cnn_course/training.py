"""The training loop: forward, loss, backward, update; and evaluation.

Works with any iterable of ``(inputs, labels)`` batches: a ``DataLoader`` or
:class:`cnn_course.data.TensorBatches`. Batches are moved to the model's device if needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class History:
    """Per-epoch metrics of a run, plus the wall time spent training (evaluation excluded)."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    train_seconds: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.train_loss)


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def train_epoch(model: nn.Module, batches: Batches, optimizer: torch.optim.Optimizer,
                loss_fn: Callable = nn.functional.cross_entropy,
                scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                progress: tqdm | None = None) -> tuple[float, float]:
    """One pass over ``batches``; returns (mean loss, accuracy) measured while training.

    ``scheduler`` is stepped after every batch (as one-cycle schedules expect).
    """
    device = _model_device(model)
    model.train()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for inputs, labels in batches:
        inputs, labels = inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        logits = model(inputs)                  # 1. forward
        loss = loss_fn(logits, labels)          # 2. loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()                         # 3. backward
        optimizer.step()                        # 4. update
        if scheduler is not None:
            scheduler.step()
        # Accumulate on the device: calling .item() every batch would stall a GPU.
        total_loss += loss.detach() * len(labels)
        correct += (logits.argmax(1) == labels).sum()
        seen += len(labels)
        if progress is not None:
            progress.update(1)
    return total_loss.item() / seen, correct.item() / seen


@torch.no_grad()
def evaluate(model: nn.Module, batches: Batches,
             loss_fn: Callable = nn.functional.cross_entropy) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on ``batches``, in eval mode and without gradients."""
    device = _model_device(model)
    was_training = model.training
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for inputs, labels in batches:
        inputs, labels = inputs.to(device), labels.to(device)
        logits = model(inputs)
        total_loss += loss_fn(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
    model.train(was_training)
    return total_loss / seen, correct / seen


@torch.no_grad()
def predict(model: nn.Module, batches: Batches) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true labels for every sample in ``batches`` (on the CPU)."""
    device = _model_device(model)
    model.eval()
    predicted, true = [], []
    for inputs, labels in batches:
        predicted.append(model(inputs.to(device)).argmax(1).cpu())
        true.append(labels.cpu())
    return torch.cat(predicted), torch.cat(true)


def fit(model: nn.Module, train_batches: Batches, test_batches: Batches | None,
        optimizer: torch.optim.Optimizer, epochs: int,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        loss_fn: Callable = nn.functional.cross_entropy, progress: bool = True,
        log: Callable[[str], None] | None = print) -> History:
    """Train for ``epochs`` epochs, evaluating on ``test_batches`` after each one."""
    history = History()
    steps = epochs * len(train_batches) if hasattr(train_batches, "__len__") else None
    bar = tqdm(total=steps, desc="training", unit="batch", disable=not progress)
    for epoch in range(1, epochs + 1):
        if _model_device(model).type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train_loss, train_acc = train_epoch(model, train_batches, optimizer, loss_fn,
                                            scheduler, bar)
        history.train_seconds += time.perf_counter() - start
        history.train_loss.append(train_loss)
        history.train_acc.append(train_acc)
        line = f"epoch {epoch}/{epochs}: train loss {train_loss:.4f}, acc {train_acc:.2%}"
        if test_batches is not None:
            test_loss, test_acc = evaluate(model, test_batches, loss_fn)
            history.test_loss.append(test_loss)
            history.test_acc.append(test_acc)
            line += f" | test loss {test_loss:.4f}, acc {test_acc:.2%}"
        if log is not None:
            log(line)
    bar.close()
    return history
