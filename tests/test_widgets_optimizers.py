"""Drive the optimizer race as a learner would, and check the surfaces it runs on."""

import math

import matplotlib
import pytest
import torch

from cnn_course.lessons.optimizers import (
    SUGGESTED,
    SURFACES,
    line_fit_problem,
    run_on_surface,
    torch_optimizers,
)
from cnn_course.widgets.optimizer_race import OptimizerRace

matplotlib.use("Agg")


@pytest.fixture()
def race():
    return OptimizerRace("ravine")


def finite(trajectory):
    return bool(torch.isfinite(trajectory.points).all() and torch.isfinite(trajectory.losses).all())


def test_default_race_reaches_the_bottom_of_the_ravine(race):
    assert set(race.trajectories) == {"SGD", "momentum", "Nesterov", "Adagrad", "RMSprop", "Adam"}
    for name, path in race.trajectories.items():
        assert finite(path) and path.diverged_at is None, name
        assert path.steps == SUGGESTED["ravine"]["steps"]
        assert path.final_loss < path.losses[0], name
    assert race.trajectories["Nesterov"].final_loss < 1e-3
    assert "diverged" not in race.summary.value


def test_learning_rate_changes_the_path_and_too_large_diverges_in_plain_words(race):
    before = race.trajectories["SGD"].points.clone()
    race.controls["lr"].value = 0.02
    after = race.trajectories["SGD"].points
    assert not torch.equal(before, after)
    assert race.trajectories["SGD"].diverged_at is None
    # curvature 20 along y: plain gradient descent is stable only for lr < 2/20 = 0.1
    race.controls["lr"].value = 0.2
    sgd = race.trajectories["SGD"]
    assert sgd.diverged_at is not None and finite(sgd)
    assert "SGD</b> (lr 0.2): diverged at step" in race.summary.value
    assert "Try a smaller learning rate" in race.summary.value
    # the adaptive optimizers have their own learning rate and are untouched
    assert race.trajectories["Adam"].diverged_at is None


def test_momentum_slider_changes_momentum_runs_only(race):
    sgd = race.trajectories["SGD"].points.clone()
    momentum = race.trajectories["momentum"].points.clone()
    race.controls["momentum"].value = 0.5
    assert torch.equal(sgd, race.trajectories["SGD"].points)
    assert not torch.equal(momentum, race.trajectories["momentum"].points)
    race.controls["momentum"].value = 0.0  # no momentum: all three SGD variants coincide
    assert torch.equal(race.trajectories["momentum"].points, race.trajectories["SGD"].points)
    assert torch.equal(race.trajectories["Nesterov"].points, race.trajectories["SGD"].points)


def test_surface_choice_loads_its_learning_rates(race):
    race.controls["surface"].value = "rosenbrock"
    assert race.controls["lr"].value == pytest.approx(SUGGESTED["rosenbrock"]["lr"])
    assert race.controls["steps"].value == SUGGESTED["rosenbrock"]["steps"]
    assert all(finite(path) for path in race.trajectories.values())
    assert "rosenbrock" in race.summary.value
    race.controls["surface"].value = "saddle"
    assert race.trajectories["Adam"].points[-1, 1] > 0.5  # escaped the saddle towards y = 1


def test_choosing_which_optimizers_to_show(race):
    race.controls["shown"].value = ("Adam",)
    assert list(race.trajectories) == ["Adam"]
    assert "Adagrad" not in race.summary.value


def test_divergence_is_detected_and_points_stay_finite():
    surface = SURFACES["rosenbrock"]
    path = run_on_surface(surface, torch_optimizers(0.1)["SGD"], 50)
    assert path.diverged_at is not None and path.diverged_at <= 5
    assert finite(path) and len(path.points) == path.diverged_at
    assert "diverged at step" in path.describe(surface)


def test_surfaces_have_their_minimum_where_they_say():
    for surface in SURFACES.values():
        point = torch.tensor(surface.minimum, dtype=torch.float64, requires_grad=True)
        surface(point[0], point[1]).backward()
        assert point.grad.abs().max() < 1e-9, surface.name


def test_line_fit_full_batch_matches_least_squares():
    problem = line_fit_problem()
    w, b = problem.best()
    assert math.isclose(w, 2.0, abs_tol=0.2) and math.isclose(b, -1.0, abs_tol=0.3)
    path = problem.minibatch_path(batch_size=len(problem.x), lr=0.2, steps=300)
    assert math.dist(path.points[-1].tolist(), (w, b)) < 1e-3
    noisy = problem.minibatch_path(batch_size=1, lr=0.05, steps=300)
    assert noisy.diverged_at is None and noisy.final_loss > path.final_loss


def test_unknown_surface_names_the_choices():
    with pytest.raises(ValueError, match="unknown surface 'valley'.*'ravine'"):
        OptimizerRace("valley")
