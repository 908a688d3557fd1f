"""Draw a digit and watch a trained LeNet-5 read it, in the browser, with no kernel.

The explorer is an anywidget. Its saved state carries the trained network's weights (base64
little-endian float32, one entry per ``state_dict`` tensor), ten MNIST test digits and the
preprocessing constants; ``js/lenet_forward.js`` runs the forward pass and
``js/digit_explorer.js`` draws.

A drawing is turned into LeNet-5's input the way MNIST's digits were made. This module holds
the reference implementation, :func:`preprocess_drawing`; the JavaScript follows it step by
step, and the tests compare the two:

1. the ink image ``ink[H][W]``, values in [0, 1] (0 is background);
2. no ink at all means no input (the explorer then asks for a digit);
3. the bounding box of the pixels with ink > 0;
4. the box scaled so that its longer side becomes :data:`DIGIT_BOX` = 20 pixels, keeping the
   aspect ratio (shorter side ``max(1, floor(side * 20 / longer + 0.5))``), by exact area
   averaging: each new pixel is the mean of the source pixels under it, weighted by how much of
   each it covers. Rows are resized first, then columns;
5. the scaled digit placed in a black :data:`DIGIT_FIELD` = 28x28 image so that its ink-weighted
   centre of mass lands on the centre, (14, 14). Coordinates run from the image's top-left
   corner and pixel ``i`` covers ``[i, i + 1)``, so its centre is ``i + 0.5`` and (14, 14) is
   the exact middle of the field. The offset is ``floor(14 - com + 0.5)`` on each axis,
   **clamped** to ``[0, 28 - side]`` so that no ink falls outside the field (a digit whose ink
   is heavily lopsided, e.g. a thick bar over a thin stem, then sits off-centre);
6. padded with :data:`LENET_PAD` = 2 black pixels on each side to 32x32 and normalized with
   :data:`cnn_course.data.MNIST_MEAN` and :data:`~cnn_course.data.MNIST_STD`, exactly as
   ``mnist_tensors(pad_to_32=True)`` prepares the training digits.

MNIST's own test digits skip steps 1-5: they are already centred 28x28 digits.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

import numpy as np
import torch
import traitlets
from torch import nn

from cnn_course.data import MNIST_MEAN, MNIST_STD
from cnn_course.messages import tr
from cnn_course.models import LeNet5
from cnn_course.widgets.frontend import CSS, JS, Explorer, esm

DIGIT_BOX = 20    # the longer side of a digit's bounding box after scaling, in pixels
DIGIT_FIELD = 28  # the digit is centred by its centre of mass in a field this size
LENET_PAD = 2     # black pixels added on each side: 28 + 2 * 2 = LeNet-5's 32x32 input

#: The feature-map stages the explorer shows, in the order the forward pass runs them.
STAGES = ("c1", "s2", "c3", "s4")


# ---- the reference preprocessing -----------------------------------------------------------

def _as_ink(ink) -> torch.Tensor:
    """``ink`` (tensor, array or nested lists) as a float64 tensor [H, W], checked."""
    image = torch.as_tensor(np.asarray(ink, dtype=np.float64))
    if image.dim() != 2 or min(image.shape) == 0:
        raise ValueError(tr("ink must be a 2-D image [H, W], got shape {shape}",
                            shape=tuple(image.shape)))
    if not torch.isfinite(image).all():
        raise ValueError(tr("ink contains NaN or infinite values"))
    if image.min() < 0 or image.max() > 1:
        raise ValueError(tr("ink values must lie in [0, 1] (0 = background, 1 = full ink), got "
                            "{low:g} to {high:g}", low=image.min().item(),
                            high=image.max().item()))
    return image


def ink_bounding_box(ink) -> tuple[int, int, int, int] | None:
    """``(top, left, height, width)`` of the pixels with ink > 0, or ``None`` if there are none."""
    image = _as_ink(ink)
    rows = torch.nonzero(image.amax(dim=1) > 0).flatten()
    cols = torch.nonzero(image.amax(dim=0) > 0).flatten()
    if len(rows) == 0:
        return None
    top, left = int(rows[0]), int(cols[0])
    return top, left, int(rows[-1]) - top + 1, int(cols[-1]) - left + 1


def scaled_size(height: int, width: int, box: int = DIGIT_BOX) -> tuple[int, int]:
    """Height and width after scaling the longer side to ``box``, keeping the aspect ratio."""
    longer = max(height, width)

    def scale(side: int) -> int:
        return box if side == longer else max(1, math.floor(side * box / longer + 0.5))

    return scale(height), scale(width)


def area_weights(n: int, m: int) -> torch.Tensor:
    """The [m, n] matrix that resizes a line of ``n`` pixels to ``m`` by area averaging.

    New pixel ``t`` covers the source interval ``[t n / m, (t + 1) n / m)``; its weight on
    source pixel ``s`` is the length of the overlap with ``[s, s + 1)`` divided by ``n / m``,
    so each row sums to 1.
    """
    weights = torch.zeros(m, n, dtype=torch.float64)
    for t in range(m):
        low, high = t * n / m, (t + 1) * n / m
        for s in range(math.floor(low), math.ceil(high)):
            weights[t, s] = (min(high, s + 1) - max(low, s)) / (high - low)
    return weights


def centre_of_mass(image: torch.Tensor) -> tuple[float, float]:
    """Ink-weighted centre ``(row, column)`` of ``image`` [H, W]; pixel ``i``'s centre is
    ``i + 0.5``."""
    total = image.sum()
    rows = torch.arange(image.shape[0], dtype=torch.float64) + 0.5
    cols = torch.arange(image.shape[1], dtype=torch.float64) + 0.5
    return (float((image.sum(dim=1) * rows).sum() / total),
            float((image.sum(dim=0) * cols).sum() / total))


def centring_offset(com: float, side: int, field: int = DIGIT_FIELD) -> int:
    """Where the scaled digit's first row (or column) goes in the field: the whole-pixel shift
    that brings its centre of mass ``com`` nearest to ``field / 2``, clamped to
    ``[0, field - side]`` so that the digit stays inside."""
    offset = math.floor(field / 2 - com + 0.5)
    return min(max(offset, 0), field - side)


def centre_digit(ink) -> torch.Tensor:
    """Steps 1-5: the drawing as a centred MNIST-style digit, float64 [28, 28] in [0, 1].

    Raises ``ValueError`` if ``ink`` has no ink (there is no digit to read).
    """
    image = _as_ink(ink)
    box = ink_bounding_box(image)
    if box is None:
        raise ValueError(tr("the drawing has no ink (every pixel is 0): there is no digit to "
                            "read"))
    top, left, height, width = box
    digit = image[top:top + height, left:left + width]
    new_height, new_width = scaled_size(height, width)
    digit = area_weights(height, new_height) @ digit          # rows first ...
    digit = digit @ area_weights(width, new_width).T          # ... then columns
    com_row, com_col = centre_of_mass(digit)
    row, col = centring_offset(com_row, new_height), centring_offset(com_col, new_width)
    field = torch.zeros(DIGIT_FIELD, DIGIT_FIELD, dtype=torch.float64)
    field[row:row + new_height, col:col + new_width] = digit
    return field


def lenet_input(field) -> torch.Tensor:
    """Step 6: a 28x28 digit in [0, 1] -> LeNet-5's normalized input, float32 [1, 1, 32, 32].

    The 2-pixel border gets the normalized value of a black pixel, as in
    ``mnist_tensors(pad_to_32=True)``.
    """
    digit = torch.as_tensor(np.asarray(field, dtype=np.float64))
    if digit.shape != (DIGIT_FIELD, DIGIT_FIELD):
        raise ValueError(tr("expected a {field}x{field} digit, got shape {shape}",
                            field=DIGIT_FIELD, shape=tuple(digit.shape)))
    mean, std = MNIST_MEAN[0], MNIST_STD[0]
    padded = torch.nn.functional.pad(digit, (LENET_PAD,) * 4)
    return ((padded - mean) / std).float()[None, None]


def preprocess_drawing(ink) -> torch.Tensor:
    """A drawing's ink image [H, W] (values in [0, 1]) -> LeNet-5's input [1, 1, 32, 32].

    The reference for the explorer's JavaScript: steps 1-6 of this module's docstring.
    Raises ``ValueError`` for a drawing without ink.
    """
    return lenet_input(centre_digit(ink))


# ---- weights in and out of the page ---------------------------------------------------------

def export_weights(model: nn.Module) -> dict:
    """``model``'s ``state_dict`` as JSON-ready data: for each tensor its name, its shape and its
    values as base64 little-endian float32."""
    tensors = []
    for name, tensor in model.state_dict().items():
        values = tensor.detach().cpu().to(torch.float32).numpy().astype("<f4")
        tensors.append({"name": name, "shape": list(tensor.shape),
                        "data": base64.b64encode(values.tobytes()).decode("ascii")})
    return {"dtype": "float32", "byte_order": "little", "tensors": tensors}


def import_weights(exported: dict) -> LeNet5:
    """A ``LeNet5()`` (32x32 input) holding weights written by :func:`export_weights`."""
    if exported.get("dtype") != "float32" or exported.get("byte_order") != "little":
        raise ValueError(tr("expected weights exported as little-endian float32 by "
                            "export_weights"))
    model = LeNet5()
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    state = {}
    for entry in exported["tensors"]:
        name, shape = entry["name"], tuple(entry["shape"])
        if name not in expected:
            raise ValueError(tr("{name!r} is not a tensor of LeNet5(); it has {names}",
                                name=name, names=list(expected)))
        if shape != expected[name]:
            raise ValueError(tr("{name!r} has shape {shape}, but LeNet5() needs {needed}",
                                name=name, shape=shape, needed=expected[name]))
        values = np.frombuffer(base64.b64decode(entry["data"]), dtype="<f4")
        if values.size != math.prod(shape):
            raise ValueError(tr("{name!r} holds {count} values, its shape needs {needed}",
                                name=name, count=values.size, needed=math.prod(shape)))
        state[name] = torch.from_numpy(values.astype(np.float32).reshape(shape))
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ValueError(tr("the exported weights lack {missing}", missing=missing))
    model.load_state_dict(state)
    return model.eval()


def _single(value) -> int:
    """A layer's kernel size or stride as one int (PyTorch stores some as pairs)."""
    if isinstance(value, tuple):
        if len(set(value)) != 1:
            raise ValueError(tr("the explorer needs square kernels and equal strides, got "
                                "{value}", value=value))
        return value[0]
    return value


