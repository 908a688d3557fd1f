"""The pooling explorer of Chapter 3: kernel, stride, padding and max/average pooling on a real
feature map (edges of a photo), with the output-size formula written out with the numbers.

Every size it shows comes from :func:`cnn_course.arith.conv_output_size`; the pooled map comes
from ``F.max_pool2d`` / ``F.avg_pool2d`` and its shape is checked against the formula.
"""

from __future__ import annotations

import html

import ipywidgets as W
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import display
from matplotlib.patches import Rectangle

from cnn_course.arith import conv_output_size
from cnn_course.figure_translation import figure_tr, set_title
from cnn_course.images import sample_photo
from cnn_course.lessons.pooling import edge_features, edge_strength
from cnn_course.messages import N_, tr

SOURCES = (N_("edge strength"), N_("vertical edges (conv + ReLU)"), N_("photo"))
MODES = (N_("max"), N_("average"))
WINDOW_COLOURS = ("#d62728", "#1f77b4", "#2ca02c")


def feature_map(source: str, photo: torch.Tensor) -> torch.Tensor:
    """The map to pool: [1, 1, H, W] for a gray photo [1, 1, H0, W0]."""
    if source == "edge strength":
        return edge_strength(photo)
    if source == "vertical edges (conv + ReLU)":
        return edge_features(photo)[:, :1]
    if source == "photo":
        return photo
    raise ValueError(tr("unknown source {source!r}; choose one of {names}", source=source,
                        names=", ".join(SOURCES)))


