"""A per-layer table of a model: output shape and parameter count, like Keras' ``summary()``."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from numbers import Integral

import torch
from torch import nn

from cnn_course.messages import N_, tr, translated


def text_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: Chinese characters (wide) take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def pad(text: str, width: int, align: str = "<") -> str:
    """``f"{text:<width}"`` (or ``>``) by terminal columns, so that translated table
    headers line up."""
    space = " " * max(0, width - text_width(text))
    return space + text if align == ">" else text + space


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
        header = (f"{pad(tr('layer'), 22)} {pad(tr('output shape'), 20)} "
                  f"{pad(tr('params'), 10, '>')}")
        rule = "-" * text_width(header)
        lines = [header, rule]
        for row in self.rows:
            shape = " x ".join(map(str, row.output_shape))
            lines.append(f"{(row.name + ' ' + row.kind):<22} {shape:<20} {row.params:>10,}")
        lines.append(rule)
        lines.append(f"{pad(tr('total parameters'), 43)} {self.total_params:>10,}")
        if self.trainable_params != self.total_params:
            lines.append(f"{pad(tr('trainable parameters'), 43)} {self.trainable_params:>10,}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # IPython shows the table
        printer.text(str(self))


SHAPE_HINT = N_("input_shape is one sample without the batch dimension, e.g. (1, 28, 28)")


def _check_input_shape(input_shape: object) -> tuple[int, ...]:
    if isinstance(input_shape, torch.Size):
        input_shape = tuple(input_shape)
    if not isinstance(input_shape, tuple | list) or not input_shape or not all(
            isinstance(n, Integral) and not isinstance(n, bool) for n in input_shape):
        raise TypeError(tr("input_shape must be a tuple of positive ints, got {got!r}; {hint}",
                           got=input_shape, hint=translated(SHAPE_HINT)))
    if min(input_shape) < 1:
        raise ValueError(tr("input_shape must hold positive sizes, got {got}; {hint}",
                            got=tuple(input_shape), hint=translated(SHAPE_HINT)))
    return tuple(int(n) for n in input_shape)


def model_summary(model: nn.Module, input_shape: tuple[int, ...]) -> Summary:
    """Run one sample of ``input_shape`` (no batch dimension, e.g. ``(1, 28, 28)``) through
    ``model`` and record every leaf layer's output shape and own parameter count.

    A layer that fails on the shape it receives raises a ``ValueError`` naming the layer and
    that shape (batch dimension included), instead of PyTorch's own error."""
    shape = _check_input_shape(input_shape)
    rows: list[LayerRow] = []
    handles = []
    received: dict[str, tuple[int, ...]] = {}  # the input shape of each layer that started
    for name, module in model.named_modules():
        if list(module.children()):
            continue  # containers: their leaves are listed instead

        def pre_hook(module, inputs, name=name):
            first = inputs[0] if inputs else None
            received["last"] = (name, type(module).__name__,
                                tuple(first.shape) if isinstance(first, torch.Tensor) else None)

        def hook(module, inputs, output, name=name):
            shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else ()
            params = sum(p.numel() for p in module.parameters(recurse=False))
            rows.append(LayerRow(name, type(module).__name__, shape, params))
            received.pop("last", None)

        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(hook))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *shape, device=device))
    except (RuntimeError, ValueError, IndexError, TypeError) as error:
        raise ValueError(_failure_message(received.get("last"), shape, error)) from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Summary(rows, total, trainable)


def _failure_message(last: tuple[str, str, tuple[int, ...] | None] | None,
                     shape: tuple[int, ...], error: BaseException) -> str:
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    model_input = tr("the model's input had shape {shape}, batch dimension included",
                     shape=(1, *shape))
    if last is None:
        where = tr("the model failed ({model_input})", model_input=model_input)
    else:
        name, kind, received = last
        got = (tr(" on a tensor of shape {shape}", shape=received)
               if received is not None else "")
        where = tr("layer {name} ({kind}) failed{got} ({model_input})", name=name, kind=kind,
                   got=got, model_input=model_input)
    return tr("model_summary(input_shape={shape}): {where}: {detail}; {hint}", shape=shape,
              where=where, detail=detail, hint=translated(SHAPE_HINT))