def check_drawable(model: nn.Module) -> None:
    """Raise ``ValueError`` unless ``model`` is a network the explorer's JavaScript runs:
    ``LeNet5()`` for 32x32 digits, ReLU and max pooling, no padding."""
    if not isinstance(model, LeNet5):
        raise ValueError(tr("expected cnn_course.models.LeNet5, got {type_name}",
                            type_name=type(model).__name__))
    if model.input_size != 32 or model.c1.padding != (0, 0) or model.c1.in_channels != 1:
        raise ValueError(tr("the explorer shows LeNet5() for 32x32 grey digits; this one has "
                            "input_size={size}, C1 padding={padding}, {channels} input channels",
                            size=model.input_size, padding=model.c1.padding,
                            channels=model.c1.in_channels))
    if model.output.out_features != 10:
        raise ValueError(tr("expected 10 classes, got {count}",
                            count=model.output.out_features))
    for name in ("act1", "act3", "act5", "act6"):
        if not isinstance(getattr(model, name), nn.ReLU):
            raise ValueError(tr("the explorer computes ReLU, but {name} is {type_name}",
                                name=name, type_name=type(getattr(model, name)).__name__))
    for name in ("s2", "s4"):
        layer = getattr(model, name)
        if not isinstance(layer, nn.MaxPool2d) or _single(layer.padding) != 0:
            raise ValueError(tr("the explorer computes max pooling without padding; {name} is "
                                "{layer}", name=name, layer=layer))


