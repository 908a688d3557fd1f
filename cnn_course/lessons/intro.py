"""The picture of the course's path on the landing page."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

CHAPTERS = [  # (number, title, column, row, colour)
    (1, "Convolution", 0, 1, "#1f77b4"), (2, "Activation\nfunctions", 1, 1, "#1f77b4"),
    (3, "Pooling", 2, 1, "#1f77b4"), (4, "Fully connected\nlayers", 3, 1, "#1f77b4"),
    (5, "Backpropagation", 1, 0, "#2ca02c"), (6, "Optimizers", 2, 0, "#2ca02c"),
    (7, "LeNet-5\non MNIST", 4, 1, "#d62728"), (8, "A CNN on\nCIFAR-10", 4, 0, "#d62728"),
]
LINKS = [(1, 2), (2, 3), (3, 4), (4, 7), (5, 6), (6, 7), (7, 8)]


def draw_course_map() -> plt.Figure:
    """Building blocks (blue), how networks learn (green), the two capstones (red)."""
    fig, ax = plt.subplots(figsize=(10, 3.4))
    centres = {}
    for number, title, column, row, colour in CHAPTERS:
        x, y = column * 2.2, row * 1.6
        centres[number] = (x, y)
        ax.add_patch(FancyBboxPatch((x - 0.9, y - 0.5), 1.8, 1.0, boxstyle="round,pad=0.05",
                                    facecolor=colour, alpha=0.15, edgecolor=colour))
        ax.text(x, y, f"{number}. {title}", ha="center", va="center", fontsize=10)
    for start, end in LINKS:
        (x0, y0), (x1, y1) = centres[start], centres[end]
        if x0 == x1:  # vertical: from the bottom edge to the top edge
            tail, head = (x0, y0 - 0.58), (x1, y1 + 0.58)
        else:         # rightward: from the right edge to the left edge
            tail, head = (x0 + 0.98, y0), (x1 - 0.98, y1 - 0.25 * (y1 - y0))
        ax.add_patch(FancyArrowPatch(tail, head, arrowstyle="-|>", mutation_scale=14,
                                     shrinkA=0, shrinkB=0, color="#555555"))
    ax.text(-0.9, 2.35, "the parts of a CNN", color="#1f77b4", fontsize=10)
    ax.text(1.3, -0.85, "how a CNN learns", color="#2ca02c", fontsize=10)
    ax.text(7.9, 2.35, "complete networks", color="#d62728", fontsize=10)
    ax.set_xlim(-1.1, 9.9)
    ax.set_ylim(-1.0, 2.6)
    ax.axis("off")
    fig.tight_layout()
    return fig
