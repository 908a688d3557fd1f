"""Drive the convolution explorer as a learner would and read what it shows."""

import matplotlib
import pytest
import torch
import torch.nn.functional as F

from cnn_course.arith import conv_output_size, conv_params
from cnn_course.widgets.conv_explorer import ConvExplorer, parse_kernel, preset_kernel

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def explorer():
    return ConvExplorer(photo_size=32)


def set_values(explorer, **values):
    explorer.controls["same"].value = False
    for name, value in values.items():
        explorer.controls[name].value = value


def test_worked_example_stride_two(explorer):
    set_values(explorer, n=7, kernel_size=3, padding=0, stride=2, dilation=1, preset="blur")
    assert "= <b>3</b>" in explorer.summary.value
    assert explorer.error is None
    assert explorer.last_feature_map.shape[-1] == conv_output_size(32, 3, 0, 2)
    assert explorer.controls["out_row"].max == 2


def test_parameter_count_and_channels(explorer):
    set_values(explorer, kernel_size=5, in_channels=3, out_channels=32, stride=1, padding=2)
    assert conv_params(3, 32, 5) == 2432
    assert "5·5·3·32 + 32 = <b>2,432</b>" in explorer.summary.value
    assert explorer.last_feature_map.shape == (1, 1, 32, 32)


def test_same_padding(explorer):
    set_values(explorer, n=9, kernel_size=5, stride=1, dilation=1)
    explorer.controls["same"].value = True
    assert "o = n = <b>9</b>" in explorer.summary.value
    assert explorer.last_feature_map.shape[-1] == 32
    explorer.controls["stride"].value = 2
    assert explorer.error and "stride 1" in explorer.error
    assert "does not work" in explorer.summary.value
    explorer.controls["same"].value = False


def test_impossible_combination_shows_a_message_not_a_traceback(explorer):
    set_values(explorer, n=3, kernel_size=7, padding=0, stride=1, dilation=1)
    assert explorer.error and "no output position fits" in explorer.error
    assert explorer.last_feature_map is None
    set_values(explorer, n=7, kernel_size=3)
    assert explorer.error is None


def test_custom_kernel_is_used_and_validated(explorer):
    set_values(explorer, n=8, kernel_size=3, padding=1, stride=1, dilation=1, in_channels=1)
    explorer.controls["preset"].value = "custom"
    explorer.controls["custom"].value = "0,0,0; 0,2,0; 0,0,0"
    assert torch.allclose(explorer.last_feature_map[0, 0], 2 * explorer.photo[0], atol=1e-6)
    explorer.controls["custom"].value = "1,2; 3"
    assert "square" in explorer.error
    explorer.controls["custom"].value = "a,b; c,d"
    assert "number" in explorer.error
    explorer.controls["custom"].value = "1,0; 0,1"
    assert "set kernel k to 2" in explorer.error
    explorer.controls["preset"].value = "vertical edge"


def test_random_configurations_agree_with_formula_and_torch(explorer):
    generator = torch.Generator().manual_seed(0)
    for _ in range(15):
        k, p, s, d = (int(torch.randint(lo, hi, (1,), generator=generator))
                      for lo, hi in [(1, 8), (0, 5), (1, 5), (1, 4)])
        set_values(explorer, kernel_size=k, padding=p, stride=s, dilation=d, n=16)
        expected = conv_output_size(16, k, p, s, d)
        assert f"= <b>{expected}</b>" in explorer.summary.value
        kernel = preset_kernel("vertical edge", k)
        real = F.conv2d(explorer.photo[None], kernel[None, None], padding=p, stride=s, dilation=d)
        assert torch.allclose(explorer.last_feature_map, real, atol=1e-5)


def test_parse_kernel():
    assert parse_kernel("1 0 -1; 2,0,-2; 1,0,-1").shape == (3, 3)
    with pytest.raises(ValueError):
        parse_kernel("  ")
