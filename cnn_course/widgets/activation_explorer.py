"""The activation-function explorer of Chapter 2.

Pick a function, an input range and (for Leaky ReLU) the negative slope; the explorer plots the
function and its derivative, which it takes from autograd, and writes a readout: the value and
derivative at a chosen point, the output range, and how much of the range is flat (saturated).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable

import ipywidgets as W
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import display

from cnn_course.figure_translation import figure_tr, set_title
from cnn_course.messages import tr

ActivationFn = Callable[[torch.Tensor, float], torch.Tensor]

ACTIVATIONS: dict[str, ActivationFn] = {
    "ReLU": lambda x, slope: torch.relu(x),
    "Leaky ReLU": lambda x, slope: F.leaky_relu(x, slope),
    "sigmoid": lambda x, slope: torch.sigmoid(x),
    "tanh": lambda x, slope: torch.tanh(x),
    "GELU": lambda x, slope: F.gelu(x),
}
FLAT = 0.01  # a derivative below this in size counts as saturated


def function_and_derivative(fn: ActivationFn, x: torch.Tensor, slope: float
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) and f'(x) on a 1-D grid ``x`` (the derivative by autograd)."""
    leaf = x.detach().clone().requires_grad_(True)
    y = fn(leaf, slope)
    if not isinstance(y, torch.Tensor) or y.shape != leaf.shape:
        raise ValueError(tr("the function should return a tensor of shape {expected}, got "
                            "{type_name} {shape}", expected=tuple(leaf.shape),
                            type_name=type(y).__name__, shape=tuple(getattr(y, "shape", ()))))
    if not y.requires_grad:  # the output does not depend on x (a constant function)
        return y.detach(), torch.zeros_like(x)
    (dy,) = torch.autograd.grad(y.sum(), leaf, allow_unused=True)
    return y.detach(), (torch.zeros_like(x) if dy is None else dy.detach())


def parse_number(text: str) -> float:
    """Read one finite number typed by a learner, such as ``2``, ``-0.5`` or ``1e3``."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(tr("{text!r} is not a number; type one, such as 1.5 or -3",
                            text=text)) from None
    if not math.isfinite(value):
        raise ValueError(tr("type a finite number (inf and nan cannot be plotted)"))
    return value


class ActivationExplorer:
    """Controls for an activation function, its plot, its derivative and a numeric readout.

    ``explorer.controls[name].value = ...`` drives it from code; ``explorer.x``, ``.y`` and
    ``.dy`` hold the plotted arrays, ``explorer.readout.value`` the displayed text and
    ``explorer.error`` the last problem message (None when all is well).
    """

    def __init__(self, functions: dict[str, ActivationFn] | None = None,
                 points: int = 401) -> None:
        self.functions = dict(ACTIVATIONS)
        self.functions.update(functions or {})
        self.points = points
        slider = dict(continuous_update=False, style={"description_width": "110px"})
        self.controls: dict[str, W.ValueWidget] = {
            "function": W.Dropdown(options=list(self.functions), value="ReLU",
                                   description=tr("function")),
            "x_range": W.FloatRangeSlider(value=(-5.0, 5.0), min=-20.0, max=20.0, step=0.5,
                                          description=tr("input range"), **slider),
            "slope": W.FloatSlider(0.1, min=0.0, max=1.0, step=0.01,
                                   description=tr("Leaky ReLU slope"), **slider),
            "probe": W.Text("1.0", description=tr("evaluate at x ="),
                            style={"description_width": "110px"}),
        }
        self.readout = W.HTML()
        self.plot_view = W.Output()
        self.x: torch.Tensor | None = None
        self.y: torch.Tensor | None = None
        self.dy: torch.Tensor | None = None
        self.error: str | None = None
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        c = self.controls
        self.widget = W.VBox([W.HBox([W.VBox([c["function"], c["probe"]]),
                                      W.VBox([c["x_range"], c["slope"]])]),
                              self.readout, self.plot_view])
        self.update()

    def _ipython_display_(self) -> None:
        display(self.widget)

    def _on_change(self, change: dict) -> None:
        self.update()

    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def update(self) -> None:
        """Recompute from the controls; a problem becomes a plain message, never a traceback."""
        v = self.values()
        name, (low, high), slope = v["function"], v["x_range"], float(v["slope"])
        self.controls["slope"].disabled = name != "Leaky ReLU"
        if not high > low:
            self._show_problem(tr("the input range [{low:g}, {high:g}] is empty; drag its two "
                                  "ends apart", low=low, high=high))
            return
        self.x = torch.linspace(low, high, self.points)
        try:
            self.y, self.dy = function_and_derivative(self.functions[name], self.x, slope)
        except Exception as problem:  # a learner's function may fail in any way
            self._show_problem(tr("{name} could not be evaluated: {error}: {message}",
                                  name=name, error=type(problem).__name__, message=problem))
            return
        self.error = None
        try:
            probe_text = self._probe_text(name, slope, parse_number(v["probe"]))
        except ValueError as problem:
            self.error = str(problem)
            probe_text = f"<span class='activation-explorer-problem'>{html.escape(str(problem))}"
            probe_text += "</span>"
        flat = (self.dy.abs() < FLAT).float().mean().item()
        zero = (self.y == 0).float().mean().item()
        self.readout.value = (
            f"<div class='activation-explorer-readout'>{probe_text}<br>"
            + tr("on [{low:g}, {high:g}]: output from {y_min:.4g} to {y_max:.4g}; derivative "
                 "from {dy_min:.4g} to {dy_max:.4g}", low=low, high=high,
                 y_min=self.y.min().item(), y_max=self.y.max().item(),
                 dy_min=self.dy.min().item(), dy_max=self.dy.max().item()) + "<br>"
            + tr("flat (|f'| &lt; {limit}): {flat} of the range; output exactly 0: {zero}",
                 limit=FLAT, flat=f"<b>{flat:.0%}</b>", zero=f"<b>{zero:.0%}</b>") + "</div>")
        self._draw(name, slope)

    def _probe_text(self, name: str, slope: float, at: float) -> str:
        y, dy = function_and_derivative(self.functions[name], torch.tensor([at]), slope)
        return f"f({at:g}) = <b>{y.item():.4f}</b>, f'({at:g}) = <b>{dy.item():.4f}</b>"

    def _show_problem(self, message: str) -> None:
        self.error = message
        self.y = self.dy = None
        self.readout.value = (f"<div class='activation-explorer-problem'><b>"
                              f"{tr('Cannot plot:')}</b> {html.escape(message)}</div>")
        self.plot_view.clear_output()

    def _draw(self, name: str, slope: float) -> None:
        label = figure_tr("{name} (slope {slope:g})", name=name, slope=slope) \
            if name == "Leaky ReLU" else name
        self.plot_view.clear_output(wait=True)
        with self.plot_view:
            fig, axes = plt.subplots(1, 2, figsize=(8, 3))
            derivative = figure_tr("derivative of {function}", function=label)
            for ax, values, title in [(axes[0], self.y, label), (axes[1], self.dy, derivative)]:
                ax.plot(self.x.numpy(), values.numpy(), color="tab:blue")
                ax.axhline(0, color="grey", linewidth=0.6)
                ax.axvline(0, color="grey", linewidth=0.6)
                set_title(ax, title, fontsize=10)
                ax.set_xlabel("x")
            fig.tight_layout()
            display(fig)
            plt.close(fig)


def explore_activations(functions: dict[str, ActivationFn] | None = None) -> ActivationExplorer:
    """Show the explorer in a notebook; ``functions`` adds your own, as ``fn(x, slope)``."""
    return ActivationExplorer(functions)
