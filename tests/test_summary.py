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


def test_wrong_input_shape_raises_torch_error():
    with pytest.raises(RuntimeError):
        model_summary(nn.Sequential(nn.Flatten(), nn.Linear(400, 10)), (1, 28, 28))
