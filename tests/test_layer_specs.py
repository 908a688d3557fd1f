"""The layer-spec format of Chapters 3, 4 and 8 (cnn_course.arith): validation, the one builder
of real layers, and the chapters' answers compared with those layers."""

import math
import random

import pytest
import torch
from torch import nn

from cnn_course.arith import (
    check_spec,
    check_specs,
    conv_output_size,
    layers_from_specs,
    spec_output_shapes,
)
from cnn_course.reference.cifar import linear_in_features
from cnn_course.reference.fully_connected import CIFAR10_SPECS, flatten_size
from cnn_course.reference.pooling import pooled_shapes


def test_the_builder_makes_the_layers_the_specs_name():
    model = layers_from_specs(3, [("conv", 32, 5, 1, 2), ("pool", 3, 2, 1), ["conv", 8, 3, 2, 0]])
    conv, pool, second = model
    assert isinstance(model, nn.Sequential) and len(model) == 3
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding) == \
        (3, 32, (5, 5), (1, 1), (2, 2))
    assert isinstance(pool, nn.MaxPool2d) and (pool.kernel_size, pool.stride, pool.padding) == \
        (3, 2, 1)
    assert (second.in_channels, second.out_channels, second.stride) == (32, 8, (2, 2))
    assert len(layers_from_specs(1, [])) == 0


def test_the_cifar_specs_build_the_chapter_model():
    model = layers_from_specs(3, CIFAR10_SPECS)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 64, 4, 4)
    assert sum(p.numel() for p in model.parameters()) == 2432 + 25632 + 51264


def test_checked_specs_are_tuples_of_python_ints():
    spec = check_spec(["pool", torch.tensor(3).item(), 2, 1])
    assert spec == ("pool", 3, 2, 1) and type(spec) is tuple
    assert check_specs([]) == []


@pytest.mark.parametrize("spec, words", [
    (("pool", 2, 2), '("pool", kernel_size, stride, padding), 4 entries'),
    (("conv", 6, 5, 1), "has 4 entries; a conv spec is"),
    (("conv", 6, 5, 1, 0, 0), "has 6 entries"),
    (("avg", 2, 2, 0), "is neither"),
    ("conv", "is neither"),
    ((), "is neither"),
    (("conv", 0, 3, 1, 0), "out_channels must be an int of at least 1, got 0"),
    (("conv", 6, 5.0, 1, 0), "kernel_size must be an int of at least 1, got 5.0"),
    (("pool", 2, 0, 0), "stride must be an int of at least 1, got 0"),
    (("conv", 6, 3, 1, -1), "padding must be an int of at least 0, got -1"),
    (("pool", True, 1, 0), "kernel_size must be an int"),
    (("pool", 2, 2, 2), "more than half the kernel size 2"),
])
def test_a_bad_spec_is_named_with_its_position(spec, words):
    with pytest.raises(ValueError) as error:
        check_specs([("conv", 4, 3, 1, 1), spec])
    message = str(error.value)
    assert message.startswith("layer 1: ") and repr(spec) in message and words in message
    with pytest.raises(ValueError, match="layer 1: "):
        layers_from_specs(1, [("conv", 4, 3, 1, 1), spec])


def test_specs_must_be_a_list():
    with pytest.raises(ValueError, match="must be a list of tuples"):
        check_specs("conv")
    with pytest.raises(ValueError, match="must be a list of tuples"):
        check_specs(None)


def test_output_shapes_name_a_layer_that_does_not_fit():
    with pytest.raises(ValueError, match=r"layer 1 \('pool', 3, 3, 0\) does not fit its 2x2 "):
        spec_output_shapes((1, 4, 4), [("conv", 2, 3, 1, 0), ("pool", 3, 3, 0)])
    with pytest.raises(ValueError, match=r"layer 0 \('conv', 2, 5, 1, 0\) does not fit its 4x4"):
        spec_output_shapes((1, 4, 4), [("conv", 2, 5, 1, 0)])
    with pytest.raises(ValueError, match=r"input_shape must be \(C, H, W\)"):
        spec_output_shapes((4, 4), [])


def test_output_shapes_leave_the_global_seed_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    spec_output_shapes((5, 33, 29), [("conv", 9, 3, 1, 1), ("pool", 2, 2, 0)])
    assert torch.equal(torch.rand(3), expected)


def _random_stack(rng: random.Random) -> tuple[tuple[int, int, int], list[tuple]]:
    """A random input shape and 1 to 6 layers that all fit it (possibly non-square)."""
    shape = (rng.randint(1, 4), rng.randint(8, 60), rng.randint(8, 60))
    specs, height, width = [], shape[1], shape[2]
    for _ in range(rng.randint(1, 6)):
        kernel, stride = rng.randint(1, 5), rng.randint(1, 3)
        padding = rng.randint(0, kernel // 2)
        if kernel > min(height, width) + 2 * padding:
            break
        specs.append(("conv", rng.randint(1, 12), kernel, stride, padding) if rng.random() < 0.5
                     else ("pool", kernel, stride, padding))
        height = conv_output_size(height, kernel, padding, stride)
        width = conv_output_size(width, kernel, padding, stride)
    return shape, specs


def test_the_chapters_answers_agree_with_the_real_layers_over_random_specs():
    rng = random.Random(3)
    for _ in range(150):
        shape, specs = _random_stack(rng)
        with torch.no_grad():
            out = layers_from_specs(shape[0], specs)(torch.zeros(2, *shape))
        real = spec_output_shapes(shape, specs)
        if specs:
            assert real[-1] == tuple(out.shape[1:]), (shape, specs)
        assert pooled_shapes(shape, specs) == real, (shape, specs)
        flat = math.prod(out.shape[1:])
        assert flatten_size(shape, specs) == flat == linear_in_features(shape, specs), \
            (shape, specs)
