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
