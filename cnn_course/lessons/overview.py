"""The overview page (a CNN at a glance): one image's path through LeNet-5, drawn from the real
model, a multi-channel convolution worked out on small whole numbers, and what Chapter 8's
benchmark measured about nonlinearity (read from its results, never typed)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import FancyArrowPatch, Rectangle
from torch import nn

from cnn_course.figure_translation import figure_tr, figure_translated, use_cjk_font
from cnn_course.messages import N_, tr
from cnn_course.summary import pad, text_width

#: LeNet-5's attribute names -> the names the 1998 paper gives its layers.
PAPER_NAMES = {"c1": "C1", "s2": "S2", "c3": "C3", "s4": "S4", "c5": "C5", "f6": "F6",
               "output": "output"}

COLOURS = {"input": "#7f7f7f", "Conv2d": "#1f77b4", "MaxPool2d": "#2ca02c",
           "AvgPool2d": "#2ca02c", "Flatten": "#9467bd", "Linear": "#ff7f0e", "output": "#d62728"}


#: How the diagram names the step that makes a stage, by the class of the module.
STEP_NAMES = {"Conv2d": N_("conv"), "MaxPool2d": N_("max pool"), "AvgPool2d": N_("avg pool"),
              "Flatten": N_("flatten"), "Linear": N_("linear")}
#: The diagram's stage labels that are words (the others are the paper's names, C1 to F6).
WORD_LABELS = (N_("input"), N_("flatten"), N_("output"))


@dataclass(frozen=True)
class Stage:
    """What one layer of a forward pass returned, for one image."""

    name: str                 # the module's name in the model ("c1", "act1", ...); "input" first
    kind: str                 # a short description made from the module, e.g. "Conv2d 5x5, pad 2"
    shape: tuple[int, ...]    # the output's shape without the batch dimension
    params: int               # parameters owned by this layer itself


def describe_layer(module: nn.Module) -> str:
    """A short description of a layer, read from the module's own settings."""
    kind = type(module).__name__
    if isinstance(module, nn.Conv2d):
        k, pad = module.kernel_size, module.padding
        text = f"{kind} {k[0]}x{k[1]}, {module.in_channels}->{module.out_channels}"
        return text + (f", pad {pad[0]}" if pad != (0, 0) else "")
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        return f"{kind} {module.kernel_size}x{module.kernel_size}, stride {module.stride}"
    if isinstance(module, nn.Linear):
        return f"{kind} {module.in_features}->{module.out_features}"
    return kind


def trace_stages(model: nn.Module, image: torch.Tensor) -> list[Stage]:
    """Run ``image`` (one sample, [C, H, W] or [1, C, H, W]) through ``model`` and record every
    leaf layer's output shape and own parameter count, in the order the layers ran.

    The first stage is the input itself. The model's mode (train or eval) is left as it was."""
    batch = image if image.dim() == 4 else image.unsqueeze(0)
    if batch.shape[0] != 1:
        raise ValueError(tr("one image please, got a batch of {n}", n=batch.shape[0]))
    stages = [Stage("input", "image", tuple(batch.shape[1:]), 0)]
    handles = []
    for name, module in model.named_modules():
        if list(module.children()):
            continue  # containers: their leaves are recorded instead

        def hook(module: nn.Module, inputs, output, name: str = name) -> None:
            params = sum(p.numel() for p in module.parameters(recurse=False))
            stages.append(Stage(name, describe_layer(module), tuple(output.shape[1:]), params))

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return stages


def format_shape(shape: tuple[int, ...]) -> str:
    """``(6, 28, 28)`` -> ``"6@28x28"`` (channels @ height x width); ``(120,)`` -> ``"120"``."""
    if len(shape) == 3:
        return f"{shape[0]}@{shape[1]}x{shape[2]}"
    return " x ".join(map(str, shape))


def stage_table(stages: list[Stage]) -> str:
    """The stages as a text table, one line per layer, with the total parameter count."""
    header = (pad(tr("layer"), 8) + pad(tr("what it is"), 28) + pad(tr("output shape"), 14, ">")
              + pad(tr("parameters"), 12, ">"))
    lines = [header, "-" * text_width(header)]
    for stage in stages:
        lines.append(f"{stage.name:<8}{stage.kind:<28}{format_shape(stage.shape):>14}"
                     f"{stage.params:>12,}")
    lines.append("-" * text_width(header))
    lines.append(f"{pad(tr('total'), 50)}{sum(s.params for s in stages):>12,}")
    return "\n".join(lines)


