"""FunctionOptimizer turns a step function into a torch optimizer; train_steps records losses."""

import math

import torch
from torch import nn

from cnn_course.lessons.optimizers import FunctionOptimizer, train_steps
from cnn_course.reference import optimizers as reference


def tiny_problem(seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 1, 28, 28, generator=generator)
    y = torch.randint(0, 10, (64,), generator=generator)
    return [(x[:32], y[:32]), (x[32:], y[32:])]


def test_function_optimizer_matches_torch_on_lenet_with_a_schedule():
    batches = tiny_problem()
    torch.manual_seed(0)
    ours = reference.lenet5()
    theirs = reference.lenet5()
    theirs.load_state_dict(ours.state_dict())
    mine = FunctionOptimizer(ours.parameters(), reference.adamw_step, lr=0.01,
                             weight_decay=0.1)
    real = torch.optim.AdamW(theirs.parameters(), lr=0.01, weight_decay=0.1)
    schedules = [torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
                 for opt in (mine, real)]
    run_a = train_steps(ours, mine, batches, steps=5, scheduler=schedules[0])
    run_b = train_steps(theirs, real, batches, steps=5, scheduler=schedules[1])
    assert mine.param_groups[0]["lr"] == real.param_groups[0]["lr"] == 0.01 * 0.5 ** 2
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert len(run_a.losses) == 5
    assert all(math.isclose(a, b, rel_tol=1e-4) for a, b in zip(run_a.losses, run_b.losses,
                                                                strict=True))


def test_lenet5_shapes():
    model = reference.lenet5()
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert sum(p.numel() for p in model.parameters()) == 61_706


def test_train_steps_stops_on_a_non_finite_loss():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    optimizer = FunctionOptimizer(model.parameters(), reference.sgd_step, lr=10.0)
    run = train_steps(model, optimizer, tiny_problem(), steps=200,
                      loss_fn=lambda logits, labels: logits.pow(2).mean())
    assert run.losses[1] > run.losses[0]  # far too large a step on a quadratic loss
    assert run.diverged and len(run.losses) < 200
    assert run.smoothed(3).shape == (len(run.losses),)
