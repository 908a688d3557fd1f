"""Chapter 7 (LeNet-5 on MNIST): the chapter's training recipe, shared by its notebook and
``benchmarks/lenet5_mnist.py``, and the function that trains LeNet-5 with it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from cnn_course.data import TensorBatches
from cnn_course.device import seed_everything
from cnn_course.models import lenet5_for_mnist
from cnn_course.training import EpochFn, History, Recipe, fit_recipe, train_epoch

#: Batches of 256 shuffled digits, Adam, a one-cycle schedule peaking at 0.01, 3 epochs.
RECIPE = Recipe(epochs=3, batch_size=256, optimizer="adam", max_lr=0.01, weight_decay=0.0)

#: The recipe in one line, for printed reports and the benchmark's results file.
DESCRIPTION = (f"Adam + OneCycleLR (max_lr {RECIPE.max_lr:g}), batch {RECIPE.batch_size}, "
               f"{RECIPE.epochs} epochs, ReLU + max pooling")

TEST_BATCH_SIZE = 1000  # evaluation only: any size gives the same accuracy


def train_lenet5(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                 y_test: torch.Tensor, seed: int = 0, *, epochs: int | None = None,
                 model_fn: Callable[[], nn.Module] = lenet5_for_mnist,
                 epoch_fn: EpochFn = train_epoch,
                 on_epoch: Callable[[int, History], None] | None = None,
                 progress: bool = False, log: Callable[[str], None] | None = print
                 ) -> tuple[nn.Module, History]:
    """Train a new LeNet-5 on MNIST tensors with :data:`RECIPE`; return it and its history.

    ``x_train`` [N, 1, 28, 28] (normalized floats) and ``y_train`` [N], likewise the test
    split, all on the training device; the model is built there. ``seed`` fixes the initial
    weights (all generators are seeded first) and the shuffling. ``epochs`` overrides the
    recipe's 3 (the one-cycle schedule then spans that many). ``model_fn`` builds the network,
    ``epoch_fn(model, batches, optimizer, loss_fn, scheduler)`` trains one epoch, and
    ``on_epoch``, ``progress`` and ``log`` are :func:`cnn_course.training.fit`'s.
    """
    recipe = RECIPE if epochs is None else dataclasses.replace(RECIPE, epochs=epochs)
    seed_everything(seed)
    model = model_fn().to(x_train.device)
    batches = TensorBatches(x_train, y_train, batch_size=recipe.batch_size, shuffle=True,
                            seed=seed)
    test_batches = TensorBatches(x_test, y_test, batch_size=TEST_BATCH_SIZE)
    history = fit_recipe(model, batches, test_batches, recipe, epoch_fn=epoch_fn,
                         on_epoch=on_epoch, progress=progress, log=log)
    return model, history