def diagram_stages(stages: list[Stage]) -> list[tuple[str, Stage, str]]:
    """The stages a LeNet-5 diagram shows: ``(label, stage, how it was made)``.

    Activations change no shape, so they are folded into the step that leads to the next
    drawn stage (e.g. ``"conv\\n5×5\\n+ ReLU"``); the flatten step is kept, as a vector."""
    shown: list[tuple[str, Stage, str]] = []
    for stage in stages:
        label = PAPER_NAMES.get(stage.name, "flatten" if stage.kind == "Flatten" else None)
        if stage.name == "input":
            label = "input"
        if label is None:  # an activation: note it on the step that produced this stage
            if shown:
                previous_label, previous, made = shown[-1]
                shown[-1] = (previous_label, previous, f"{made}\n+ {stage.kind}")
            continue
        shown.append((label, stage, "" if label == "input" else _step_name(stage.kind)))
    return shown


def _step_name(kind: str) -> str:
    """``"Conv2d 5x5, 1->6, pad 2"`` -> ``"conv\n5×5"``; ``"Linear 400->120"`` -> ``"linear"``."""
    words = kind.replace(",", "").split()
    name = STEP_NAMES.get(words[0], words[0])
    if len(words) > 1 and "x" in words[1]:
        name += "\n" + words[1].replace("x", "×")
    return name


def _stack(ax: plt.Axes, x: float, y_mid: float, side: float, count: int, colour: str,
           step: float) -> float:
    """Draw ``count`` overlapping squares from the back to the front; return their width."""
    bottom = y_mid - side / 2
    for index in range(count):
        ax.add_patch(Rectangle((x + index * step, bottom + index * step), side, side,
                               facecolor=colour, alpha=0.25 + 0.5 * (index == count - 1),
                               edgecolor="black", linewidth=0.6))
    return side + (count - 1) * step


def draw_lenet_diagram(stages: list[Stage], image: torch.Tensor | None = None,
                       max_maps: int = 8) -> plt.Figure:
    """LeNet-5 as stacked feature maps and vectors, from ``trace_stages(model, image)``.

    A stage of shape [C, H, W] is drawn as min(C, ``max_maps``) squares whose side is
    proportional to H; a vector of n numbers as a bar whose height grows with log(n) (not to
    scale). ``image`` ([H, W] or [1, H, W]) is shown inside the input square if given."""
    shown = diagram_stages(stages)
    fig, ax = plt.subplots(figsize=(13, 3.5))
    scale, step, gap, y_mid = 0.1, 0.16, 1.35, 0.0
    x = 0.0
    lefts, rights = [], []
    for label, stage, _ in shown:
        kind = "input" if label == "input" else ("output" if label == "output"
                                                 else stage.kind.split()[0].split(",")[0])
        colour = COLOURS.get(kind, "#8c564b")
        if len(stage.shape) == 3:
            channels, height, _ = stage.shape
            side = height * scale
            width = _stack(ax, x, y_mid, side, min(channels, max_maps), colour, step)
            if image is not None and label == "input":
                picture = image.detach().cpu().float().reshape(stage.shape[-2:])
                ax.imshow(picture.numpy(), cmap="gray", extent=(x, x + side, y_mid - side / 2,
                                                                y_mid + side / 2), zorder=3)
            note = format_shape(stage.shape).replace("x", "×")
            if channels > max_maps:
                note += "\n" + figure_tr("({drawn} of {channels} drawn)", drawn=max_maps,
                                         channels=channels)
        else:
            length = stage.shape[0]
            height = 0.5 + 0.275 * math.log2(length)
            width = 0.28
            ax.add_patch(Rectangle((x, y_mid - height / 2), width, height, facecolor=colour,
                                   alpha=0.6, edgecolor="black", linewidth=0.6))
            note = (figure_tr("{count}\nclass scores", count=length) if label == "output"
                    else str(length))
        drawn = figure_translated(label) if label in WORD_LABELS else label
        use_cjk_font(ax.text(x + width / 2, 2.45, drawn, ha="center", va="bottom", fontsize=11,
                             fontweight="bold", color=colour))
        use_cjk_font(ax.text(x + width / 2, -2.05, note, ha="center", va="top", fontsize=9))
        lefts.append(x)
        rights.append(x + width)
        x += width + gap
    for index in range(1, len(shown)):
        start, end = rights[index - 1] + 0.08, lefts[index] - 0.08
        ax.add_patch(FancyArrowPatch((start, y_mid), (end, y_mid), arrowstyle="-|>",
                                     mutation_scale=11, color="#444444", zorder=4))
        step, *details = shown[index][2].split("\n")   # "conv", "5×5", "+ ReLU"
        use_cjk_font(ax.text((start + end) / 2, 1.65, "\n".join([figure_translated(step),
                                                                 *details]),
                             ha="center", va="center", fontsize=7.5, color="#444444"))
    ax.set_xlim(-0.3, x - gap + 0.3)
    ax.set_ylim(-2.9, 2.95)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    return fig


