"""The training loop: forward, loss, backward, update; evaluation; and training recipes.

Works with any iterable of ``(inputs, labels)`` batches: a ``DataLoader`` or
:class:`cnn_course.data.TensorBatches`. Batches are moved to the model's device if needed.
A :class:`Recipe` names how a model is trained (optimizer, one-cycle schedule, batch size,
epochs); :func:`fit_recipe` trains with one, for Chapters 7 and 8 alike.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from cnn_course.messages import tr

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
Scheduler = torch.optim.lr_scheduler.LRScheduler
#: ``(model, batches, optimizer, loss_fn, scheduler) -> (mean loss, accuracy)``, like
#: :func:`train_epoch` (and Chapter 7's exercise ``train_one_epoch``).
EpochFn = Callable[[nn.Module, Batches, torch.optim.Optimizer, Callable, Scheduler | None],
                   tuple[float, float]]


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
                scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
                ) -> tuple[float, float]:
    """One pass over ``batches``; returns (mean loss, accuracy) measured while training.

    ``scheduler`` is stepped after every batch (as one-cycle schedules expect). For a progress
    bar, :func:`fit` wraps the batches.
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
    return total_loss.item() / seen, correct.item() / seen


@torch.no_grad()
def evaluate(model: nn.Module, batches: Batches,
             loss_fn: Callable | None = nn.functional.cross_entropy) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on ``batches``, in eval mode and without gradients.

    ``loss_fn`` must accept ``reduction="sum"``; with ``loss_fn=None`` only the accuracy is
    computed and the loss is returned as ``nan``.
    """
    device = _model_device(model)
    was_training = model.training
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for inputs, labels in batches:
        inputs, labels = inputs.to(device), labels.to(device)
        logits = model(inputs)
        if loss_fn is not None:
            total_loss += loss_fn(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
    model.train(was_training)
    return (total_loss / seen if loss_fn is not None else math.nan), correct / seen


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


class _Counted:
    """``batches`` that advance a progress bar by one after each batch has been used."""

    def __init__(self, batches: Batches, bar: tqdm) -> None:
        self.batches, self.bar = batches, bar

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.batches:
            yield batch
            self.bar.update(1)


def _synchronize(model: nn.Module) -> None:
    if _model_device(model).type == "cuda":
        torch.cuda.synchronize()


def fit(model: nn.Module, train_batches: Batches, test_batches: Batches | None,
        optimizer: torch.optim.Optimizer, epochs: int, scheduler: Scheduler | None = None,
        loss_fn: Callable = nn.functional.cross_entropy, progress: bool = True,
        log: Callable[[str], None] | None = print, epoch_fn: EpochFn = train_epoch,
        on_epoch: Callable[[int, History], None] | None = None) -> History:
    """Train for ``epochs`` epochs, evaluating on ``test_batches`` after each one.

    Each epoch is ``epoch_fn(model, batches, optimizer, loss_fn, scheduler)`` (default
    :func:`train_epoch`); the progress bar counts the batches it takes. After each epoch's
    evaluation, ``on_epoch(epoch, history)`` is called (``history.train_seconds`` is the training
    time so far, evaluations excluded).
    """
    history = History()
    steps = epochs * len(train_batches) if hasattr(train_batches, "__len__") else None
    bar = tqdm(total=steps, desc=tr("training"), unit="batch", disable=not progress)
    batches = _Counted(train_batches, bar) if progress else train_batches
    for epoch in range(1, epochs + 1):
        _synchronize(model)
        start = time.perf_counter()
        train_loss, train_acc = epoch_fn(model, batches, optimizer, loss_fn, scheduler)
        _synchronize(model)
        history.train_seconds += time.perf_counter() - start
        history.train_loss.append(train_loss)
        history.train_acc.append(train_acc)
        line = tr("epoch {epoch}/{epochs}: train loss {loss:.4f}, acc {acc:.2%}", epoch=epoch,
                  epochs=epochs, loss=train_loss, acc=train_acc)
        if test_batches is not None:
            test_loss, test_acc = evaluate(model, test_batches, loss_fn)
            history.test_loss.append(test_loss)
            history.test_acc.append(test_acc)
            line += tr(" | test loss {loss:.4f}, acc {acc:.2%}", loss=test_loss, acc=test_acc)
        if log is not None:
            log(line)
        if on_epoch is not None:
            on_epoch(epoch, history)
    bar.close()
    return history


# ---- training recipes -----------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """How a model is trained (every training run of Chapters 7 and 8 uses one of these)."""

    epochs: int
    batch_size: int = 128
    optimizer: str = "adamw"        # "adamw", "adam", or "sgd" (with Nesterov momentum 0.9)
    max_lr: float = 3e-3            # peak learning rate of the one-cycle schedule
    weight_decay: float = 5e-2      # AdamW's decoupled decay; L2 added to the gradient otherwise
    label_smoothing: float = 0.0
    augment: bool = False           # random crop (padding 4) and horizontal flip, per batch
    channels_last: bool = False     # memory layout of inputs and model


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimizer over all of ``model``'s parameters, at learning rate ``max_lr``
    (the one-cycle schedule then sets the learning rate at every step)."""
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=recipe.max_lr,
                                 weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.max_lr,
                                weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=recipe.max_lr, momentum=0.9,
                               nesterov=True, weight_decay=recipe.weight_decay)
    raise ValueError(tr("unknown optimizer {name!r}: use 'adamw', 'adam' or 'sgd'",
                        name=recipe.optimizer))


def fit_recipe(model: nn.Module, train_batches: Batches, test_batches: Batches | None,
               recipe: Recipe, *, epoch_fn: EpochFn = train_epoch,
               on_epoch: Callable[[int, History], None] | None = None, progress: bool = False,
               log: Callable[[str], None] | None = print) -> History:
    """Train ``model`` on ``train_batches`` (which must have a length) with ``recipe``: its
    optimizer, a one-cycle schedule peaking at ``recipe.max_lr`` stepped after every batch, and
    cross-entropy with the recipe's label smoothing (while training only). Evaluates on
    ``test_batches`` after every epoch; the other arguments are :func:`fit`'s.

    The batches (their size, shuffling and augmentation) and the seeding are the caller's.
    """
    optimizer = make_optimizer(model, recipe)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.max_lr, epochs=recipe.epochs, steps_per_epoch=len(train_batches))

    def loss_fn(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean"
                ) -> torch.Tensor:
        smoothing = recipe.label_smoothing if model.training else 0.0
        return F.cross_entropy(logits, labels, reduction=reduction, label_smoothing=smoothing)

    return fit(model, train_batches, test_batches, optimizer, recipe.epochs, scheduler=scheduler,
               loss_fn=loss_fn, progress=progress, log=log, epoch_fn=epoch_fn,
               on_epoch=on_epoch)
