"""A per-layer table of a model: output shape and parameter count, like Keras' ``summary()``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerRow:
    name: str                      # the module's name inside the model, e.g. "0" or "features.1"
    kind: str                      # its class, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # without the batch dimension
    params: int                    # parameters owned by this layer itself


@dataclass(frozen=True)
class Summary:
    rows: list[LayerRow]
    total_params: int
    trainable_params: int

    def __str__(self) -> str:
        header = f"{'layer':<22} {'output shape':<20} {'params':>10}"
        lines = [header, "-" * len(header)]
        for row in self.rows:
            shape = " x ".join(map(str, row.output_shape))
            lines.append(f"{(row.name + ' ' + row.kind):<22} {shape:<20} {row.params:>10,}")
        lines.append("-" * len(header))
        lines.append(f"{'total parameters':<43} {self.total_params:>10,}")
        if self.trainable_params != self.total_params:
            lines.append(f"{'trainable parameters':<43} {self.trainable_params:>10,}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # IPython shows the table
        printer.text(str(self))


def model_summary(model: nn.Module, input_shape: tuple[int, ...]) -> Summary:
    """Run one sample of ``input_shape`` (no batch dimension, e.g. ``(1, 28, 28)``) through
    ``model`` and record every leaf layer's output shape and own parameter count."""
    rows: list[LayerRow] = []
    handles = []
    for name, module in model.named_modules():
        if list(module.children()):
            continue  # containers: their leaves are listed instead

        def hook(module, inputs, output, name=name):
            shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else ()
            params = sum(p.numel() for p in module.parameters(recurse=False))
            rows.append(LayerRow(name, type(module).__name__, shape, params))

        handles.append(module.register_forward_hook(hook))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Summary(rows, total, trainable)
