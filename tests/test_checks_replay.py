"""The checkers are replay-safe: a grader runs a checker once with the learner's answer
recorded (its results, its arguments' state afterwards, every ``observed`` unit), then again
with every call answered from the records, and both runs must reach the same verdict.

The recorder and replayer below are a small model of the grader's: results are copied (tensors
lose their autograd graph, modules are rebuilt from their traced forward pass), arguments get
back only their values, gradients, modules' state and plain attributes, and learner code never
runs in the replay except through the modules it returned."""

import copy

import pytest
import torch
import torch.nn.functional as F
from test_checks_contract import _METHOD_CHEATS, _exercises, _modules
from torch import nn

from cnn_course.checks import core


def _copy(value: object) -> object:
    """A result as the judge receives it: values only, no autograd graph, no shared objects."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, list | tuple):
        copied = [_copy(v) for v in value]
        return copied if isinstance(value, list) else tuple(copied)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, nn.Module):  # rebuilt from its traced forward pass and weights
        try:
            return torch.fx.symbolic_trace(copy.deepcopy(value))
        except Exception:  # noqa: BLE001 - not traceable: a plain copy will do here
            return copy.deepcopy(value)
    return copy.deepcopy(value)  # numbers, strings


def _capture(value: object) -> object:
    """The state of an argument after a call, or None for objects whose state is not sent."""
    if isinstance(value, torch.Tensor):
        grad = None if value.grad is None else value.grad.detach().clone()
        return ("tensor", value.detach().clone(), grad)
    if isinstance(value, nn.Module):
        return ("module", copy.deepcopy(value))
    if isinstance(value, list | tuple):
        return ("sequence", [_capture(v) for v in value])
    if isinstance(value, dict):
        return ("dict", {k: _capture(v) for k, v in value.items()})
    return None


def _apply(target: object, state: object) -> None:
    if state is None:
        return
    kind, *content = state
    if kind == "tensor":
        values, grad = content
        with torch.no_grad():
            if target.shape == values.shape:
                target.copy_(values)
            else:
                target.data = values.clone()
        target.grad = grad
    elif kind == "module":
        (recorded,) = content
        target.load_state_dict(recorded.state_dict())
        for mine, theirs in zip(target.parameters(), recorded.parameters(), strict=True):
            mine.grad = None if theirs.grad is None else theirs.grad.clone()
        for mine, theirs in zip(target.modules(), recorded.modules(), strict=True):
            mine.training = theirs.training
            for name, value in vars(theirs).items():
                if not name.startswith("_") and isinstance(value, bool | int | float | str):
                    setattr(mine, name, value)
    elif kind == "sequence":
        (states,) = content
        if isinstance(target, list) and len(target) != len(states):
            target[:] = [_copy(s[1]) for s in states]  # (tensors only, in these checkers)
            return
        for item, item_state in zip(target, states, strict=True):
            _apply(item, item_state)
    elif kind == "dict":
        (states,) = content
        for key, item_state in states.items():
            if key in target:
                _apply(target[key], item_state)
            elif item_state is not None:
                target[key] = _copy(item_state[1])


class _Recorder:
    def __init__(self) -> None:
        self.records: list[dict] = []
        self._depth = 0

    def wrap(self, answer):
        def recorded(*args, **kwargs):
            return self._run("call", lambda: answer(*args, **kwargs), (args, kwargs))
        return recorded

    def unit(self, compute):
        return self._run("unit", compute, None)

    def _run(self, kind, compute, arguments):
        if self._depth:  # inside a unit: the unit is the record
            return compute()
        self._depth += 1
        try:
            result = compute()
            outcome = {"result": _copy(result)}
        except Exception as error:
            outcome = {"error": error}
        finally:
            self._depth -= 1
        self.records.append({"kind": kind, "rng": torch.get_rng_state(),
                             "state": None if arguments is None else _capture(arguments),
                             **outcome})
        if "error" in outcome:
            raise outcome["error"]
        return result


class _Replayer:
    def __init__(self, records: list[dict]) -> None:
        self.records = list(records)

    def function(self, *args, **kwargs):
        return self._next("call", (args, kwargs))

    def unit(self, compute):
        return self._next("unit", None)

    def _next(self, kind, arguments):
        assert self.records, "the replay asked for more results than were recorded"
        record = self.records.pop(0)
        assert record["kind"] == kind, f"the replay expected a {kind}, the record is a " \
            f"{record['kind']}"
        if arguments is not None:
            _apply(arguments, record["state"])
        torch.set_rng_state(record["rng"])
        if "error" in record:
            raise record["error"]
        return _copy(record["result"])


def _verdict(result: core.CheckResult) -> tuple:
    return result.passed, result.method, result.cases_run, result.message


def _assert_replay_agrees(chapter: str, exercise: str, answer, hidden: bool = False,
                          seed: int = 1) -> core.CheckResult:
    checks, _ = _modules(chapter)
    recorder = _Recorder()
    with core.hidden_seed(seed), core.observing(recorder):
        torch.manual_seed(0)
        recorded = checks.run_check(exercise, recorder.wrap(answer), hidden)
    replayer = _Replayer(recorder.records)
    with core.hidden_seed(seed), core.observing(replayer):
        torch.manual_seed(0)
        replayed = checks.run_check(exercise, replayer.function, hidden)
    assert _verdict(replayed) == _verdict(recorded)
    assert not replayer.records, "the replay left records unused"
    return recorded


@pytest.mark.parametrize("chapter, exercise", _exercises())
def test_the_reference_answer_passes_in_the_replay(chapter, exercise):
    _, reference = _modules(chapter)
    for hidden in (False, True):
        assert _assert_replay_agrees(chapter, exercise, getattr(reference, exercise),
                                     hidden).passed


@pytest.mark.parametrize("chapter, exercise, cheat, words", _METHOD_CHEATS,
                         ids=[f"{c}.{e}-{w}" for c, e, _, w in _METHOD_CHEATS])
def test_a_refused_method_is_refused_in_the_replay(chapter, exercise, cheat, words):
    result = _assert_replay_agrees(chapter, exercise, cheat)
    assert result.method and words in result.message


# ---- wrong answers that a checker sees through observation, not through return values -------

def _replacing_sgd(params, grads, state, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        params[i] = p - lr * g  # a new tensor: the caller's tensors stay as they were


def _evaluate_in_training_mode(model, batches):
    with torch.no_grad():
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in batches)
    return correct / sum(len(y) for _, y in batches)


def _relu_cnn_with_an_idle_relu():
    from cnn_course.reference.cifar import relu_cnn

    class IdleRelu(nn.Sequential):
        def forward(self, x):
            for layer in self:
                x = x if isinstance(layer, nn.ReLU) and layer is self[1] else layer(x)
            return x
    return IdleRelu(*relu_cnn())


def _lenet_with_a_spare_layer():
    from cnn_course.reference.lenet import LeNet5

    model = LeNet5()
    model.spare = nn.Linear(3, 3)  # parameters that the forward pass never uses
    return model


def _lenet_with_tanh(num_classes=10):
    from cnn_course.reference.lenet import LeNet5

    class TanhLeNet(LeNet5):
        def forward(self, x):
            with _relu_as_tanh():
                return super().forward(x)
    return TanhLeNet(num_classes=num_classes)


class _relu_as_tanh:
    def __enter__(self):
        self.saved = F.relu, torch.relu
        F.relu = torch.relu = lambda x, *args, **kwargs: torch.tanh(x)

    def __exit__(self, *exc):
        F.relu, torch.relu = self.saved


def _accumulating_grad_norm(layers, activation, x):
    h = x
    for layer in layers:
        h = activation(layer(h))
    h.sum().backward()
    return layers[0].weight.grad.norm().item()


def _relu_in_place(x):
    return x.clamp_(min=0)


@pytest.mark.parametrize("chapter, exercise, answer, words", [
    ("optimizers", "sgd_step", _replacing_sgd, "replaced params[0]"),
    ("lenet", "evaluate_accuracy", _evaluate_in_training_mode, "running statistics"),
    ("cifar", "relu_cnn", _relu_cnn_with_an_idle_relu, "never calls it"),
    ("lenet", "lenet5", _lenet_with_a_spare_layer, "remove parameters"),
    ("lenet", "lenet5", _lenet_with_tanh, "uses tanh"),
    ("activations", "first_layer_grad_norm", _accumulating_grad_norm, "accumulate"),
    ("activations", "relu", _relu_in_place, "in place"),
])
def test_an_observed_mistake_is_caught_in_the_replay(chapter, exercise, answer, words):
    result = _assert_replay_agrees(chapter, exercise, answer)
    assert not result.passed and words in result.message, result.message
