import pytest
from torch import nn

from cnn_course.summary import model_summary


def test_keras_example_shapes_and_counts():
    # A Linear layer on a 4-D tensor acts on the last axis only.
    model = nn.Sequential(nn.Conv2d(3, 16, 2), nn.MaxPool2d(2), nn.Linear(111, 133))
    summary = model_summary(model, (3, 224, 224))
    assert [r.output_shape for r in summary.rows] == [(16, 223, 223), (16, 111, 111),
                                                      (16, 111, 133)]
    assert [r.params for r in summary.rows] == [208, 0, 111 * 133 + 133]
    assert summary.total_params == 208 + 111 * 133 + 133


def test_nested_models_list_leaves_and_totals():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU()),
                          nn.Flatten(), nn.Linear(6 * 28 * 28, 10))
    model[2].weight.requires_grad_(False)
    summary = model_summary(model, (1, 28, 28))
    assert [r.name for r in summary.rows] == ["0.0", "0.1", "1", "2"]
    assert summary.rows[2].output_shape == (6 * 28 * 28,)
    assert summary.total_params == 156 + 6 * 28 * 28 * 10 + 10
    assert summary.trainable_params == 156 + 10
    text = str(summary)
    assert "trainable parameters" in text and "47,206" in text


HINT = "input_shape is one sample without the batch dimension, e.g. (1, 28, 28)"


def _conv_model() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 24 * 24, 10))


def test_a_layer_that_fails_is_named_with_the_shape_it_received():
    model = nn.Sequential(nn.Flatten(), nn.Linear(400, 10))
    with pytest.raises(ValueError) as caught:
        model_summary(model, (1, 28, 28))
    message = str(caught.value)
    assert "layer 1 (Linear) failed on a tensor of shape (1, 784)" in message
    assert "(1, 1, 28, 28), batch dimension included" in message and message.endswith(HINT)


def test_the_batch_dimension_given_by_mistake_is_explained():
    with pytest.raises(ValueError, match=r"layer 0 \(Conv2d\) failed on a tensor of shape "
                                         r"\(1, 1, 1, 28, 28\)") as caught:
        model_summary(_conv_model(), (1, 1, 28, 28))
    assert str(caught.value).endswith(HINT)
    with pytest.raises(ValueError, match=r"layer 3 \(Linear\) failed") as caught:
        model_summary(_conv_model(), (28, 28))  # the convolution reads it as 1 unbatched image
    assert str(caught.value).endswith(HINT)


@pytest.mark.parametrize("bad,error", [(28, TypeError), ((), TypeError), ((1, 28.0, 28), TypeError),
                                       ((1, True, 28), TypeError), ("1, 28, 28", TypeError),
                                       ((1, 0, 28), ValueError), ([1, -28, 28], ValueError)])
def test_input_shape_must_be_positive_ints(bad, error):
    with pytest.raises(error, match="input_shape must") as caught:
        model_summary(_conv_model(), bad)
    assert str(caught.value).endswith(HINT)


def test_model_state_is_restored_after_a_failure():
    model = nn.Sequential(nn.Flatten(), nn.Linear(400, 10))
    model.train()
    with pytest.raises(ValueError):
        model_summary(model, (1, 28, 28))
    assert model.training and not model[1]._forward_hooks and not model[1]._forward_pre_hooks
    summary = model_summary(model, [400])
    assert [r.output_shape for r in summary.rows] == [(400,), (10,)]
