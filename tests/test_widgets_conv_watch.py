"""The "watch a convolution" explorer, on the Python side: what it ships to the browser."""

import json

import pytest
import torch

from cnn_course.arith import conv_output_size
from cnn_course.images import sample_photo
from cnn_course.widgets.conv_explorer import preset_kernel
from cnn_course.widgets.conv_watch import (
    WATCH_KERNEL_SIZES,
    WATCH_KERNELS,
    WATCH_PATCH,
    WATCH_RANGES,
    ConvWatchExplorer,
    photo_patch,
    watch_output_sizes,
)


@pytest.fixture(scope="module")
def explorer():
    return ConvWatchExplorer()


def test_the_input_is_a_patch_of_the_course_photo(explorer):
    size, top, left = WATCH_PATCH["size"], WATCH_PATCH["top"], WATCH_PATCH["left"]
    for channels, gray in (("1", True), ("3", False)):
        photo = sample_photo(WATCH_PATCH["photo_size"], gray=gray)
        expected = photo[:, top:top + size, left:left + size].double()
        shipped = torch.tensor(explorer.images[channels], dtype=torch.float64)
        assert shipped.shape == (int(channels), size, size)
        assert torch.allclose(shipped, expected, atol=0.005 + 1e-9), \
            f"{channels}-channel patch differs from sample_photo by more than its rounding"
        # shown with 2 decimals, and computed with exactly what is shown
        assert torch.equal(shipped, (shipped * 100).round() / 100)
    # a real patch: an edge (dark cap over the face) and colour (face beside the blue sky)
    gray = torch.tensor(explorer.images["1"][0])
    assert gray.max() - gray.min() > 0.4
    red, _, blue = torch.tensor(explorer.images["3"])
    assert (blue - red)[:, -1].mean() > 0.2 and (red - blue)[:, 0].mean() > 0.2


def test_a_patch_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        photo_patch(True, photo_size=24, top=20, left=0, size=8)


def test_named_kernels_are_preset_kernel(explorer):
    assert set(explorer.presets) == set(WATCH_KERNELS)
    assert {"vertical edge", "horizontal edge", "blur", "sharpen", "identity"} <= set(WATCH_KERNELS)
    for name in WATCH_KERNELS:
        for k in WATCH_KERNEL_SIZES:
            shipped = torch.tensor(explorer.presets[name][str(k)], dtype=torch.float64)
            assert torch.equal(shipped, preset_kernel(name, k).double()), (name, k)


def test_output_sizes_are_arith_for_every_setting(explorer):
    n = WATCH_PATCH["size"]
    (p0, p1), (s0, s1), (d0, d1) = (WATCH_RANGES[x] for x in ("padding", "stride", "dilation"))
    settings = [(k, p, s, d) for k in WATCH_KERNEL_SIZES for p in range(p0, p1 + 1)
                for s in range(s0, s1 + 1) for d in range(d0, d1 + 1)]
    assert len(explorer.output_sizes) == len(settings)
    problems = 0
    for k, p, s, d in settings:
        shown = explorer.output_sizes[f"{k},{p},{s},{d}"]
        try:
            assert shown == conv_output_size(n, k, p, s, d), (k, p, s, d)
        except ValueError as problem:
            assert shown == str(problem), (k, p, s, d)
            problems += 1
    assert problems > 0, "some settings have no output; the explorer must be able to say why"
    assert watch_output_sizes(n)["5,0,1,3"].startswith("the kernel spans 13 pixels")


def test_ranges_match_chapter_one_explorer(explorer):
    from cnn_course.widgets.static import CONV_RANGES

    for name, (low, high) in WATCH_RANGES.items():
        assert explorer.ranges[name] == [low, high] == list(CONV_RANGES[name])


def test_front_end_and_state_size(explorer):
    assert "export default { render }" in explorer._esm
    assert "function conv2d(" in explorer._esm
    assert ".conv-watch" in explorer._css and ".cnn-explorer" in explorer._css
    state = {name: getattr(explorer, name) for name in
             ("images", "patch", "presets", "kernel_sizes", "ranges", "output_sizes", "values")}
    assert len(json.dumps(state)) < 20_000, "keep the saved state small"


def test_bad_settings_get_a_clear_message(explorer):
    with pytest.raises(Exception, match="channels must be 1"):
        explorer.values = {**explorer.values, "channels": 2}
    with pytest.raises(Exception, match="padding must be an int from 0 to 4"):
        ConvWatchExplorer(values={**explorer.values, "padding": 9})
    with pytest.raises(Exception, match="kernel must be one of"):
        explorer.values = {**explorer.values, "kernel": "emboss"}
    with pytest.raises(Exception, match=r"shape \(1, 3, 3\)"):
        explorer.values = {**explorer.values, "kernel": "custom", "weights": [[1, 2], [3, 4]]}
    custom = ConvWatchExplorer(values={**explorer.values, "kernel": "custom",
                                       "weights": [[[0, 1, 0], [1, -4, 1], [0, 1, 0]]]})
    assert custom.values["weights"][0][1][1] == -4
    assert explorer.values["channels"] == 1  # the refused settings left it unchanged
