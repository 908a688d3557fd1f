import random

import numpy as np
import pytest
import torch
from torch import nn

from cnn_course.arith import conv_output_size, conv_params, linear_params, same_padding

# PyTorch notes that 'same' padding with an even kernel copies the input; true and irrelevant.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


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


def _random_pair(rng: random.Random, low: int, high: int) -> int | tuple[int, int]:
    """An int, or (mostly) a pair whose two values differ."""
    if rng.random() < 0.25:
        return rng.randint(low, high)
    return rng.randint(low, high), rng.randint(low, high)


def _both(value: int | tuple[int, int]) -> tuple[int, int]:
    return value if isinstance(value, tuple) else (value, value)


def test_non_square_pairs_match_real_layers_over_random_configurations():
    rng = random.Random(2)
    checked = refused = 0
    while checked < 200:
        n = (rng.randint(1, 20), rng.randint(1, 20))
        k, p = _random_pair(rng, 1, 6), _random_pair(rng, 0, 3)
        s, d = _random_pair(rng, 1, 4), _random_pair(rng, 1, 3)
        fits = all(dd * (kk - 1) + 1 <= nn_ + 2 * pp
                   for nn_, kk, pp, dd in zip(n, _both(k), _both(p), _both(d), strict=True))
        if not fits:
            with pytest.raises(ValueError, match="no output position fits"):
                conv_output_size(n, k, p, s, d)
            refused += 1
            continue
        layer = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
        expected = tuple(layer(torch.zeros(1, 1, *n)).shape[-2:])
        assert conv_output_size(n, k, p, s, d) == expected, (n, k, p, s, d)
        checked += 1
    assert refused > 0


def test_same_padding_with_pairs_matches_real_layers():
    rng = random.Random(3)
    for _ in range(50):
        n, k, d = (rng.randint(1, 15), rng.randint(1, 15)), _random_pair(rng, 1, 6), \
            _random_pair(rng, 1, 3)
        layer = nn.Conv2d(1, 1, k, padding="same", dilation=d)
        expected = tuple(layer(torch.zeros(1, 1, *n)).shape[-2:])
        assert conv_output_size(n, k, "same", dilation=d) == expected == n
    with pytest.raises(ValueError, match="stride 1"):
        conv_output_size((9, 7), (3, 5), "same", stride=(1, 2))


def test_numpy_and_other_integer_types_are_accepted():
    assert conv_output_size(np.int64(7), 3) == 5
    assert conv_output_size((np.int32(11), 8), np.int64(3), np.int8(1), np.int16(2)) == (6, 4)
    assert conv_params(np.int64(3), np.int64(16), np.int64(2)) == 208
    assert type(conv_params(np.int64(3), 16, 2)) is int
    assert linear_params(np.int64(1024), 64) == 65_600
    assert same_padding(np.int64(4)) == (1, 2)


@pytest.mark.parametrize("call,error,message", [
    (lambda: conv_params(3, 16, 3, groups=0), ValueError, "groups must be a positive int"),
    (lambda: conv_params(3, 16, 3, groups=2), ValueError, "divisible by groups"),
    (lambda: conv_params(-3, 16, 3), ValueError, "in_channels must be a positive int"),
    (lambda: conv_params(3, 0, 3), ValueError, "out_channels must be a positive int"),
    (lambda: conv_params("3", 16, 3), TypeError, "in_channels must be a positive int"),
    (lambda: conv_params(3.0, 16, 3), TypeError, "in_channels must be a positive int"),
    (lambda: conv_params(3, 16, 0), ValueError, "kernel_size must be positive"),
    (lambda: conv_params(3, 16, 3, bias="yes"), TypeError, "bias must be True or False"),
    (lambda: linear_params(-3, 4), ValueError, "in_features must be a positive int"),
    (lambda: linear_params(3.5, 4), TypeError, "in_features must be a positive int"),
    (lambda: linear_params(3, True), TypeError, "out_features must be a positive int"),
    (lambda: conv_output_size(7, 3, padding="full"), ValueError, "'same' or 'valid'"),
    (lambda: conv_output_size((7, 0), 3, padding="same"), ValueError, "must be positive"),
    (lambda: same_padding(0), ValueError, "kernel_size must be a positive int"),
])
def test_bad_counts_get_a_clear_message(call, error, message):
    with pytest.raises(error, match=message):
        call()
