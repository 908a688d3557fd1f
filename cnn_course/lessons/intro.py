"""The landing page: the picture of the course's path, and the benchmark figures it quotes
(read from the benchmarks' results files, never typed)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from cnn_course.figure_translation import figure_tr, figure_translated, use_cjk_font
from cnn_course.lessons.overview import date_span
from cnn_course.messages import N_, tr

CHAPTERS = [  # (number, title, column, row, colour)
    (1, N_("Convolution"), 0, 1, "#1f77b4"), (2, N_("Activation\nfunctions"), 1, 1, "#1f77b4"),
    (3, N_("Pooling"), 2, 1, "#1f77b4"), (4, N_("Fully connected\nlayers"), 3, 1, "#1f77b4"),
    (5, N_("Backpropagation"), 1, 0, "#2ca02c"), (6, N_("Optimizers"), 2, 0, "#2ca02c"),
    (7, N_("LeNet-5\non MNIST"), 4, 1, "#d62728"), (8, N_("A CNN on\nCIFAR-10"), 4, 0, "#d62728"),
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
        use_cjk_font(ax.text(x, y, f"{number}. {figure_translated(title)}", ha="center",
                             va="center", fontsize=10))
    for start, end in LINKS:
        (x0, y0), (x1, y1) = centres[start], centres[end]
        if x0 == x1:  # vertical: from the bottom edge to the top edge
            tail, head = (x0, y0 - 0.58), (x1, y1 + 0.58)
        else:         # rightward: from the right edge to the left edge
            tail, head = (x0 + 0.98, y0), (x1 - 0.98, y1 - 0.25 * (y1 - y0))
        ax.add_patch(FancyArrowPatch(tail, head, arrowstyle="-|>", mutation_scale=14,
                                     shrinkA=0, shrinkB=0, color="#555555"))
    for x, y, text, colour in [(-0.9, 2.35, figure_tr("the parts of a CNN"), "#1f77b4"),
                               (1.3, -0.85, figure_tr("how a CNN learns"), "#2ca02c"),
                               (7.9, 2.35, figure_tr("complete networks"), "#d62728")]:
        use_cjk_font(ax.text(x, y, text, color=colour, fontsize=10))
    ax.set_xlim(-1.1, 9.9)
    ax.set_ylim(-1.0, 2.6)
    ax.axis("off")
    fig.tight_layout()
    return fig


#: The networks that Chapter 8's notebook trains, as the CIFAR-10 benchmark names its runs.
CHAPTER8_RUNS = ("published", "relu", "improved")


def lenet_figures(results: dict) -> dict[str, str]:
    """What the landing page says about Chapter 7, from ``load_results("lenet5_mnist", "cpu")``:
    the test accuracy reached, after how many epochs and seconds of training, where and when."""
    if results is None or "time_to_target" not in results:
        raise ValueError(tr("no LeNet-5 results: run `python benchmarks/lenet5_mnist.py` first"))
    target = results["time_to_target"]
    reached = target.get("reached")
    if not reached:
        raise ValueError(tr("the LeNet-5 benchmark never reached its target accuracy: the "
                            "landing page has no time to quote"))
    epoch = reached["epoch"]
    return {"intro_lenet_acc": f"{target['test_acc'][epoch - 1]:.2%}",
            "intro_lenet_epochs": str(epoch),
            "intro_lenet_seconds": f"{reached['training_seconds']:.1f}",
            "intro_lenet_machine": target["measured"]["machine"],
            "intro_lenet_date": target["measured"]["date"]}


def cifar_figures(results: dict) -> dict[str, str]:
    """What the landing page says about Chapter 8, from ``load_results("cifar10", "cpu")``: how
    long the benchmark took to train the chapter's three networks, for how many epochs, where
    and when."""
    runs = (results or {}).get("accuracy", {}).get("runs", {})
    missing = [name for name in CHAPTER8_RUNS if name not in runs]
    if missing:
        raise ValueError(tr("the CIFAR-10 results lack the run(s) {missing}: run "
                            "`python benchmarks/cifar10.py --parts accuracy` to measure them",
                            missing=missing))
    chosen = [runs[name] for name in CHAPTER8_RUNS]
    machines = sorted({run["measured"]["machine"] for run in chosen})
    if len(machines) != 1:
        raise ValueError(tr("Chapter 8's networks were measured on different machines "
                            "({machines}): their times cannot be added up", machines=machines))
    epochs = [str(run["epochs"]) for run in chosen]
    seconds = sum(run["train_seconds"] for run in chosen)
    return {"intro_cifar_minutes": f"{seconds / 60:.0f}",
            "intro_cifar_epochs": " + ".join(epochs),  # words-free: the Chinese page glues it too
            "intro_cifar_machine": machines[0],
            "intro_cifar_dates": date_span([run["measured"]["date"] for run in chosen])}