def stage_geometry(model: nn.Module) -> dict[str, dict]:
    """Kernel size and stride of C1, S2, C3 and S4, read from the layers themselves: the
    JavaScript's forward pass uses them, and so does its receptive-field arithmetic."""
    geometry = {}
    for name in STAGES:
        layer = getattr(model, name)
        kind = "conv" if isinstance(layer, nn.Conv2d) else "pool"
        channels = layer.out_channels if kind == "conv" else None
        geometry[name] = {"kind": kind, "kernel": _single(layer.kernel_size),
                          "stride": _single(layer.stride or layer.kernel_size),
                          "channels": channels}
    return geometry


def mnist_samples(images: torch.Tensor, labels: torch.Tensor) -> list[dict]:
    """The first digit of each class 0-9 in ``images`` uint8 [N, 28, 28]: label, index and
    pixels (28 lists of 28 ints)."""
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != (DIGIT_FIELD, DIGIT_FIELD):
        raise ValueError(tr("expected MNIST images as uint8 [N, 28, 28] (cnn_course.data."
                            "load_mnist), got {dtype} {shape}", dtype=images.dtype,
                            shape=tuple(images.shape)))
    samples = []
    for digit in range(10):
        found = torch.nonzero(labels == digit).flatten()
        if len(found) == 0:
            raise ValueError(tr("no image of the digit {digit} among the samples", digit=digit))
        index = int(found[0])
        samples.append({"label": digit, "index": index, "pixels": images[index].tolist()})
    return samples


class DigitExplorer(Explorer):
    """Draw a digit (or pick an MNIST test digit) and watch a trained LeNet-5 read it: the
    32x32 input, every feature map, the ten class probabilities, and receptive fields.

    ``model``: a trained ``LeNet5()`` (32x32 input, ReLU, max pooling). ``samples``: MNIST
    test images and labels, ``(uint8 [N, 28, 28], [N])`` as ``cnn_course.data.load_mnist``
    returns them; the first image of each class is offered.
    """

    _esm = esm("lenet_forward.js", "digit_explorer.js")
    _css = CSS.read_text() + (JS / "digit_explorer.css").read_text()
    lenet_weights = traitlets.Dict().tag(sync=True)
    stages = traitlets.Dict().tag(sync=True)
    preprocessing = traitlets.Dict().tag(sync=True)
    samples = traitlets.List().tag(sync=True)

    def __init__(self, model: nn.Module, samples: Sequence[torch.Tensor], **kwargs) -> None:
        check_drawable(model)
        images, labels = samples
        super().__init__(
            lenet_weights=export_weights(model), stages=stage_geometry(model),
            preprocessing={"mean": MNIST_MEAN[0], "std": MNIST_STD[0], "box": DIGIT_BOX,
                           "field": DIGIT_FIELD, "pad": LENET_PAD},
            samples=mnist_samples(images, labels), **kwargs)