# ---- a multi-channel convolution, on small whole numbers ---------------------------------

@dataclass(frozen=True)
class MultiChannelExample:
    """A 3-channel 4x4 input, 2 kernels of 3 channels x 3x3, and what they compute.

    ``per_channel[o, c]`` is input channel c correlated with kernel slice ``weight[o, c]``
    (no bias); ``output[o]`` is their sum over c plus ``bias[o]``. Both are computed here with
    plain loops, so that a test can compare them with ``F.conv2d``."""

    x: torch.Tensor            # [C_in, H, W]
    weight: torch.Tensor       # [C_out, C_in, k, k]
    bias: torch.Tensor         # [C_out]
    per_channel: torch.Tensor  # [C_out, C_in, H - k + 1, W - k + 1]
    output: torch.Tensor       # [C_out, H - k + 1, W - k + 1]


def multichannel_example(seed: int = 5, size: int = 4, kernel_size: int = 3,
                         in_channels: int = 3, out_channels: int = 2) -> MultiChannelExample:
    """Small whole-number inputs (0 to 2) and weights (-1 to 1), so every sum is exact."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 3, (in_channels, size, size), generator=generator).float()
    weight = torch.randint(-1, 2, (out_channels, in_channels, kernel_size, kernel_size),
                           generator=generator).float()
    bias = torch.randint(-2, 3, (out_channels,), generator=generator).float()
    out = size - kernel_size + 1
    per_channel = torch.zeros(out_channels, in_channels, out, out)
    for o in range(out_channels):
        for c in range(in_channels):
            for i in range(out):
                for j in range(out):
                    window = x[c, i:i + kernel_size, j:j + kernel_size]
                    per_channel[o, c, i, j] = (window * weight[o, c]).sum()
    output = per_channel.sum(dim=1) + bias[:, None, None]
    return MultiChannelExample(x, weight, bias, per_channel, output)


CHANNEL_COLOURS = ("#d62728", "#2ca02c", "#1f77b4")  # drawn like the red, green, blue planes


def _grid(ax: plt.Axes, values: torch.Tensor, x0: float, y0: float, colour: str,
          window: tuple[int, int] | None = None, fontsize: float = 9) -> None:
    """Draw a 2-D tensor as cells with their numbers, top-left corner at (x0, y0); the cells
    of ``window`` (rows, cols from the top-left) are shaded darker."""
    rows, cols = values.shape
    for i in range(rows):
        for j in range(cols):
            inside = window is not None and i < window[0] and j < window[1]
            ax.add_patch(Rectangle((x0 + j, y0 - i - 1), 1, 1, facecolor=colour,
                                   alpha=0.45 if inside else 0.12, edgecolor="black",
                                   linewidth=0.6))
            ax.text(x0 + j + 0.5, y0 - i - 0.5, f"{values[i, j].item():g}", ha="center",
                    va="center", fontsize=fontsize)
    if window is not None:
        ax.add_patch(Rectangle((x0, y0 - window[0]), window[1], window[0], fill=False,
                               edgecolor="black", linewidth=2))


def _term(value: torch.Tensor) -> str:
    """A number for a written sum: negative ones in brackets, with a true minus sign."""
    number = value.item()
    return f"(−{-number:g})" if number < 0 else f"{number:g}"


def draw_multichannel_conv(example: MultiChannelExample) -> plt.Figure:
    """Top: how ONE output map is made from a 3-channel input (one kernel slice per channel,
    per-channel results summed, plus the bias). Bottom: two kernels make two output maps."""
    x, weight, bias = example.x, example.weight, example.bias
    c_in, size = x.shape[0], x.shape[-1]
    k, out = weight.shape[-1], example.output.shape[-1]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 9.6),
                                      gridspec_kw={"height_ratios": [3.2, 1.5]})
    row_height = size + 1.3
    x_kernel, x_part = size + 1.4, size + k + 2.8
    x_out = x_part + out + 3.6
    y_centre = -(c_in * row_height - 1.3) / 2
    for c in range(c_in):
        y0 = -c * row_height
        colour = CHANNEL_COLOURS[c % len(CHANNEL_COLOURS)]
        _grid(top, x[c], 0, y0, colour, window=(k, k))
        use_cjk_font(top.text(-0.4, y0 - size / 2, figure_tr("channel {c}", c=c), ha="right",
                              va="center", fontsize=9))
        top.text(size + 0.7, y0 - size / 2, "⋆", ha="center", va="center", fontsize=16)
        _grid(top, weight[0, c], x_kernel, y0 - (size - k) / 2, colour)
        top.text(x_kernel + k + 0.7, y0 - size / 2, "=", ha="center", va="center", fontsize=14)
        _grid(top, example.per_channel[0, c], x_part, y0 - (size - out) / 2, colour,
              window=(1, 1))
        top.add_patch(FancyArrowPatch((x_part + out + 0.2, y0 - size / 2),
                                      (x_out - 1.5, y_centre), arrowstyle="-|>",
                                      mutation_scale=10, color="#555555"))
    top.text(x_out - 0.9, y_centre, "Σ", ha="center", va="center", fontsize=16)
    _grid(top, example.output[0], x_out, y_centre + out / 2, "#7f7f7f", window=(1, 1))
    parts = " + ".join(_term(example.per_channel[0, c, 0, 0]) for c in range(c_in))
    use_cjk_font(top.text(x_out + out / 2, y_centre - out / 2 - 0.6,
                          figure_tr("top-left value:\n{parts}\n+ bias {bias} = {value}",
                                    parts=parts, bias=_term(bias[0]),
                                    value=f"{example.output[0, 0, 0].item():g}"),
                          ha="center", va="top", fontsize=9))
    use_cjk_font(top.text(x_out + out / 2, y_centre + out / 2 + 0.5,
                          figure_tr("output map {o}", o=0), ha="center", va="bottom",
                          fontsize=9))
    heading = -0.2 + 0.9
    for column, text in [
            (size / 2, figure_tr("input, {c_in} channels of {size}×{size}", c_in=c_in,
                                 size=size)),
            (x_kernel + k / 2, figure_tr("kernel {o}:\none {k}×{k} slice\nper channel", o=0,
                                         k=k)),
            (x_part + out / 2, figure_tr("sum of\nproducts,\nper channel"))]:
        use_cjk_font(top.text(column, heading, text, ha="center", va="bottom", fontsize=9))
    top.set_xlim(-2.4, x_out + out + 1.6)
    top.set_ylim(-c_in * row_height + 0.9, 2.0)
    top.set_aspect("equal")
    top.axis("off")

    c_out = weight.shape[0]
    step = 0.35
    for c in range(c_in):  # the input, as a stack of its channels
        bottom.add_patch(Rectangle((c * step, -c * step), size * 0.5, size * 0.5,
                                   facecolor=CHANNEL_COLOURS[c % 3], alpha=0.35,
                                   edgecolor="black", linewidth=0.6))
    use_cjk_font(bottom.text(1.3, -c_in * step - 0.5,
                             figure_tr("input\n{c_in}@{size}×{size}", c_in=c_in, size=size),
                             ha="center", va="top", fontsize=9))
    for o in range(c_out):
        y = 1.4 - o * 3.0
        for c in range(c_in):  # kernel o, as a stack of its slices
            bottom.add_patch(Rectangle((6 + c * 0.25, y - 0.7 - c * 0.25), 1.2, 1.2,
                                       facecolor=CHANNEL_COLOURS[c % 3], alpha=0.35,
                                       edgecolor="black", linewidth=0.6))
        label = figure_tr("kernel {o}, bias {bias}", o=o,
                          bias=f"{bias[o].item():g}".replace("-", "−"))
        use_cjk_font(bottom.text(9.15, y - 0.15, label, ha="center", va="bottom", fontsize=8))
        bottom.add_patch(FancyArrowPatch((3.6, 0.2), (5.9, y - 0.2), arrowstyle="-|>",
                                         mutation_scale=10, color="#999999"))
        bottom.add_patch(FancyArrowPatch((8.0, y - 0.4), (10.3, y - 0.4), arrowstyle="-|>",
                                         mutation_scale=10, color="#555555"))
        _grid(bottom, example.output[o], 10.6, y + 0.6, "#7f7f7f", fontsize=8)
        use_cjk_font(bottom.text(10.6 + out + 0.3, y - 0.4, figure_tr("output map {o}", o=o),
                                 ha="left", va="center", fontsize=9))
    shape = ", ".join(map(str, weight.shape))
    use_cjk_font(bottom.text(16.8, -0.1, figure_tr(
        "{c_out} kernels → {c_out} output channels\nweight shape [C_out, C_in, k, k] = "
        "[{shape}]\nbias shape [C_out] = [{c_out}]", c_out=c_out, shape=shape),
        ha="left", va="center", fontsize=10))
    bottom.set_xlim(-0.5, 25)
    bottom.set_ylim(-3.0, 2.6)
    bottom.set_aspect("equal")
    bottom.axis("off")
    fig.tight_layout()
    return fig


# ---- what Chapter 8's benchmark says about nonlinearity ---------------------------------

#: Chapter 8's three versions of the tutorial network, from the least to the most nonlinear:
#: average pooling and no activation (a linear classifier), max pooling and no activation (as
#: published), max pooling and ReLU after every layer.
NONLINEARITY_RUNS = ("linear", "published", "relu")


@dataclass(frozen=True)
class SameBudget:
    """The three versions' test accuracy after the same number of epochs of training."""

    epochs: int                 # epochs of training behind every accuracy below
    test_acc: dict[str, float]  # run name -> test accuracy after ``epochs`` epochs
    trained: dict[str, int]     # run name -> epochs the run trained for in all
    params: int                 # parameter count, the same for the three
    machine: str                # where they were measured
    dates: str                  # when: one date, or "first – last"


