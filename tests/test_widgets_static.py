import random

import pytest

from cnn_course.arith import conv_output_size, conv_params
from cnn_course.widgets.static import CONV_RANGES, ConvArithmeticExplorer


@pytest.fixture(scope="module")
def explorer():
    return ConvArithmeticExplorer()


def test_tables_cover_every_setting_and_agree_with_arith(explorer):
    (n0, n1), (k0, k1), (p0, p1), (s0, s1), (d0, d1) = (
        CONV_RANGES[x] for x in ("n", "kernel_size", "padding", "stride", "dilation"))
    expected = (n1 - n0 + 1) * (k1 - k0 + 1) * (p1 - p0 + 1) * (s1 - s0 + 1) * (d1 - d0 + 1)
    assert len(explorer.output_sizes) == expected
    rng = random.Random(0)
    for _ in range(300):
        n, k, p = rng.randint(n0, n1), rng.randint(k0, k1), rng.randint(p0, p1)
        s, d = rng.randint(s0, s1), rng.randint(d0, d1)
        shown = explorer.output_sizes[f"{n},{k},{p},{s},{d}"]
        try:
            assert shown == conv_output_size(n, k, p, s, d)
        except ValueError as problem:
            assert shown == str(problem)
    assert explorer.param_counts["3,32,5"] == conv_params(3, 32, 5) == 2432


def test_front_end_code_ships_with_the_widget(explorer):
    assert "export default { render }" in explorer._esm
    assert ".cnn-explorer" in explorer._css


def test_pooling_tables_match_torch_and_arith():
    import torch
    import torch.nn.functional as F

    from cnn_course.widgets.static import PoolingExplorer

    explorer = PoolingExplorer(size=12)
    x = torch.tensor(explorer.feature_map)[None, None]
    assert x.shape == (1, 1, 12, 12)
    for k in (1, 2, 3, 4):
        for s in (1, 2, 3, 4):
            for mode, pool in (("max", F.max_pool2d), ("avg", F.avg_pool2d)):
                entry = explorer.tables[f"{mode},{k},{s}"]
                expected = pool(x, k, stride=s)[0, 0]
                assert entry["size"] == [conv_output_size(12, k, 0, s)] * 2
                assert torch.allclose(torch.tensor(entry["values"]), expected, atol=0.006)


def test_race_trajectories_come_from_torch_optim():
    import torch

    from cnn_course.lessons.optimizers import SURFACES
    from cnn_course.widgets.static import (
        RACE_LEARNING_RATES,
        RACE_MOMENTA,
        race_tables,
        race_trajectory,
    )

    tables = race_tables(steps=20, grid=8)
    paths = tables["paths"]
    assert len(paths) == len(SURFACES) * len(RACE_LEARNING_RATES) * (4 + 2 * len(RACE_MOMENTA))
    entry = paths["ravine,2,2,momentum"]  # lr 0.01, momentum 0.9
    point = torch.tensor([-4.0, 1.0], requires_grad=True)
    optimizer = torch.optim.SGD([point], lr=RACE_LEARNING_RATES[2], momentum=RACE_MOMENTA[2])
    for _ in range(20):
        optimizer.zero_grad()
        (0.5 * point[0] ** 2 + 10 * point[1] ** 2).backward()
        optimizer.step()
    assert entry["path"][-1] == pytest.approx(point.detach().tolist(), abs=1e-4)
    assert len(entry["path"]) == 21 and entry["diverged"] is None
    # Too large a step on a steep surface leaves the plot: reported, not drawn forever.
    path, diverged = race_trajectory("rosenbrock", lambda p: torch.optim.SGD(p, lr=0.3), 20)
    assert diverged is not None and len(path) == diverged
    assert set(tables["grids"]) == set(SURFACES)


def test_activation_tables_match_torch_and_autograd():
    import torch
    import torch.nn.functional as F

    from cnn_course.widgets.static import (
        ACTIVATION_NAMES,
        ACTIVATION_POINTS,
        ACTIVATION_RANGES,
        LEAKY_SLOPES,
        activation_tables,
    )

    tables = activation_tables()
    assert len(tables["curves"]) == len(ACTIVATION_RANGES) * (len(ACTIVATION_NAMES) - 1
                                                              + len(LEAKY_SLOPES))
    for i, half_width in enumerate(ACTIVATION_RANGES):
        xs = tables["x"][i]
        assert len(xs) == ACTIVATION_POINTS and xs[0] == -half_width and xs[-1] == half_width
        assert 0.0 in xs  # the corner of ReLU and Leaky ReLU is sampled
        x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
        for name in ACTIVATION_NAMES:
            for j, slope in enumerate(LEAKY_SLOPES if name == "Leaky ReLU" else [None]):
                fn = {"ReLU": torch.relu, "Leaky ReLU": lambda t, a=slope: F.leaky_relu(t, a),
                      "sigmoid": torch.sigmoid, "tanh": torch.tanh, "GELU": F.gelu}[name]
                y = fn(x)
                (dy,) = torch.autograd.grad(y.sum(), x)
                entry = tables["curves"][f"{name},{j},{i}"]
                where = (name, slope, half_width)
                assert entry["f"] == pytest.approx(y.tolist(), abs=5.1e-5), where
                assert entry["df"] == pytest.approx(dy.tolist(), abs=5.1e-5), where
                flat = (dy.abs() < 0.01).double().mean().item()
                assert entry["flat"] == f"{flat:.0%}", where
    # autograd's value at the corner: the left branch (0 for ReLU, the slope for Leaky ReLU)
    zero = tables["x"][0].index(0.0)
    assert tables["curves"]["ReLU,0,0"]["df"][zero] == 0.0
    assert tables["curves"]["Leaky ReLU,2,0"]["df"][zero] == LEAKY_SLOPES[2]
    assert "die" in tables["curves"]["ReLU,0,0"]["note"]
    assert "Saturates" in tables["curves"]["sigmoid,0,4"]["note"]


def test_activation_explorer_state_stays_small():
    import json

    from cnn_course.widgets.static import ActivationExplorer

    explorer = ActivationExplorer()
    size = len(json.dumps(explorer.get_state(), ensure_ascii=False).encode())
    assert 20_000 < size < 150_000, size  # embedded in the page's HTML
    assert "export default { render }" in explorer._esm
    assert ".activation-explorer" in explorer._css