def pooling_problem(height: int, width: int, kernel: int, stride: int, padding: int) -> str | None:
    """Why this combination cannot be pooled, in one plain sentence, or None if it can."""
    if 2 * padding > kernel:
        return tr("padding can be at most half the kernel size (PyTorch's rule: p ≤ k/2); with "
                  "k = {k}, use p ≤ {half}", k=kernel, half=kernel // 2)
    try:
        conv_output_size((height, width), kernel, padding=padding, stride=stride)
    except ValueError as error:
        return str(error)
    return None


class PoolingExplorer:
    """Controls for one pooling layer and its effect on a real feature map.

    ``explorer.controls[name].value = ...`` drives it from code; ``explorer.summary.value``
    holds the displayed text, ``explorer.last_output`` the latest pooled map ([1, 1, H', W'])
    and ``explorer.error`` the message shown for an impossible combination (else None).
    """

    def __init__(self, photo_size: int = 66, rows: int = 50) -> None:
        photo = sample_photo(photo_size)[None]                     # [1, 1, S, S]
        top = (photo_size - rows) // 2
        self.photo = photo[..., top:top + rows, :]                 # non-square: rows x S
        slider = dict(continuous_update=False, style={"description_width": "90px"})
        self.controls: dict[str, W.ValueWidget] = {
            "mode": W.ToggleButtons(options=[(tr(mode), mode) for mode in MODES], value="max",
                                    description=tr("pooling")),
            "source": W.Dropdown(options=[(tr(source), source) for source in SOURCES],
                                 value="edge strength", description=tr("feature map")),
            "kernel_size": W.IntSlider(2, min=1, max=8, description=tr("kernel k"), **slider),
            "stride_is_kernel": W.Checkbox(True, description=tr("stride = kernel (the default)"),
                                           indent=False),
            "stride": W.IntSlider(2, min=1, max=8, description=tr("stride s"), **slider),
            "padding": W.IntSlider(0, min=0, max=4, description=tr("padding p"), **slider),
        }
        self.summary = W.HTML()
        self.view = W.Output()
        self.last_output: torch.Tensor | None = None
        self.error: str | None = None
        self._updating = False
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        c = self.controls
        self.widget = W.VBox([
            W.HBox([W.VBox([c["mode"], c["source"]]),
                    W.VBox([c["kernel_size"], c["stride_is_kernel"], c["stride"],
                            c["padding"]])]),
            self.summary,
            self.view,
        ])
        self.update()

    def _ipython_display_(self) -> None:
        display(self.widget)

    def _on_change(self, change: dict) -> None:
        if not self._updating:  # update() itself moves the stride slider
            self.update()

    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def update(self) -> None:
        """Recompute everything from the controls; a bad combination shows a plain message."""
        v = self.values()
        k, p = v["kernel_size"], v["padding"]
        self._updating = True
        try:
            stride_control = self.controls["stride"]
            stride_control.disabled = v["stride_is_kernel"]
            if v["stride_is_kernel"]:
                stride_control.value = k
        finally:
            self._updating = False
        s = self.controls["stride"].value
        features = feature_map(v["source"], self.photo)
        height, width = features.shape[-2:]
        problem = pooling_problem(height, width, k, s, p)
        if problem:
            self._show_problem(problem)
            return
        h_out, w_out = conv_output_size((height, width), k, padding=p, stride=s)
        pool = F.max_pool2d if v["mode"] == "max" else F.avg_pool2d
        try:
            self.last_output = pool(features, k, s, p)
        except RuntimeError as refusal:  # a rule of PyTorch's that pooling_problem missed
            self._show_problem(str(refusal).splitlines()[0])
            return
        self.error = None
        assert self.last_output.shape[-2:] == (h_out, w_out), "formula and PyTorch disagree"
        self.summary.value = self._summary_html(v["mode"], height, width, k, s, p, h_out, w_out)
        self._draw(features, k, s, p, "gray" if v["source"] == "photo" else "magma")

    def _summary_html(self, mode: str, height: int, width: int, k: int, s: int, p: int,
                      h_out: int, w_out: int) -> str:
        def formula(name: str, n: int, o: int) -> str:
            return (f"{name}<sub>out</sub> = ⌊({name} + 2p − k) / s⌋ + 1 = ⌊({n} + 2·{p} − {k})"
                    f" / {s}⌋ + 1 = <b>{o}</b>")
        inputs, outputs = height * width, h_out * w_out
        counts = dict(window=k * k, outputs=f"{outputs:,}", inputs=f"{inputs:,}",
                      share=f"{100 * outputs / inputs:.1f}")
        if mode == "max":
            what = tr("each output keeps the largest of its {window} window values (padding "
                      "counts as −∞): {outputs} output values from {inputs} inputs ({share}% "
                      "as many)", **counts)
        else:
            what = tr("each output is the mean of its {window} window values (padded zeros "
                      "count, as in F.avg_pool2d's default): {outputs} output values from "
                      "{inputs} inputs ({share}% as many)", **counts)
        if s < k:
            overlap = tr("windows overlap (s < k)")
        elif s == k:
            overlap = tr("windows tile the input (s = k)")
        elif s - k == 1:
            overlap = tr("windows skip 1 pixel between them (s > k)")
        else:
            overlap = tr("windows skip {gap} pixels between them (s > k)", gap=s - k)
        shapes = tr("{before} → {after}; {overlap}; the number of channels does not change; "
                    "parameters: {zero}", before=f"{height} × {width}",
                    after=f"<b>{h_out} × {w_out}</b>", overlap=overlap, zero="<b>0</b>")
        return (f"<div class='pooling-explorer-summary'>{formula('H', height, h_out)}<br>"
                f"{formula('W', width, w_out)}<br>{shapes}<br>{what}</div>")

    def _show_problem(self, message: str) -> None:
        self.error = message
        self.last_output = None
        self.summary.value = (f"<div class='pooling-explorer-problem'><b>"
                              f"{tr('This combination does not work:')}</b> "
                              f"{html.escape(message)}</div>")
        self.view.clear_output()

    def _draw(self, features: torch.Tensor, k: int, s: int, p: int, cmap: str) -> None:
        feature, pooled = features[0, 0], self.last_output[0, 0]
        height, width = feature.shape
        self.view.clear_output(wait=True)
        with self.view:
            # Both panels draw one input pixel and one output value at the same size, so the
            # shrinking is visible.
            span_h, span_w = max(height, pooled.shape[0]), max(pooled.shape[1], 4)
            fig, axes = plt.subplots(1, 2, figsize=(8, 3.4),
                                     gridspec_kw={"width_ratios": [width, span_w]})
            low, high = float(feature.min()), float(feature.max())
            axes[0].imshow(feature.numpy(), cmap=cmap, vmin=low, vmax=high)
            for (i, j), colour in zip([(0, 0), (0, 1), (1, 0)], WINDOW_COLOURS, strict=True):
                if i < pooled.shape[0] and j < pooled.shape[1]:
                    axes[0].add_patch(Rectangle((j * s - p - 0.5, i * s - p - 0.5), k, k,
                                                fill=False, edgecolor=colour, linewidth=1.5))
            set_title(axes[0], figure_tr("input {height}×{width} (first windows outlined)",
                                  height=height, width=width), fontsize=9)
            axes[1].imshow(pooled.numpy(), cmap=cmap, vmin=low, vmax=high)
            set_title(axes[1], figure_tr("output {height}×{width}", height=pooled.shape[0],
                                  width=pooled.shape[1]), fontsize=9)
            for ax, columns in zip(axes, (width, span_w), strict=True):
                ax.set_xlim(-0.5, columns - 0.5)
                ax.set_ylim(span_h - 0.5, -0.5)
                ax.axis("off")
            fig.tight_layout()
            display(fig)
            plt.close(fig)


def explore_pooling() -> PoolingExplorer:
    """Show the explorer in a notebook."""
    return PoolingExplorer()
