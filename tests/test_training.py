import pytest
import torch
from torch import nn

from cnn_course.data import TensorBatches
from cnn_course.device import describe_device, get_device, seed_everything
from cnn_course.training import evaluate, fit, predict


def blobs(n=400, seed=0):
    generator = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=generator)
    centres = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    return centres[y] + 0.5 * torch.randn(n, 2, generator=generator), y


def test_fit_learns_a_separable_problem_and_records_history():
    seed_everything(0)
    x, y = blobs()
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    train = TensorBatches(x[:300], y[:300], batch_size=32, shuffle=True, seed=0)
    test = TensorBatches(x[300:], y[300:], batch_size=100)
    before = evaluate(model, test)[1]
    lines = []
    history = fit(model, train, test, torch.optim.Adam(model.parameters(), 1e-2), epochs=5,
                  progress=False, log=lines.append)
    assert history.epochs == 5 and len(history.test_acc) == 5 and history.train_seconds > 0
    assert history.test_acc[-1] > 0.95 > before
    assert history.train_loss[-1] < history.train_loss[0]
    assert lines[-1].startswith("epoch 5/5: train loss")
    predicted, true = predict(model, test)
    assert (predicted == true).float().mean().item() == pytest.approx(history.test_acc[-1])


def test_evaluate_restores_training_mode_and_uses_no_grad():
    model = nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.5))
    model.train()
    x, y = blobs(50)
    evaluate(model, [(x, y)])
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_seed_everything_repeats_runs():
    seed_everything(3)
    a = torch.randn(5)
    seed_everything(3)
    assert torch.equal(a, torch.randn(5))


def test_device_choice(monkeypatch):
    monkeypatch.setenv("CNN_COURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.delenv("CNN_COURSE_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else get_device().type
    assert get_device().type == expected
    assert describe_device(torch.device("cpu")).startswith("CPU:")
