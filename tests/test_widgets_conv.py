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


@pytest.mark.slow
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


def test_same_padding_with_an_even_kernel_draws_the_padding_pytorch_uses(explorer, monkeypatch):
    import warnings

    import cnn_course.widgets.conv_explorer as module
    drawn = []
    real_draw = module.draw_conv_grid

    def recording_draw(ax, *args, **kwargs):
        real_draw(ax, *args, **kwargs)
        drawn.append((ax.get_xlim(), [p.get_bbox().bounds for p in ax.patches]))
    monkeypatch.setattr(module, "draw_conv_grid", recording_draw)
    torch.set_warn_always(True)  # PyTorch warns about an even 'same' kernel once per process
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            set_values(explorer, n=7, kernel_size=4, stride=1, dilation=1, preset="blur")
            explorer.controls["same"].value = True
            explorer.controls["out_row"].value = explorer.controls["out_row"].max
            explorer.controls["out_col"].value = explorer.controls["out_col"].max
    finally:
        torch.set_warn_always(False)
    assert not [w for w in caught if "padding='same'" in str(w.message)]
    assert explorer.error is None and "1 before and 2 after" in explorer.summary.value
    assert explorer.controls["out_row"].value == 6
    (x_limits, boxes) = drawn[-1]
    assert x_limits == (0, 10)                   # 1 + 7 + 2 cells, as F.conv2d pads
    window = boxes[-1]                           # the red outline of the kernel window
    assert window[0] + window[2] <= 10 and window[1] + window[3] <= 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real = F.conv2d(explorer.photo[None], preset_kernel("blur", 4)[None, None],
                        padding="same")
    assert torch.allclose(explorer.last_feature_map, real, atol=1e-6)
    explorer.controls["same"].value = False


def test_draw_conv_grid_takes_before_and_after_padding():
    import matplotlib.pyplot as plt

    from cnn_course.plots import draw_conv_grid
    fig, ax = plt.subplots()
    draw_conv_grid(ax, 7, 4, (1, 2), 1, 1, 6, 6)
    grey = [p for p in ax.patches if p.get_facecolor()[:3] != (1.0, 1.0, 1.0)
            and p.get_bbox().width == 1 and p.get_alpha() is None]
    assert ax.get_xlim() == (0, 10) and len(grey) == 10 * 10 - 7 * 7
    with pytest.raises(ValueError, match="padding"):
        draw_conv_grid(ax, 7, 3, -1, 1, 1, 0, 0)
    plt.close(fig)


def test_custom_kernel_must_be_finite(explorer):
    for text in ("nan, 0; 0, 1", "1, inf; 0, 1"):
        with pytest.raises(ValueError, match="finite"):
            parse_kernel(text)
    set_values(explorer, n=8, kernel_size=2, padding=0, stride=1, dilation=1)
    explorer.controls["preset"].value = "custom"
    explorer.controls["custom"].value = "nan, 0; 0, 1"
    assert explorer.error and "finite" in explorer.error
    explorer.controls["preset"].value = "vertical edge"
