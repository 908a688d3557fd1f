"""Drive the pooling explorer as a learner would and read what it shows."""

import matplotlib
import pytest
import torch
import torch.nn.functional as F

from cnn_course.arith import conv_output_size
from cnn_course.widgets.pooling_explorer import (
    SOURCES,
    PoolingExplorer,
    feature_map,
    pooling_problem,
)

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def explorer():
    return PoolingExplorer(photo_size=34, rows=26)


def set_values(explorer, **values):
    for name, value in values.items():
        explorer.controls[name].value = value


def pooled_reference(explorer, mode, k, s, p):
    features = feature_map(explorer.controls["source"].value, explorer.photo)
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    return pool(features, k, s, p)


def test_default_two_by_two_halves_a_non_square_map(explorer):
    set_values(explorer, mode="max", source="edge strength", stride_is_kernel=True,
               kernel_size=2, padding=0)
    height, width = feature_map("edge strength", explorer.photo).shape[-2:]
    assert (height, width) == (24, 32)
    assert explorer.error is None
    assert explorer.last_output.shape == (1, 1, 12, 16)
    assert "⌊(24 + 2·0 − 2) / 2⌋ + 1 = <b>12</b>" in explorer.summary.value
    assert "⌊(32 + 2·0 − 2) / 2⌋ + 1 = <b>16</b>" in explorer.summary.value
    assert "192 output values from 768 inputs (25.0% as many)" in explorer.summary.value
    assert "parameters: <b>0</b>" in explorer.summary.value


def test_stride_follows_the_kernel_until_unticked(explorer):
    set_values(explorer, stride_is_kernel=True, kernel_size=3, padding=0)
    assert explorer.controls["stride"].value == 3 and explorer.controls["stride"].disabled
    set_values(explorer, stride_is_kernel=False)
    assert not explorer.controls["stride"].disabled
    set_values(explorer, stride=1)
    assert explorer.last_output.shape[-2:] == (22, 30)
    assert "windows overlap (s < k)" in explorer.summary.value
    set_values(explorer, kernel_size=2, stride=3)
    assert "skip 1 pixel between them" in explorer.summary.value


def test_max_and_average_match_pytorch(explorer):
    set_values(explorer, stride_is_kernel=False, kernel_size=3, stride=2, padding=1)
    for mode in ("max", "average"):
        set_values(explorer, mode=mode)
        expected = pooled_reference(explorer, mode, 3, 2, 1)
        assert torch.allclose(explorer.last_output, expected)
    assert "padded zeros count" in explorer.summary.value


def test_every_source_gives_a_map(explorer):
    set_values(explorer, mode="max", stride_is_kernel=True, kernel_size=2, padding=0)
    for source in SOURCES:
        set_values(explorer, source=source)
        assert explorer.error is None and explorer.last_output.dim() == 4
    assert explorer.last_output.shape[-2:] == (13, 17)     # the 26x34 photo itself
    set_values(explorer, source="edge strength")


def test_impossible_combinations_show_a_message_not_a_traceback(explorer):
    set_values(explorer, stride_is_kernel=False, kernel_size=3, stride=1, padding=2)
    assert explorer.error and "at most half the kernel size" in explorer.error
    assert explorer.last_output is None
    assert "does not work" in explorer.summary.value
    set_values(explorer, padding=1)
    assert explorer.error is None
    small = PoolingExplorer(photo_size=8, rows=8)                 # a 6x6 edge map
    set_values(small, stride_is_kernel=True, kernel_size=8, padding=0)
    assert small.error and "no output position fits" in small.error
    set_values(small, padding=4)
    assert small.error is None and small.last_output.shape[-2:] == (1, 1)


def test_random_settings_agree_with_formula_and_pytorch(explorer):
    generator = torch.Generator().manual_seed(0)
    set_values(explorer, stride_is_kernel=False, source="edge strength")
    for _ in range(10):
        k, s, p = (int(torch.randint(lo, hi, (1,), generator=generator))
                   for lo, hi in [(1, 9), (1, 9), (0, 5)])
        mode = "max" if k % 2 else "average"
        set_values(explorer, mode=mode, kernel_size=k, stride=s, padding=p)
        problem = pooling_problem(24, 32, k, s, p)
        assert (explorer.error is None) == (problem is None)
        if problem is None:
            assert explorer.last_output.shape[-2:] == conv_output_size((24, 32), k, p, s)
            assert torch.allclose(explorer.last_output, pooled_reference(explorer, mode, k, s, p))


def test_pooling_problem_matches_pytorch_refusals():
    for k, s, p in [(3, 1, 2), (2, 2, 2), (8, 8, 0), (5, 1, 3)]:
        problem = pooling_problem(6, 6, k, s, p)
        with pytest.raises(RuntimeError):
            F.max_pool2d(torch.zeros(1, 1, 6, 6), k, s, p)
        assert problem
    assert pooling_problem(6, 6, 4, 3, 2) is None
    assert F.max_pool2d(torch.zeros(1, 1, 6, 6), 4, 3, 2).shape[-1] == 3
