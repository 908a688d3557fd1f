"""Chapter 6 (optimizers): loss surfaces to draw, and optimizers to run on them and on LeNet-5.

**Surfaces.** Two-parameter loss surfaces, and the paths optimizers take on them.

The surfaces are small enough to draw as contour maps, and real enough to show what each
optimizer does: a ravine (an ill-conditioned quadratic), a saddle, Rosenbrock's banana valley,
and the mean squared error of fitting a line to noisy points (a surface made of data, on which
stochastic and mini-batch gradients exist).

**Runs.** Run a plain step function as a ``torch.optim`` optimizer, and train for a fixed
number of steps while recording every loss. A step function has the signature of the chapter's
exercises, ``step(params, grads, state, lr=..., **hyperparameters)``, and updates ``params`` in
place.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import cycle, islice

import matplotlib.pyplot as plt
import torch
from torch import nn

from cnn_course.figure_translation import figure_tr
from cnn_course.messages import tr
from cnn_course.plots import legend as draw_legend

OptimizerFactory = Callable[[list[torch.Tensor]], torch.optim.Optimizer]


@dataclass(frozen=True)
class Surface:
    """A function of two parameters, with a start point and the area worth drawing."""

    name: str
    function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    start: tuple[float, float]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    minimum: tuple[float, float]
    description: str = ""

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.function(x, y)

    @property
    def divergence_limit(self) -> float:
        """Coordinates beyond this (100 times the drawn area) count as diverged."""
        return 100 * max(map(abs, (*self.x_range, *self.y_range)))


def _ravine(x, y):
    return 0.5 * x ** 2 + 10.0 * y ** 2


def _saddle(x, y):
    return 0.5 * x ** 2 - 0.5 * y ** 2 + 0.25 * y ** 4


def _rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


SURFACES: dict[str, Surface] = {
    "ravine": Surface("ravine", _ravine, (-4.0, 1.0), (-5.0, 5.0), (-1.5, 1.5), (0.0, 0.0),
                      "f = x²/2 + 10y²: curvature 1 along x, 20 along y"),
    "saddle": Surface("saddle", _saddle, (-3.0, 0.01), (-4.0, 4.0), (-2.0, 2.0), (0.0, 1.0),
                      "f = x²/2 − y²/2 + y⁴/4: a saddle at the origin, minima at y = ±1"),
    "rosenbrock": Surface("rosenbrock", _rosenbrock, (-1.5, 2.0), (-2.0, 2.0), (-1.0, 3.0),
                          (1.0, 1.0), "f = (1 − x)² + 100(y − x²)²: a curved, flat valley"),
}


@dataclass
class Trajectory:
    """Points an optimizer visited ([steps + 1, 2], start included) and the loss at each."""

    points: torch.Tensor
    losses: torch.Tensor
    diverged_at: int | None = None

    @property
    def steps(self) -> int:
        return len(self.points) - 1

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])

    def describe(self, surface: Surface | None = None) -> str:
        """One plain sentence on how the run ended."""
        if self.diverged_at is not None:
            return tr("diverged at step {step}: the steps grew instead of shrinking and the "
                      "point flew off the map", step=self.diverged_at)
        start_loss = float(self.losses[0])
        if self.final_loss > start_loss:
            return tr("after {steps} steps the loss has grown from {start:.3g} to {final:.3g}: "
                      "the steps overshoot more each time (diverging)", steps=self.steps,
                      start=start_loss, final=self.final_loss)
        if surface is None:
            return tr("after {steps} steps the loss is {final:.3g}", steps=self.steps,
                      final=self.final_loss)
        distance = math.dist(self.points[-1].tolist(), surface.minimum)
        return tr("after {steps} steps the loss is {final:.3g}, {distance:.2g} away from the "
                  "minimum", steps=self.steps, final=self.final_loss, distance=distance)


def run_on_surface(surface: Surface, make_optimizer: OptimizerFactory, steps: int,
                   start: tuple[float, float] | None = None,
                   scheduler: Callable[[torch.optim.Optimizer], object] | None = None
                   ) -> Trajectory:
    """Let an optimizer walk down ``surface`` for ``steps`` steps (in float64).

    The run stops at the first step whose point is not finite or lies beyond
    ``surface.divergence_limit``; that step is recorded in ``diverged_at`` and left out of
    ``points``, so every stored point is finite.
    """
    point = torch.tensor(start or surface.start, dtype=torch.float64, requires_grad=True)
    optimizer = make_optimizer([point])
    schedule = scheduler(optimizer) if scheduler is not None else None
    points, losses = [point.detach().clone()], []
    diverged_at = None
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        loss = surface(point[0], point[1])
        losses.append(loss.detach().clone())
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        new = point.detach().clone()
        if not torch.isfinite(new).all() or new.abs().max() > surface.divergence_limit:
            diverged_at = step
            break
        points.append(new)
    if len(losses) < len(points):  # the loss at the last point has not been computed yet
        with torch.no_grad():
            losses.append(surface(points[-1][0], points[-1][1]))
    return Trajectory(torch.stack(points), torch.stack(losses), diverged_at)


def race(surface: Surface, optimizers: dict[str, OptimizerFactory], steps: int
         ) -> dict[str, Trajectory]:
    """Run every optimizer from the same start point."""
    return {name: run_on_surface(surface, make, steps) for name, make in optimizers.items()}


ADAPTIVE = ("Adagrad", "RMSprop", "Adam")

#: Learning rates and step counts that show each surface's lesson in one picture.
SUGGESTED = {
    "ravine": dict(lr=0.05, adaptive_lr=0.1, momentum=0.9, steps=100),
    "saddle": dict(lr=0.03, adaptive_lr=0.03, momentum=0.9, steps=150),
    "rosenbrock": dict(lr=0.001, adaptive_lr=0.1, momentum=0.9, steps=300),
}


def torch_optimizers(lr: float, momentum: float = 0.9, adaptive_lr: float | None = None
                     ) -> dict[str, OptimizerFactory]:
    """The chapter's optimizers from ``torch.optim``.

    ``lr`` is for SGD, momentum and Nesterov; ``adaptive_lr`` (default: ``lr``) for Adagrad,
    RMSprop and Adam, whose learning rate is roughly a step length rather than a factor on
    the gradient.
    """
    optim = torch.optim
    a_lr = lr if adaptive_lr is None else adaptive_lr
    return {
        "SGD": lambda p: optim.SGD(p, lr=lr),
        "momentum": lambda p: optim.SGD(p, lr=lr, momentum=momentum),
        "Nesterov": lambda p: optim.SGD(p, lr=lr, momentum=momentum, nesterov=momentum > 0),
        "Adagrad": lambda p: optim.Adagrad(p, lr=a_lr),
        "RMSprop": lambda p: optim.RMSprop(p, lr=a_lr),
        "Adam": lambda p: optim.Adam(p, lr=a_lr),
    }


COLORS = {"SGD": "#7f7f7f", "momentum": "#1f77b4", "Nesterov": "#17becf", "Adagrad": "#2ca02c",
          "RMSprop": "#ff7f0e", "Adam": "#d62728", "AdamW": "#9467bd"}


def draw_contours(ax: plt.Axes, surface: Surface, resolution: int = 200) -> None:
    """Log-spaced contour lines of ``surface`` over its drawing area."""
    xs = torch.linspace(*surface.x_range, resolution, dtype=torch.float64)
    ys = torch.linspace(*surface.y_range, resolution, dtype=torch.float64)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    values = surface(grid_x, grid_y)
    # log1p of the height above the lowest drawn value spreads the lines evenly
    heights = torch.log1p(values - values.min())
    ax.contour(grid_x.numpy(), grid_y.numpy(), heights.numpy(), levels=25, cmap="Greys",
               linewidths=0.6, alpha=0.8)
    ax.plot(*surface.minimum, marker="*", color="gold", markersize=12, markeredgecolor="k",
            zorder=5)
    ax.set_xlim(*surface.x_range)
    ax.set_ylim(*surface.y_range)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def draw_trajectories(ax: plt.Axes, surface: Surface, trajectories: dict[str, Trajectory],
                      colors: dict[str, str] | None = None, legend: bool = True) -> None:
    """Contours plus one line per trajectory; a cross marks where a run diverged.

    The legend names each run by its key in ``trajectories`` (the caller's words)."""
    colors = colors or COLORS
    draw_contours(ax, surface)
    for index, (name, path) in enumerate(trajectories.items()):
        color = colors.get(name, f"C{index}")
        label = name if path.diverged_at is None else figure_tr("{name} (diverged)", name=name)
        points = path.points.numpy()
        ax.plot(points[:, 0], points[:, 1], ".-", color=color, label=label, linewidth=1.2,
                markersize=2.5)
        if path.diverged_at is not None:
            ax.plot(points[-1, 0], points[-1, 1], "x", color=color, markersize=9, mew=2)
    ax.plot(*surface.start, "ko", markersize=5)
    if legend:
        draw_legend(ax, fontsize=8, loc="best")


# ---- a surface made of data: fitting a line --------------------------------------------------

@dataclass(frozen=True)
class LineFit:
    """Fit ``y ≈ w x + b`` to points by mean squared error; the parameters are (w, b)."""

    x: torch.Tensor  # [N]
    y: torch.Tensor  # [N]

    def loss(self, w: torch.Tensor, b: torch.Tensor,
             index: torch.Tensor | None = None) -> torch.Tensor:
        """Half the mean squared error on all points, or on the points in ``index``.

        ``w`` and ``b`` may be grids of the same shape; the result has their shape.
        """
        x, y = (self.x, self.y) if index is None else (self.x[index], self.y[index])
        residual = w[..., None] * x + b[..., None] - y
        return 0.5 * (residual ** 2).mean(-1)

    def best(self) -> tuple[float, float]:
        """The exact least-squares (w, b)."""
        design = torch.stack([self.x, torch.ones_like(self.x)], 1)
        solution = torch.linalg.lstsq(design, self.y[:, None]).solution[:, 0]
        return float(solution[0]), float(solution[1])

    def surface(self) -> Surface:
        w, b = self.best()
        return Surface("line fit", self.loss, (-1.0, 3.0), (w - 3.5, w + 2.5),
                       (b - 3.0, b + 4.0), (w, b), "mean squared error of y ≈ w·x + b")

    def minibatch_path(self, batch_size: int, lr: float, steps: int, seed: int = 0,
                       start: tuple[float, float] | None = None,
                       scheduler: Callable[[torch.optim.Optimizer], object] | None = None
                       ) -> Trajectory:
        """Plain SGD on (w, b), each step on ``batch_size`` points drawn without replacement
        (a new shuffle each epoch); ``batch_size = len(x)`` is full-batch gradient descent."""
        generator = torch.Generator().manual_seed(seed)
        n = len(self.x)
        order: list[torch.Tensor] = []

        def next_batch() -> torch.Tensor:
            nonlocal order
            if not order:
                order = list(torch.randperm(n, generator=generator).split(batch_size))
            return order.pop(0)

        surface = self.surface()
        batch_surface = Surface(surface.name, lambda w, b: self.loss(w, b, next_batch()),
                                surface.start, surface.x_range, surface.y_range,
                                surface.minimum)
        path = run_on_surface(batch_surface, lambda p: torch.optim.SGD(p, lr=lr), steps,
                              start=start, scheduler=scheduler)
        with torch.no_grad():  # report the loss on all points, not on the last batch
            path.losses = self.loss(path.points[:, 0], path.points[:, 1])
        return path


def line_fit_problem(n: int = 256, seed: int = 0) -> LineFit:
    """Noisy points around y = 2x − 1, with x centred at 1.5 so that w and b interact."""
    generator = torch.Generator().manual_seed(seed)
    x = 1.5 + torch.randn(n, generator=generator, dtype=torch.float64)
    y = 2.0 * x - 1.0 + 0.7 * torch.randn(n, generator=generator, dtype=torch.float64)
    return LineFit(x, y)


# ---- runs: step functions as optimizers, training for a fixed number of steps -----------------

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
            raise ValueError(tr("FunctionOptimizer does not take a closure"))
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
