"""Drive the activation explorer as a learner would and read what it shows."""

import matplotlib
import pytest
import torch
import torch.nn.functional as F

from cnn_course.widgets.activation_explorer import (
    ActivationExplorer,
    function_and_derivative,
    parse_number,
)

matplotlib.use("Agg")


@pytest.fixture()
def explorer():
    return ActivationExplorer(points=201)


def set_values(explorer, **values):
    for name, value in values.items():
        explorer.controls[name].value = value


def test_relu_is_plotted_with_its_derivative(explorer):
    set_values(explorer, function="ReLU", x_range=(-4.0, 4.0), probe="2")
    assert explorer.error is None
    assert explorer.x[0].item() == -4.0 and explorer.x[-1].item() == 4.0
    assert torch.equal(explorer.y, torch.relu(explorer.x))
    assert torch.equal(explorer.dy, (explorer.x > 0).float())
    assert "f(2) = <b>2.0000</b>, f'(2) = <b>1.0000</b>" in explorer.readout.value
    assert "output exactly 0: <b>50%</b>" in explorer.readout.value


def test_sigmoid_saturates_and_its_derivative_peaks_at_a_quarter(explorer):
    set_values(explorer, function="sigmoid", x_range=(-20.0, 20.0), probe="0")
    assert torch.allclose(explorer.y, torch.sigmoid(explorer.x))
    assert explorer.dy.max().item() == pytest.approx(0.25, abs=1e-3)
    assert "f'(0) = <b>0.2500</b>" in explorer.readout.value
    # σ'(x) < 0.01 where |x| > 4.6: 156 of the 201 grid points on [-20, 20]
    assert "flat (|f'| &lt; 0.01): <b>78%</b>" in explorer.readout.value


def test_tanh_derivative_matches_the_formula(explorer):
    set_values(explorer, function="tanh", x_range=(-3.0, 3.0))
    assert torch.allclose(explorer.dy, 1 - torch.tanh(explorer.x) ** 2, atol=1e-6)


def test_leaky_slope_slider_changes_the_negative_side(explorer):
    set_values(explorer, function="Leaky ReLU", x_range=(-2.0, 2.0), slope=0.25, probe="-2")
    assert not explorer.controls["slope"].disabled
    assert torch.allclose(explorer.y, F.leaky_relu(explorer.x, 0.25))
    assert explorer.dy[explorer.x < 0].unique().tolist() == [0.25]
    assert "f(-2) = <b>-0.5000</b>, f'(-2) = <b>0.2500</b>" in explorer.readout.value
    explorer.controls["function"].value = "GELU"
    assert explorer.controls["slope"].disabled


def test_gelu_is_available(explorer):
    set_values(explorer, function="GELU", x_range=(-3.0, 3.0))
    assert torch.allclose(explorer.y, F.gelu(explorer.x))
    assert explorer.y.min().item() < 0  # GELU dips below zero for negative inputs


def test_bad_probe_shows_a_message_and_keeps_the_plot(explorer):
    explorer.controls["probe"].value = "one"
    assert explorer.error and "not a number" in explorer.error
    assert "not a number" in explorer.readout.value
    assert explorer.y is not None
    explorer.controls["probe"].value = "inf"
    assert "finite" in explorer.error
    explorer.controls["probe"].value = " 0.5 "
    assert explorer.error is None


def test_empty_range_shows_a_message_not_a_traceback(explorer):
    explorer.controls["x_range"].value = (3.0, 3.0)
    assert explorer.error and "empty" in explorer.error
    assert "Cannot plot" in explorer.readout.value
    assert explorer.y is None
    explorer.controls["x_range"].value = (-1.0, 1.0)
    assert explorer.error is None and explorer.y is not None


def test_learner_functions_can_be_added_and_their_errors_are_shown():
    def broken(x, slope):
        raise NotImplementedError()

    def halves(x, slope):
        return 0.5 * x

    explorer = ActivationExplorer({"mine": halves, "broken": broken}, points=11)
    explorer.controls["function"].value = "mine"
    assert torch.allclose(explorer.dy, torch.full((11,), 0.5))
    explorer.controls["function"].value = "broken"
    assert "could not be evaluated: NotImplementedError" in explorer.error
    assert explorer.y is None


def test_helpers():
    y, dy = function_and_derivative(lambda x, s: x ** 2, torch.tensor([1.0, 3.0]), 0.0)
    assert dy.tolist() == [2.0, 6.0]
    _, constant = function_and_derivative(lambda x, s: torch.ones_like(x), torch.zeros(3), 0.0)
    assert constant.tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="shape"):
        function_and_derivative(lambda x, s: x.sum(), torch.zeros(3), 0.0)
    assert parse_number("1e3") == 1000.0
    with pytest.raises(ValueError):
        parse_number("nan")
