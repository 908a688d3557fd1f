"""Chapter 6 tools: run a plain step function as a ``torch.optim`` optimizer, and train for a
fixed number of steps while recording every loss.

A step function has the signature of the chapter's exercises,
``step(params, grads, state, lr=..., **hyperparameters)``, and updates ``params`` in place.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import cycle, islice

import torch
from torch import nn

StepFunction = Callable[..., None]


class FunctionOptimizer(torch.optim.Optimizer):
    """Wrap a step function so that training loops and learning-rate schedulers can use it.

    ``FunctionOptimizer(model.parameters(), adam_step, lr=1e-3, betas=(0.9, 0.999))``. The
    group's ``lr`` is read at every step, so ``torch.optim.lr_scheduler`` schedules work.
    """

    def __init__(self, params: Iterable[torch.Tensor], step_fn: StepFunction, lr: float,
                 **hyperparameters: object) -> None:
        super().__init__(params, dict(lr=lr, **hyperparameters))
        self.step_fn = step_fn
        self.hyperparameter_names = tuple(hyperparameters)  # schedulers add keys of their own
        self.function_state: list[dict] = [{} for _ in self.param_groups]

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> None:
        if closure is not None:
            raise ValueError("FunctionOptimizer does not take a closure")
        for group, state in zip(self.param_groups, self.function_state, strict=True):
            # like torch.optim, skip tensors without a gradient (the state is kept by position,
            # so a model should give gradients to the same tensors at every step)
            params = [p for p in group["params"] if p.grad is not None]
            grads = [p.grad for p in params]
            hyper = {name: group[name] for name in self.hyperparameter_names}
            self.step_fn(params, grads, state, lr=group["lr"], **hyper)


@dataclass
class StepRun:
    """Loss after every step of a run, the final test accuracy and the training time."""

    losses: list[float] = field(default_factory=list)
    test_accuracy: float | None = None
    seconds: float = 0.0

    def smoothed(self, window: int = 20) -> torch.Tensor:
        """Moving average of the losses over ``window`` steps (shorter at the start)."""
        losses = torch.tensor(self.losses)
        cumulative = torch.cat([torch.zeros(1), losses.cumsum(0)])
        index = torch.arange(1, len(losses) + 1)
        start = (index - window).clamp(min=0)
        return (cumulative[index] - cumulative[start]) / (index - start)

    @property
    def diverged(self) -> bool:
        """True if the run stopped on a NaN or infinite loss."""
        return bool(self.losses) and not math.isfinite(self.losses[-1])


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer,
                batches: Iterable[tuple[torch.Tensor, torch.Tensor]], steps: int,
                scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                loss_fn: Callable = nn.functional.cross_entropy) -> StepRun:
    """Train for exactly ``steps`` mini-batches (cycling over ``batches``), recording each loss.

    Stops early, with the non-finite loss recorded, if the loss becomes NaN or infinite.
    """
    run = StepRun()
    model.train()
    start = time.perf_counter()
    for inputs, labels in islice(cycle_batches(batches), steps):
        loss = loss_fn(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        run.losses.append(loss.item())
        if not torch.isfinite(loss):
            break
    run.seconds = time.perf_counter() - start
    return run


def cycle_batches(batches: Iterable) -> Iterable:
    """Iterate over ``batches`` again and again (a new shuffle each pass, if it shuffles)."""
    if isinstance(batches, list | tuple):
        return cycle(batches)

    def forever():
        while True:
            yield from batches
    return forever()
