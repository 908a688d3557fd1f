from collections import OrderedDict

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
from cnn_course.reference import lenet as lenet_reference
from cnn_course.reference import optimizers as optimizers_reference
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


# ---- one LeNet-5 for every chapter ------------------------------------------------------------

def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def _seeded(make, seed=0):
    torch.manual_seed(seed)
    return make()


def test_parameters_are_created_in_the_order_of_the_earlier_sequential():
    """Same seed, same initial weights as the layer list the chapters were run with, so the
    notebooks' stored outputs stay reproducible."""
    def earlier():
        return nn.Sequential(OrderedDict([
            ("c1", nn.Conv2d(1, 6, kernel_size=5, padding=2)), ("act1", nn.ReLU()),
            ("s2", nn.MaxPool2d(2)), ("c3", nn.Conv2d(6, 16, kernel_size=5)),
            ("act3", nn.ReLU()), ("s4", nn.MaxPool2d(2)), ("flatten", nn.Flatten()),
            ("c5", nn.Linear(400, 120)), ("act5", nn.ReLU()), ("f6", nn.Linear(120, 84)),
            ("act6", nn.ReLU()), ("output", nn.Linear(84, 10))]))
    old, new = _seeded(earlier, 3), _seeded(lenet5_for_mnist, 3)
    assert _same_weights(old, new)
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(old(x), new(x))
    assert str(old).replace("Sequential", "LeNet5", 1) == str(new)


def test_the_reference_lenet5s_are_the_course_model():
    model = _seeded(lenet_reference.LeNet5)
    assert isinstance(model, LeNet5) and lenet_reference.lenet5 is lenet_reference.LeNet5
    assert _same_weights(model, _seeded(lenet5_for_mnist))
    assert isinstance(lenet_reference.LeNet5(num_classes=47).output, nn.Linear)
    assert lenet_reference.LeNet5(num_classes=47).output.out_features == 47

    chapter6 = _seeded(optimizers_reference.lenet5)
    course = _seeded(lenet5_for_mnist)
    assert type(chapter6) is nn.Sequential  # the chapter prints it as one
    assert [(name, type(layer)) for name, layer in chapter6.named_children()] == [
        (name, type(layer)) for name, layer in course.named_children()]
    assert str(chapter6) == str(course).replace("LeNet5", "Sequential", 1)
    assert _same_weights(chapter6, course)
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(chapter6(x), course(x)) and torch.equal(model(x), course(x))


def test_layers_are_registered_in_the_order_the_forward_pass_runs_them():
    model = LeNet5(num_classes=7, in_channels=3, input_size=36)
    rows = model_summary(model, (3, 36, 36)).rows
    assert [row.name for row in rows] == [name for name, _ in model.named_children()]
    x = torch.randn(2, 3, 36, 36)
    with torch.no_grad():
        assert torch.equal(nn.Sequential(*model.children())(x), model(x))


def test_an_extra_attribute_module_is_not_run_by_the_forward_pass():
    model = lenet5_for_mnist()
    model.spare = nn.Linear(3, 3)  # the Chapter 7 checker relies on this to spot unused layers
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
