import pytest
import torch
from torch import nn

from cnn_course.models import (
    C3_CONNECTIONS,
    LeNet5,
    c3_table_params,
    count_params,
    lenet5_for_mnist,
)
from cnn_course.summary import model_summary


def test_lenet5_for_32x32_images_matches_the_paper_shapes_and_61706_parameters():
    summary = model_summary(LeNet5(), (1, 32, 32))
    shapes = {row.name: row.output_shape for row in summary.rows}
    params = {row.name: row.params for row in summary.rows}
    assert shapes == {"c1": (6, 28, 28), "act1": (6, 28, 28), "s2": (6, 14, 14),
                      "c3": (16, 10, 10), "act3": (16, 10, 10), "s4": (16, 5, 5),
                      "flatten": (400,), "c5": (120,), "act5": (120,), "f6": (84,),
                      "act6": (84,), "output": (10,)}
    assert (params["c1"], params["c3"], params["c5"], params["f6"], params["output"]) == (
        156, 2416, 48120, 10164, 850)
    assert summary.total_params == count_params(LeNet5()) == 61706


def test_28x28_digits_need_padding_on_c1():
    with pytest.raises(RuntimeError, match="256 and 400x120"):
        LeNet5()(torch.zeros(2, 1, 28, 28))
    assert LeNet5(c1_padding=2)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert lenet5_for_mnist()(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert count_params(lenet5_for_mnist()) == 61706


def test_other_input_sizes_channels_and_classes():
    model = LeNet5(num_classes=26, in_channels=3, input_size=36)
    assert model.flat_features == 16 * 6 * 6
    assert model(torch.zeros(2, 3, 36, 36)).shape == (2, 26)
    assert LeNet5(input_size=30)(torch.zeros(1, 1, 30, 30)).shape == (1, 10)  # 26 -> 13 -> 9 -> 4


def test_the_1998_flavour_uses_tanh_and_average_pooling():
    model = LeNet5(activation=nn.Tanh, pooling=nn.AvgPool2d)
    assert isinstance(model.act1, nn.Tanh) and isinstance(model.s2, nn.AvgPool2d)
    assert count_params(model) == 61706


def test_count_params_can_skip_frozen_parameters():
    model = LeNet5()
    model.c5.weight.requires_grad_(False)
    assert count_params(model) == 61706
    assert count_params(model, trainable_only=True) == 61706 - 400 * 120


def test_c3_connection_table_is_the_papers():
    sizes = [len(inputs) for inputs in C3_CONNECTIONS]
    assert len(C3_CONNECTIONS) == 16
    assert sizes == [3] * 6 + [4] * 9 + [6]
    assert all(len(set(inputs)) == len(inputs) and set(inputs) <= set(range(6))
               for inputs in C3_CONNECTIONS)
    # every S2 map feeds exactly 10 of the 16 C3 maps (the rows of the paper's table)
    assert [sum(s in inputs for inputs in C3_CONNECTIONS) for s in range(6)] == [10] * 6
    assert c3_table_params() == (6 * 3 + 9 * 4 + 1 * 6) * 25 + 16 == 1516
