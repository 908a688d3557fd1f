"""The overview page (book/00_overview.md) and its helpers, cnn_course.lessons.overview."""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from cnn_course.lessons.overview import (  # noqa: E402
    diagram_stages,
    draw_lenet_diagram,
    draw_multichannel_conv,
    format_shape,
    multichannel_example,
    stage_table,
    trace_stages,
)
from cnn_course.models import LeNet5, count_params  # noqa: E402
from cnn_course.summary import model_summary  # noqa: E402

PAGE = Path(__file__).resolve().parent.parent / "book" / "00_overview.md"
PAPER_SHAPES = {"input": (1, 28, 28), "C1": (6, 28, 28), "S2": (6, 14, 14), "C3": (16, 10, 10),
                "S4": (16, 5, 5), "flatten": (400,), "C5": (120,), "F6": (84,), "output": (10,)}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LeNet5(c1_padding=2)


@pytest.fixture(scope="module")
def digit():
    return torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_stages_come_from_the_real_forward_pass(model, digit):
    stages = trace_stages(model, digit)
    summary = model_summary(model, (1, 28, 28))
    assert [(s.name, s.shape, s.params) for s in stages[1:]] == [
        (r.name, r.output_shape, r.params) for r in summary.rows]
    # replay the forward pass by hand, layer by layer, and compare every shape
    x = digit[None]
    for stage in stages[1:]:
        x = getattr(model, stage.name)(x)
        assert tuple(x.shape[1:]) == stage.shape, stage.name
    assert torch.equal(x, model(digit[None]))
    assert sum(s.params for s in stages) == count_params(model) == count_params(LeNet5())


def test_the_diagram_shows_lenet5s_stages(model, digit):
    shown = diagram_stages(trace_stages(model, digit))
    assert {label: stage.shape for label, stage, _ in shown} == PAPER_SHAPES
    assert [label for label, _, _ in shown] == list(PAPER_SHAPES)
    steps = dict((label, made) for label, _, made in shown)
    assert steps["C1"] == "conv\n5×5\n+ ReLU" and steps["S2"] == "max pool\n2×2"
    assert steps["output"] == "linear"  # no activation after the last layer


def test_32x32_input_gives_the_same_stages_after_c1():
    unpadded = trace_stages(LeNet5(), torch.zeros(1, 1, 32, 32))
    padded = trace_stages(LeNet5(c1_padding=2), torch.zeros(1, 28, 28))
    assert [s.shape for s in unpadded[1:]] == [s.shape for s in padded[1:]]
    assert format_shape(unpadded[0].shape) == "1@32x32"


def test_trace_refuses_a_batch(model):
    with pytest.raises(ValueError, match="one image"):
        trace_stages(model, torch.zeros(2, 1, 28, 28))


def test_the_multichannel_example_agrees_with_conv2d():
    example = multichannel_example()
    assert example.x.shape == (3, 4, 4) and example.weight.shape == (2, 3, 3, 3)
    expected = F.conv2d(example.x[None], example.weight, example.bias)[0]
    assert torch.equal(example.output, expected)
    for o in range(2):  # each per-channel map is a one-channel convolution, without the bias
        for c in range(3):
            one = F.conv2d(example.x[None, c:c + 1], example.weight[o:o + 1, c:c + 1])[0, 0]
            assert torch.equal(example.per_channel[o, c], one)
    assert example.bias[0] != 0, "the figure should show a bias that changes the sum"
    for seed in range(5):  # other draws too, and whole numbers only
        other = multichannel_example(seed=seed)
        assert torch.equal(other.output, F.conv2d(other.x[None], other.weight, other.bias)[0])
        assert torch.equal(other.output, other.output.round())


def test_the_drawings_return_figures(model, digit):
    for fig in (draw_lenet_diagram(trace_stages(model, digit), digit),
                draw_lenet_diagram(trace_stages(LeNet5(), torch.zeros(1, 32, 32))),
                draw_multichannel_conv(multichannel_example())):
        assert isinstance(fig, plt.Figure) and fig.axes
        fig.canvas.draw()
        plt.close(fig)


def test_the_page_quotes_the_models_numbers(model, digit):
    text = PAGE.read_text(encoding="utf-8")
    stages = trace_stages(model, digit)
    table = stage_table(stages)
    assert f"{count_params(LeNet5()):,}" == "61,706"
    assert "61,706 parameters" in text and table.endswith("61,706")
    by_name = {s.name: s for s in stages}
    assert f"{by_name['c1'].params}" == "156" and "156 parameters" in text
    assert f"{by_name['c5'].params:,}" == "48,120" and "48,120" in text
    shapes = {format_shape(s.shape) for s in stages}
    for quoted in re.findall(r"`(\d+@\d+x\d+)`", text):  # e.g. `6@28x28`
        assert quoted in shapes, quoted


def test_the_page_links_every_chapter():
    text = PAGE.read_text(encoding="utf-8")
    for chapter in ["01_convolution", "02_activations", "03_pooling", "04_fully_connected",
                    "05_backpropagation", "06_optimizers", "07_lenet5", "08_cifar10"]:
        assert f"{{doc}}`{chapter}`" in text, chapter
    assert text.startswith("---\njupytext:") and "kernelspec:" in text
