"""Chapter 5 (backpropagation): figures (a computational graph with its forward values and
backward gradients, the convergence plot of a learned kernel) and the tiny CNN that the
chapter trains by hand (its exercise ``cnn_train_step`` and the checker use it)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.patches import FancyArrowPatch

from cnn_course.figure_translation import figure_tr, set_title
from cnn_course.plots import label_axes

# L = (w * x + b)^2 at x = 2, w = -3, b = 1: node -> (position, name, formula, value, dL/dnode)
_NODES = {
    "x": ((0.0, 2.8), "x", "x", 2.0, 30.0),
    "w": ((0.0, 0.2), "w", "w", -3.0, -20.0),
    "mul": ((3.0, 1.6), "u", "u = w·x", -6.0, -10.0),
    "b": ((3.0, -1.0), "b", "b", 1.0, -10.0),
    "add": ((6.0, 0.3), "v", "v = u + b", -5.0, -10.0),
    "square": ((9.0, 0.3), "L", "L = v²", 25.0, 1.0),
}
# start, end, local derivative, label offset (dx, dy) from the edge's midpoint
_EDGES = [("x", "mul", "∂u/∂x = w = −3", (0.2, 0.35)),
          ("w", "mul", "∂u/∂w = x = 2", (0.1, -0.4)),
          ("mul", "add", "∂v/∂u = 1", (0.35, 0.3)),
          ("b", "add", "∂v/∂b = 1", (0.3, -0.45)),
          ("add", "square", "∂L/∂v = 2v = −10", (0.0, 0.4))]
_RADIUS = 0.62


def draw_chain_rule_graph(ax: plt.Axes | None = None) -> plt.Axes:
    """Draw ``L = (w x + b)^2``: forward values (black) and gradients dL/d(node) (red)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 4.2))
    for start, end, local, (dx, dy) in _EDGES:
        (x0, y0), (x1, y1) = _NODES[start][0], _NODES[end][0]
        length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        ax.add_patch(FancyArrowPatch((x0 + _RADIUS * ux, y0 + _RADIUS * uy),
                                     (x1 - _RADIUS * ux, y1 - _RADIUS * uy), arrowstyle="-|>",
                                     mutation_scale=14, color="#555555"))
        ax.text((x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy, local, fontsize=9, color="#1f5fa8",
                ha="center", va="center")
    for (x, y), name, formula, value, grad in _NODES.values():
        ax.add_patch(plt.Circle((x, y), _RADIUS, facecolor="white", edgecolor="#333333"))
        ax.text(x, y + 0.2, formula, ha="center", va="center", fontsize=8)
        ax.text(x, y - 0.2, f"{value:g}", ha="center", va="center", fontsize=11,
                fontweight="bold")
        ax.text(x, y - _RADIUS - 0.25, f"∂L/∂{name} = {grad:g}", ha="center", va="center",
                fontsize=9, color="#c0392b")
    ax.set_xlim(-0.8, 9.8)
    ax.set_ylim(-2.1, 3.6)
    ax.set_aspect("equal")
    ax.axis("off")
    set_title(ax, figure_tr("forward values in black (left to right), gradients in red (right "
                            "to left), local derivatives in blue"), fontsize=10)
    return ax


def plot_kernel_error(errors: Sequence[float], ax: plt.Axes | None = None,
                      title: str | None = None) -> plt.Axes:
    """Largest absolute difference between the learned and the true kernel, per step (log y).

    ``title`` defaults to "learning a Sobel kernel", in the reader's language."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    ax.semilogy(range(len(errors)), errors)
    label_axes(ax, figure_tr("gradient-descent step"), "max |w - w_true|",
               figure_tr("learning a Sobel kernel") if title is None else title)
    ax.grid(alpha=0.3, which="both")
    return ax


# ---- the tiny CNN trained by hand -----------------------------------------------------------

def init_tiny_cnn(in_channels: int, height: int, width: int, channels: int, classes: int,
                  generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
                  ) -> dict[str, torch.Tensor]:
    """Random parameters for conv 3x3 (padding 1) -> ReLU -> flatten -> linear.

    conv_w [channels, in_channels, 3, 3], conv_b [channels], fc_w [classes,
    channels*height*width], fc_b [classes]; scaled as PyTorch's default layers (uniform in
    +-1/sqrt(fan_in)).
    """
    def uniform(*shape: int, fan_in: int) -> torch.Tensor:
        bound = fan_in ** -0.5
        return (torch.rand(*shape, generator=generator, dtype=dtype) * 2 - 1) * bound

    features = channels * height * width
    return {"conv_w": uniform(channels, in_channels, 3, 3, fan_in=in_channels * 9),
            "conv_b": uniform(channels, fan_in=in_channels * 9),
            "fc_w": uniform(classes, features, fan_in=features),
            "fc_b": uniform(classes, fan_in=features)}


def tiny_cnn_logits(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The tiny CNN's forward pass. x: [N, C_in, H, W]. Returns logits [N, classes]."""
    hidden = F.conv2d(x, params["conv_w"], params["conv_b"], padding=1).clamp(min=0)
    return hidden.flatten(1) @ params["fc_w"].T + params["fc_b"]
