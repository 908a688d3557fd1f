import random

import pytest
import torch
from torch import nn

from cnn_course.arith import conv_output_size, conv_params, linear_params, same_padding


def test_output_size_matches_real_layers_over_random_configurations():
    rng = random.Random(0)
    checked = 0
    while checked < 200:
        n, k = rng.randint(1, 20), rng.randint(1, 6)
        p, s, d = rng.randint(0, 3), rng.randint(1, 4), rng.randint(1, 3)
        if d * (k - 1) + 1 > n + 2 * p:
            with pytest.raises(ValueError, match="no output position fits"):
                conv_output_size(n, k, p, s, d)
            continue
        layer = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
        assert conv_output_size(n, k, p, s, d) == layer(torch.zeros(1, 1, n, n)).shape[-1]
        checked += 1


def test_pairs_and_non_square_inputs():
    layer = nn.Conv2d(1, 1, (3, 5), stride=(2, 1), padding=(1, 2))
    shape = layer(torch.zeros(1, 1, 11, 8)).shape[-2:]
    assert conv_output_size((11, 8), (3, 5), (1, 2), (2, 1)) == tuple(shape)
    assert conv_output_size(11, (3, 5), (1, 2), (2, 1)) == tuple(
        layer(torch.zeros(1, 1, 11, 11)).shape[-2:])


@pytest.mark.parametrize("k,d", [(3, 1), (4, 1), (5, 2), (2, 3)])
def test_same_padding_keeps_size(k, d):
    layer = nn.Conv2d(1, 1, k, padding="same", dilation=d)
    assert conv_output_size(9, k, "same", dilation=d) == layer(torch.zeros(1, 1, 9, 9)).shape[-1]
    assert sum(same_padding(k, d)) == d * (k - 1)


def test_worked_examples_of_chapter_one():
    assert conv_output_size(7, 3) == 5
    assert conv_output_size(7, 3, stride=2) == 3
    assert conv_params(3, 16, 2) == 208
    assert conv_params(3, 32, 5) == 2432


def test_params_match_real_layers_over_random_configurations():
    rng = random.Random(1)
    for _ in range(100):
        c_in, c_out, k = rng.randint(1, 12), rng.randint(1, 12), rng.randint(1, 5)
        bias, groups = rng.random() < 0.5, rng.choice([1, 1, 2])
        c_in, c_out = c_in * groups, c_out * groups
        layer = nn.Conv2d(c_in, c_out, k, bias=bias, groups=groups)
        assert conv_params(c_in, c_out, k, bias, groups) == sum(
            p.numel() for p in layer.parameters())
    assert linear_params(1024, 64) == sum(p.numel() for p in nn.Linear(1024, 64).parameters())


@pytest.mark.parametrize("bad", [
    dict(n=0, kernel_size=3), dict(n=5, kernel_size=3, stride=0),
    dict(n=5, kernel_size=3, padding=-1),
    dict(n=5, kernel_size=3, padding="same", stride=2), dict(n=5, kernel_size=9),
])
def test_bad_arguments_get_a_clear_value_error(bad):
    with pytest.raises(ValueError):
        conv_output_size(**bad)


def test_wrong_types_are_refused():
    with pytest.raises(TypeError, match="int or a pair"):
        conv_output_size(7.5, 3)
    with pytest.raises(TypeError):
        conv_output_size(7, True)
