import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnn_course.data import TensorBatches
from cnn_course.device import describe_device, get_device, seed_everything
from cnn_course.training import (
    History,
    Recipe,
    evaluate,
    fit,
    fit_recipe,
    make_optimizer,
    predict,
    train_epoch,
)


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


def test_evaluate_can_skip_the_loss():
    model = nn.Sequential(nn.Linear(2, 3))
    x, y = blobs(90)
    batches = [(x[:64], y[:64]), (x[64:], y[64:])]
    loss, accuracy = evaluate(model, batches)
    skipped_loss, skipped_accuracy = evaluate(model, batches, loss_fn=None)
    assert math.isnan(skipped_loss) and skipped_accuracy == accuracy and not math.isnan(loss)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))


def _learner_epoch(model, batches, optimizer, loss_fn, scheduler=None):
    """Chapter 7's exercise signature: no progress argument, batch-by-batch .item()."""
    model.train()
    total, correct, seen = 0.0, 0, 0
    for inputs, labels in batches:
        logits = model(inputs)
        loss = loss_fn(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
    return total / seen, correct / seen


@pytest.mark.parametrize("progress", [False, True])
def test_fit_runs_a_given_epoch_function_and_calls_on_epoch(progress):
    x, y = blobs()
    train = TensorBatches(x[:300], y[:300], batch_size=64, shuffle=True, seed=0)
    test = TensorBatches(x[300:], y[300:], batch_size=100)
    calls, seen_batches, reports = [], [], []

    def epoch_fn(model, batches, optimizer, loss_fn, scheduler=None):
        calls.append((optimizer, loss_fn, scheduler))
        seen_batches.append(sum(len(labels) for _, labels in batches))
        return _learner_epoch(model, batches, optimizer, loss_fn, scheduler)

    def on_epoch(epoch, history):
        assert isinstance(history, History) and history.epochs == epoch
        reports.append((epoch, history.train_seconds, history.test_acc[-1]))

    model = _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5)
    history = fit(model, train, test, optimizer, epochs=3, scheduler=scheduler, progress=progress,
                  log=None, epoch_fn=epoch_fn, on_epoch=on_epoch)
    assert [call[0] for call in calls] == [optimizer] * 3 and calls[0][2] is scheduler
    assert calls[0][1] is F.cross_entropy and seen_batches == [300] * 3
    assert [epoch for epoch, _, _ in reports] == [1, 2, 3]
    seconds = [s for _, s, _ in reports]
    assert seconds == sorted(seconds) and seconds[-1] == history.train_seconds
    assert [acc for _, _, acc in reports] == history.test_acc
    assert scheduler.last_epoch == 3 * len(train)


def test_fit_with_the_library_epoch_or_the_learners_trains_the_same_weights():
    x, y = blobs()
    weights = []
    for epoch_fn in (train_epoch, _learner_epoch):
        model = _net()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        fit(model, TensorBatches(x, y, batch_size=32, shuffle=True, seed=0), None, optimizer,
            epochs=2, progress=False, log=None, epoch_fn=epoch_fn)
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_make_optimizer_builds_the_recipes_optimizer():
    model = nn.Linear(2, 2)
    adam = make_optimizer(model, Recipe(epochs=1, optimizer="adam", max_lr=0.02,
                                        weight_decay=1e-4))
    assert type(adam) is torch.optim.Adam
    assert adam.defaults["lr"] == 0.02 and adam.defaults["weight_decay"] == 1e-4
    assert type(make_optimizer(model, Recipe(epochs=1))) is torch.optim.AdamW
    sgd = make_optimizer(model, Recipe(epochs=1, optimizer="sgd"))
    assert sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.9
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        make_optimizer(model, Recipe(epochs=1, optimizer="lbfgs"))


@pytest.mark.parametrize("recipe", [
    Recipe(epochs=2, batch_size=64, optimizer="adam", max_lr=0.01, weight_decay=0.0),
    Recipe(epochs=2, batch_size=64, optimizer="sgd", max_lr=0.05, weight_decay=5e-4,
           label_smoothing=0.1),
])
def test_fit_recipe_is_the_optimizer_a_one_cycle_schedule_and_label_smoothing(recipe):
    x, y = blobs()
    test = [(x[300:], y[300:])]

    def batches():
        return TensorBatches(x[:300], y[:300], batch_size=recipe.batch_size, shuffle=True, seed=0)

    model = _net()
    history = fit_recipe(model, batches(), test, recipe, log=None)

    expected = _net()
    train = batches()
    optimizer = make_optimizer(expected, recipe)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.max_lr,
                                                    total_steps=recipe.epochs * len(train))
    for _ in range(recipe.epochs):
        train_epoch(expected, train, optimizer,
                    nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing), scheduler)
    assert all(torch.equal(v, expected.state_dict()[k]) for k, v in model.state_dict().items())
    # the test loss is measured without label smoothing
    assert history.test_loss[-1] == pytest.approx(evaluate(expected, test)[0])
    assert history.epochs == recipe.epochs


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
