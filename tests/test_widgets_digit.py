"""The draw-a-digit explorer's Python side: the reference preprocessing and the weights' trip
through the page (the browser side is in test_explorer_digit.py)."""

import base64
import json
import struct

import numpy as np
import pytest
import torch
from torch import nn

from cnn_course.data import MNIST_MEAN, MNIST_STD
from cnn_course.models import LeNet5, lenet5_for_mnist
from cnn_course.widgets.digit_explorer import (
    DIGIT_BOX,
    DigitExplorer,
    area_weights,
    centre_digit,
    check_drawable,
    export_weights,
    import_weights,
    ink_bounding_box,
    lenet_input,
    mnist_samples,
    preprocess_drawing,
    scaled_size,
    stage_geometry,
)

BLACK = -MNIST_MEAN[0] / MNIST_STD[0]
WHITE = (1 - MNIST_MEAN[0]) / MNIST_STD[0]


def ink_box(field: torch.Tensor) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the nonzero pixels, found with numpy."""
    rows, cols = np.nonzero(np.asarray(field) > 0)
    return rows.min(), cols.min(), rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def mass_centre(field: torch.Tensor) -> tuple[float, float]:
    """Ink-weighted centre with pixel i centred at i + 0.5, computed with numpy."""
    image = np.asarray(field, dtype=np.float64)
    rows, cols = np.indices(image.shape) + 0.5
    return (rows * image).sum() / image.sum(), (cols * image).sum() / image.sum()


def canvas(height: int, width: int) -> torch.Tensor:
    return torch.zeros(height, width, dtype=torch.float64)


def test_bounding_box_finds_the_ink():
    ink = canvas(60, 50)
    ink[12:40, 7:9] = 0.5
    ink[30, 33] = 0.01  # faint ink still counts
    assert ink_bounding_box(ink) == (12, 7, 28, 27)
    assert ink_bounding_box(canvas(5, 5)) is None


@pytest.mark.parametrize("height, width, expected", [
    (50, 10, (20, 4)), (10, 50, (4, 20)), (30, 13, (20, 9)), (7, 7, (20, 20)),
    (100, 2, (20, 1)), (1, 1, (20, 20)), (5, 3, (20, 12))])
def test_scaled_size_makes_the_longer_side_20(height, width, expected):
    assert scaled_size(height, width) == expected
    assert max(expected) == DIGIT_BOX


def test_area_weights_average_the_covered_pixels():
    assert torch.equal(area_weights(5, 5), torch.eye(5, dtype=torch.float64))
    halving = area_weights(6, 3)
    assert torch.equal(halving[1], torch.tensor([0, 0, 0.5, 0.5, 0, 0], dtype=torch.float64))
    thirds = area_weights(3, 2)  # each new pixel covers 1.5 old ones
    assert thirds[0].tolist() == pytest.approx([2 / 3, 1 / 3, 0])
    assert thirds[1].tolist() == pytest.approx([0, 1 / 3, 2 / 3])
    upscale = area_weights(2, 4)  # each old pixel is copied into two new ones
    assert upscale.tolist() == [[1, 0], [1, 0], [0, 1], [0, 1]]
    for n, m in [(37, 20), (20, 37), (281, 20), (3, 1)]:
        assert torch.allclose(area_weights(n, m).sum(dim=1), torch.ones(m, dtype=torch.float64))


@pytest.mark.parametrize("name, top, left, height, width, value", [
    ("tall bar", 10, 30, 50, 10, 1.0),
    ("wide bar", 40, 5, 6, 80, 0.7),
    ("small square, off-centre", 80, 2, 9, 9, 1.0),
    ("large block", 3, 3, 90, 60, 0.3),
])
def test_a_solid_shape_is_scaled_and_centred(name, top, left, height, width, value):
    ink = canvas(100, 100)
    ink[top:top + height, left:left + width] = value
    field = centre_digit(ink)
    assert field.shape == (28, 28)
    new_height, new_width = scaled_size(height, width)
    _, _, shown_height, shown_width = ink_box(field)
    assert (shown_height, shown_width) == (new_height, new_width), name
    assert max(shown_height, shown_width) == 20, name
    # the shorter side is rounded to whole pixels: the aspect ratio is kept to within 0.5 px
    shorter, longer = sorted((height, width))
    assert abs(min(shown_height, shown_width) / 20 - shorter / longer) <= 0.5 / 20 + 1e-12, name
    row, col = mass_centre(field)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5, (name, row, col)
    # a solid block stays solid: area averaging keeps the ink value inside the shape
    assert field.max().item() == pytest.approx(value)


def test_centre_of_mass_lands_on_the_middle_for_a_lopsided_digit():
    ink = canvas(120, 90)
    ink[20:24, 40:80] = 1.0         # a "7": a short bar ...
    for step in range(70):          # ... and a longer slanted stroke
        ink[24 + step, 75 - step // 2:79 - step // 2] = 1.0
    field = centre_digit(ink)
    row, col = mass_centre(field)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5, (row, col)
    top, left, height, width = ink_box(field)
    assert height == 20 and top + height <= 28 and left + width <= 28


def test_a_heavy_top_is_clamped_inside_the_field():
    ink = canvas(100, 100)
    ink[0:10, :] = 1.0              # a thick bar holds almost all the ink ...
    ink[10:100, 45:55] = 0.05       # ... over a faint stem
    field = centre_digit(ink)
    top, left, height, width = ink_box(field)
    # unclamped, the centre of mass (about row 1.4 of 20) would put the top at row 13, and the
    # stem would leave the field: the clamp stops it at 28 - 20 = 8
    assert (top, height) == (8, 20) and top + height == 28
    row, _ = mass_centre(field)
    assert row < 14 - 0.5


def test_normalization_and_black_border():
    ink = canvas(40, 40)
    ink[5:35, 18:22] = 1.0
    x = preprocess_drawing(ink)
    assert x.shape == (1, 1, 32, 32) and x.dtype == torch.float32
    image = x[0, 0]
    border = torch.cat([image[:2].flatten(), image[-2:].flatten(), image[:, :2].flatten(),
                        image[:, -2:].flatten()])
    assert torch.allclose(border, torch.full_like(border, BLACK))
    assert image.min().item() == pytest.approx(BLACK, abs=1e-6)
    assert image.max().item() == pytest.approx(WHITE, abs=1e-6)


def test_an_mnist_digit_goes_straight_to_step_6_as_the_training_data():
    from cnn_course.data import load_mnist, mnist_tensors

    images, labels = load_mnist(train=False)
    x_test, _ = mnist_tensors(train=False, pad_to_32=True)
    for index in (0, 1, 1234):
        shown = lenet_input(images[index].double() / 255)
        assert torch.allclose(shown[0], x_test[index], atol=1e-6), index
    samples = mnist_samples(images, labels)
    assert [s["label"] for s in samples] == list(range(10))
    for sample in samples:
        assert labels[sample["index"]] == sample["label"]
        assert sample["pixels"] == images[sample["index"]].tolist()
        assert int((labels[:sample["index"]] == sample["label"]).sum()) == 0  # the first one


def test_bad_drawings_get_clear_messages():
    with pytest.raises(ValueError, match="no ink"):
        preprocess_drawing(canvas(10, 10))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        preprocess_drawing(canvas(10, 10) + 255)
    with pytest.raises(ValueError, match="2-D"):
        preprocess_drawing(torch.ones(1, 10, 10))
    with pytest.raises(ValueError, match="28x28"):
        lenet_input(torch.zeros(32, 32))


def test_export_and_import_give_identical_logits():
    torch.manual_seed(3)
    model = LeNet5().eval()
    exported = json.loads(json.dumps(export_weights(model)))  # as the page stores it
    names = [entry["name"] for entry in exported["tensors"]]
    assert names == list(model.state_dict())
    first = exported["tensors"][0]
    raw = base64.b64decode(first["data"])
    assert first["shape"] == [6, 1, 5, 5] and len(raw) == 4 * 150
    assert struct.unpack("<f", raw[:4])[0] == model.c1.weight[0, 0, 0, 0].item()
    again = import_weights(exported)
    x = torch.randn(16, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    size = sum(len(entry["data"]) for entry in exported["tensors"])
    assert 320_000 < size < 340_000  # 61,706 float32 in base64


def test_import_names_what_is_wrong():
    exported = export_weights(LeNet5())
    broken = {**exported, "tensors": exported["tensors"][:-1]}
    with pytest.raises(ValueError, match="output.bias"):
        import_weights(broken)
    exported["tensors"][0]["shape"] = [6, 1, 3, 3]
    with pytest.raises(ValueError, match="c1.weight"):
        import_weights(exported)


def test_only_networks_the_page_can_run_are_accepted():
    check_drawable(LeNet5())
    with pytest.raises(ValueError, match="padding"):
        check_drawable(lenet5_for_mnist())
    with pytest.raises(ValueError, match="ReLU"):
        check_drawable(LeNet5(activation=nn.Tanh))
    with pytest.raises(ValueError, match="max pooling"):
        check_drawable(LeNet5(pooling=nn.AvgPool2d))


def test_explorer_state_is_complete_and_compact():
    from cnn_course.data import load_mnist

    model = LeNet5()
    explorer = DigitExplorer(model, load_mnist(train=False))
    state = explorer.get_state()
    assert stage_geometry(model) == state["stages"]
    assert state["stages"]["s2"] == {"kind": "pool", "kernel": 2, "stride": 2, "channels": None}
    assert state["stages"]["c3"]["kernel"] == 5 and state["stages"]["c3"]["channels"] == 16
    assert state["preprocessing"]["mean"] == MNIST_MEAN[0]
    assert state["preprocessing"]["std"] == MNIST_STD[0]
    assert len(state["samples"]) == 10
    size = len(json.dumps(state).encode())
    assert size < 450_000, size
    esm = explorer._esm
    assert esm.index("function lenetForward") < esm.index("function render")
    assert esm.count("export default") == 1
    assert ".digit-explorer" in explorer._css and ".cnn-explorer" in explorer._css