def date_span(dates: list[str]) -> str:
    """``["2026-11-23", "2026-12-05", "2026-11-23"]`` -> ``"2026-11-23 – 2026-12-05"`` (a dash,
    no words: translated pages glue it too); one date when they are all the same."""
    if not dates:
        raise ValueError(tr("no dates given"))
    first, last = min(dates), max(dates)
    return first if first == last else f"{first} – {last}"


def same_budget(accuracy: dict) -> SameBudget:
    """Compare the linear, published and ReLU runs of the CIFAR-10 benchmark after the same
    number of epochs: the fewest that any of them trained for.

    ``accuracy`` is the ``"accuracy"`` part of ``benchmarks/results/cifar10_<device>.json``
    (``load_results("cifar10", "cpu")["accuracy"]``)."""
    runs = accuracy.get("runs", {})
    missing = [name for name in NONLINEARITY_RUNS if name not in runs]
    if missing:
        raise ValueError(tr("the CIFAR-10 results lack the run(s) {missing}: run "
                            "`python benchmarks/cifar10.py --parts accuracy` to measure them",
                            missing=missing))
    chosen = {name: runs[name] for name in NONLINEARITY_RUNS}
    params = {run["params"] for run in chosen.values()}
    if len(params) != 1:
        raise ValueError(tr("the three versions should have the same parameter count, got "
                            "{counts}",
                            counts={name: run["params"] for name, run in chosen.items()}))
    machines = {run["measured"]["machine"] for run in chosen.values()}
    if len(machines) != 1:
        raise ValueError(tr("the three versions were measured on different machines "
                            "({machines}): their accuracies are still comparable, but the page "
                            "names one machine; rerun them on one", machines=sorted(machines)))
    epochs = min(len(run["test_acc"]) for run in chosen.values())
    return SameBudget(epochs=epochs,
                      test_acc={name: run["test_acc"][epochs - 1] for name, run in chosen.items()},
                      trained={name: len(run["test_acc"]) for name, run in chosen.items()},
                      params=params.pop(), machine=machines.pop(),
                      dates=date_span([run["measured"]["date"] for run in chosen.values()]))
