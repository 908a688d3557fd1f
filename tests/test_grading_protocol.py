"""The sandbox-to-judge data format: values, argument states, exceptions and networks.

Every value must come back with its exact type; every kind of malformed or hostile data must
end as one BadObservation (never a crash, a RecursionError or a huge allocation); networks
must come back as modules without learner code that compute the same outputs.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnn_course.checks import cifar as cifar_checks
from cnn_course.checks import lenet as lenet_checks
from cnn_course.checks.core import CaseFailed, MethodViolation, _where_in_learner_code
from cnn_course.grading.protocol import (
    BadObservation,
    Budget,
    apply_state,
    capture_state,
    decode,
    decode_exception,
    encode,
    encode_exception,
    loads,
)
from cnn_course.grading.rebuild import RebuiltModule, decode_module, encode_module
from cnn_course.reference import cifar as cifar_reference
from cnn_course.reference import lenet as lenet_reference


def through_json(value: object, budget: Budget | None = None) -> object:
    """``value`` encoded, sent as JSON text, parsed and decoded, as the grader does."""
    text = json.dumps(encode(value, Budget()))
    budget = budget or Budget()
    return decode(loads(text, budget), budget)


# ---- values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2 ** 80, 1.5, -0.0, 1e300, "text", "ünï\ud800", b"\x00\xff",
    bytearray(b"ab"), 3 + 4j, [], [1, [2.0, "x"]], (), (1, (2,)), {"a": 1, 2: "b", 2.5: None,
    True: 1, None: 2, (1, "t"): [3]}, OrderedDict(b=1, a=2), {1, 2}, frozenset({"x"}),
    torch.Size([2, 3]), torch.Size([10 ** 6] * 9), torch.float16, [(1, 2.0), {"k": (None,)}],
])
def test_plain_values_round_trip_with_exact_types(value):
    got = through_json(value)
    assert type(got) is type(value)
    assert got == value


def test_nested_container_types_are_kept():
    value = {"list": [1, (2, 3)], "tuple": ([4], {5})}
    got = through_json(value)
    assert type(got["list"][1]) is tuple and type(got["tuple"][0]) is list
    assert type(got["tuple"][1]) is set


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_round_trip(value):
    text = json.dumps(encode(value), allow_nan=False)   # plain JSON, no NaN tokens
    got = decode(loads(text, Budget()), Budget())
    assert type(got) is float
    assert (math.isnan(got) and math.isnan(value)) or got == value


def test_subclasses_of_plain_types_arrive_as_the_plain_type():
    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

        def __int__(self):
            return 999

    class Text(str):
        def __str__(self):
            return "forged"

    class Items(dict):
        def items(self):
            return [("forged", 1)]

    class Seq(list):
        def __iter__(self):
            return iter([9, 9])

    got = through_json([Liar(3), Text("abc"), Items(a=1), Seq([1, 2]), np.float64(2.5)])
    assert got[0] == 3 and type(got[0]) is int
    assert got[1] == "abc" and type(got[1]) is str
    assert got[2] == {"a": 1} and type(got[2]) is dict
    assert got[3] == [1, 2] and type(got[3]) is list
    assert type(got[4]) is np.float64 and got[4] == 2.5


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64,
                                   torch.complex64, torch.complex128, torch.int8, torch.int16,
                                   torch.int32, torch.int64, torch.uint8, torch.bool])
def test_tensors_round_trip_with_dtype_and_values(dtype):
    tensor = (torch.arange(12).reshape(3, 4) % 3).to(dtype)
    got = through_json(tensor)
    assert type(got) is torch.Tensor and got.dtype == dtype and got.shape == (3, 4)
    assert torch.equal(got, tensor)


def test_tensor_details_round_trip():
    scalar, empty = torch.tensor(2.5), torch.zeros(0, 5)
    strided = torch.arange(12.0).reshape(3, 4).t()
    param = nn.Parameter(torch.ones(2, 2))
    param.grad = torch.full((2, 2), 0.5)
    leaf = torch.ones(3, requires_grad=True)
    output = leaf * 2
    got = through_json([scalar, empty, strided, param, leaf, output, torch.tensor([1 + 2j]).conj()])
    assert got[0].shape == () and got[0].item() == 2.5
    assert got[1].shape == (0, 5)
    assert torch.equal(got[2], strided) and got[2].is_contiguous()
    assert type(got[3]) is nn.Parameter and torch.equal(got[3].grad, param.grad)
    assert got[4].requires_grad and got[4].grad is None
    assert type(got[5]) is torch.Tensor and got[5].requires_grad and got[5].is_leaf
    assert got[6].item() == 1 - 2j


def test_numpy_values_round_trip():
    arrays = [np.arange(6, dtype=dtype).reshape(2, 3) for dtype in
              ("int8", "int64", "uint16", "float16", "float32", "float64", "complex64")]
    arrays.append(np.array([True, False]))
    arrays.append(np.arange(4, dtype=">i4"))   # big-endian in, native out
    scalars = [np.float32(1.5), np.int64(-3), np.bool_(True), np.uint8(7)]
    got = through_json(arrays + scalars)
    for original, back in zip(arrays + scalars, got, strict=True):
        assert type(back) is type(original)
        assert np.array_equal(back, original)
    assert got[0].flags.writeable


class Thing:
    def __repr__(self) -> str:
        return "Thing(42)"


def test_other_values_become_opaque_stand_ins():
    def helper():
        return 1

    got = through_json([Thing(), helper, np.array([object()], dtype=object)])
    thing, function, array = got
    assert type(thing).__name__ == "Thing" and repr(thing) == "Thing(42)" == str(thing)
    assert type(function).__name__ == "function" and "helper" in repr(function)
    assert type(array).__name__ == "ndarray"
    assert thing == thing and thing != through_json(Thing())
    hash(thing)
    for attempt in (lambda: thing(), lambda: iter(thing), lambda: float(thing),
                    lambda: thing + 1, lambda: len(thing)):
        with pytest.raises(TypeError):
            attempt()


def test_opaque_text_is_short_and_survives_hostile_reprs():
    class Failing:
        def __repr__(self):
            raise RuntimeError("no")

    class Slow:
        def __repr__(self):
            while True:
                pass

    class Long:
        def __repr__(self):
            return "x" * 10_000

    start = time.monotonic()
    failing, slow, long = through_json([Failing(), Slow(), Long()])
    assert time.monotonic() - start < 5
    assert "could not be computed" in repr(failing)
    assert "too long" in repr(slow)
    assert len(repr(long)) == 200


def test_unusual_tensors_become_opaque():
    class Sub(torch.Tensor):
        pass

    sparse = torch.eye(3).to_sparse()
    sub = torch.ones(2).as_subclass(Sub)
    got = through_json([sparse, sub, torch.empty(2, device="meta")])
    assert [type(g).__name__ for g in got] == ["Tensor", "Sub", "Tensor"]
    assert all(not isinstance(g, torch.Tensor) for g in got)


def test_odd_type_names_are_sanitized():
    data = {"kind": "opaque", "type": "<bad name>; os.system('x')" + "y" * 100, "repr": "r"}
    value = decode(data, Budget())
    assert type(value).__name__.isidentifier() and len(type(value).__name__) <= 60


# ---- values that cannot be encoded ----------------------------------------------------------

def test_self_referencing_containers_are_refused():
    loop: list = [1]
    loop.append(loop)
    with pytest.raises(BadObservation, match="contains itself"):
        encode(loop)
    shared = [1, 2]
    assert through_json([shared, shared]) == [[1, 2], [1, 2]]


def test_encoding_counts_against_the_budget():
    with pytest.raises(BadObservation, match="bytes"):
        encode(torch.zeros(1000), Budget(max_bytes=1000))
    value: list = [0]
    for _ in range(40):
        value = [value, value]
    with pytest.raises(BadObservation, match="values"):
        encode(value, Budget(max_items=10_000))


# ---- hostile data ---------------------------------------------------------------------------

def tensor_data(**changes) -> dict:
    data = encode(torch.arange(6, dtype=torch.float32).reshape(2, 3))
    data.update(changes)
    return data


@pytest.mark.parametrize("data, message", [
    (tensor_data(data=encode(torch.zeros(5))["data"]), "bytes"),
    (tensor_data(dtype="float128"), "dtype"),
    (tensor_data(dtype=["float32"]), "dtype"),
    (tensor_data(shape=[-2, -3]), "shape"),
    (tensor_data(shape=[2, 3.0]), "shape"),
    (tensor_data(shape=[10 ** 12, 10 ** 12]), "shape"),
    (tensor_data(shape=[1] * 9), "shape"),
    (tensor_data(shape=[100_000, 1000]), "elements"),
    (tensor_data(data="!!!!" * 8), "base64"),
    (tensor_data(requires_grad="yes"), "requires_grad"),
    (tensor_data(extra=1), "fields"),
    (tensor_data(grad=encode(torch.zeros(3))), "gradient"),
    (encode(torch.tensor([1, 2])) | {"requires_grad": True}, "cannot require"),
    ({"kind": "tensor", "dtype": "bool", "shape": [2], "data": "AgA="}, "bool"),
    ({"kind": "ndarray", "dtype": "object", "shape": [1], "data": "AA=="}, "dtype"),
    ({"kind": "warp"}, "unknown kind"),
    ({"items": []}, "unknown kind"),
    ([1, 2], "list"),
    ({"kind": "list", "items": "abc"}, "not a list"),
    ({"kind": "set", "items": [{"kind": "list", "items": []}]}, "cannot be one"),
    ({"kind": "dict", "items": [[{"kind": "list", "items": []}, 1]]}, "cannot be one"),
    ({"kind": "dict", "items": [[1]]}, "pair"),
    ({"kind": "float", "value": "1e999x"}, "float"),
    ({"kind": "dtype", "name": "object"}, "dtype"),
    ({"kind": "opaque", "type": "X", "repr": "y" * 201}, "string"),
    (10 ** 4100, "digits"),
    ({"kind": "size", "dims": [-1]}, "Size"),
    ({"kind": "size", "dims": [1] * 33}, "Size"),
])
def test_malformed_data_raises_bad_observation(data, message):
    with pytest.raises(BadObservation, match=message):
        decode(data, Budget())


def test_huge_ints_and_deep_nesting_in_json_text():
    with pytest.raises(BadObservation, match="JSON"):
        loads("1" * 5000, Budget())
    with pytest.raises(BadObservation, match="digits"):
        decode(loads("1" * 4200, Budget()), Budget())
    deep = "[" * 10_000 + "]" * 10_000
    with pytest.raises(BadObservation, match="nested too deeply"):
        loads(deep, Budget())
    with pytest.raises(BadObservation, match="not valid JSON"):
        loads(b"\xff{", Budget())
    with pytest.raises(BadObservation, match="longer"):
        loads("0" * (3 << 20), Budget(max_bytes=1000))
    with pytest.raises(BadObservation, match="far more"):
        loads("[" + "[]," * 5000 + "[]]", Budget(max_items=1000))
    with pytest.raises(BadObservation, match="far more"):
        loads(b"[" + b"0," * 9000 + b"0]", Budget(max_items=1000))


def test_deeply_nested_data_is_refused_without_recursion_error():
    data: object = 1
    for _ in range(10_000):
        data = {"kind": "list", "items": [data]}
    with pytest.raises(BadObservation, match="nested more than 32"):
        decode(data, Budget())


def test_decoding_counts_against_a_shared_budget():
    budget = Budget(max_elements=100)
    decode(encode(torch.zeros(60)), budget)
    with pytest.raises(BadObservation, match="elements"):
        decode(encode(torch.zeros(60)), budget)
    with pytest.raises(BadObservation, match="values"):
        decode(encode(list(range(100))), Budget(max_items=50))
    with pytest.raises(BadObservation, match="bytes"):
        decode(encode("x" * 100), Budget(max_bytes=50))


# ---- the state of arguments -----------------------------------------------------------------

def replay(sandbox_value: object, judge_value: object) -> None:
    """Capture ``sandbox_value``'s state, send it as JSON, apply it to ``judge_value``."""
    budget = Budget()
    apply_state(judge_value, through_json(capture_state(sandbox_value), budget), budget)


def test_tensor_state_in_place():
    sandbox, judge = torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    with torch.no_grad():
        sandbox.add_(torch.tensor([1.0, 2.0, 3.0]))
    sandbox.grad = torch.ones(3)
    same_object = judge
    replay(sandbox, judge)
    assert judge is same_object and torch.equal(judge, sandbox)
    assert torch.equal(judge.grad, torch.ones(3)) and judge.requires_grad

    frozen = torch.zeros(3, requires_grad=True)
    frozen.requires_grad_(False)
    replay(frozen, judge)
    assert not judge.requires_grad and judge.grad is None


def test_tensor_state_refuses_other_shapes_and_types():
    grown = torch.zeros(3)
    grown.resize_(5)
    with pytest.raises(BadObservation, match="changed"):
        replay(grown, torch.zeros(3))
    with pytest.raises(BadObservation, match="list"):
        replay(torch.zeros(3), [0.0, 0.0, 0.0])


class Watched(nn.Module):
    """Like the evaluation checker's model: a flag set during forward, a BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 3)
        self.norm = nn.BatchNorm1d(3)
        self.saw_gradients = False
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.saw_gradients |= torch.is_grad_enabled()
        self.calls += 1
        return self.norm(self.layer(x))


def test_module_state_replays_statistics_gradients_flags_and_attributes():
    torch.manual_seed(0)
    sandbox = Watched()
    judge = copy.deepcopy(sandbox)
    weight = judge.layer.weight
    sandbox(torch.randn(8, 4)).sum().backward()
    sandbox.eval()
    sandbox.layer.train()
    replay(sandbox, judge)
    assert judge.layer.weight is weight
    for (name, got), (_, want) in zip(judge.state_dict().items(),
                                      sandbox.state_dict().items(), strict=True):
        assert torch.equal(got, want), name
    assert judge.norm.num_batches_tracked.item() == 1
    assert torch.equal(judge.layer.weight.grad, sandbox.layer.weight.grad)
    assert judge.saw_gradients is True and judge.calls == 1
    assert not judge.training and judge.layer.training and not judge.norm.training


def test_module_state_refuses_another_structure():
    with pytest.raises(BadObservation, match="parameters"):
        replay(nn.Linear(4, 3), nn.Linear(4, 3, bias=False))
    with pytest.raises(BadObservation, match="changed"):
        replay(nn.Linear(4, 3), nn.Linear(4, 2))
    with pytest.raises(BadObservation, match="submodules"):
        replay(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(BadObservation, match="module"):
        replay(nn.Linear(2, 2), torch.zeros(2))


def attribute_state(name: str, value: object) -> dict:
    return {"kind": "module_state", "tensors": {},
            "modules": {"": {"training": True, "attrs": {name: value}}}}


@pytest.mark.parametrize("name, value", [("_forward_hooks", 1), ("training", 1), ("x", [1]),
                                         ("not an identifier", 1)])
def test_module_attributes_must_be_plain_public_data(name, value):
    module = nn.Module()
    with pytest.raises(BadObservation):
        apply_state(module, attribute_state(name, value), Budget())


@pytest.mark.parametrize("name", ["forward", "dump_patches", "__class__"])
def test_module_attributes_do_not_shadow_class_attributes(name):
    module = nn.Linear(2, 2)
    try:
        apply_state(module, {"kind": "module_state", "tensors": dict(module.named_parameters()),
                             "modules": {"": {"training": True, "attrs": {name: 1}}}}, Budget())
    except BadObservation:
        pass
    assert name not in vars(module)
    assert module(torch.ones(1, 2)).shape == (1, 2)


def make_training(seed: int, momentum: bool = True):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9 if momentum else 0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    return model, optimizer, scheduler


def train_steps(model, optimizer, scheduler, steps: int) -> None:
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        loss = model(torch.randn(5, 3, generator=generator)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()


def test_optimizer_and_scheduler_state_replay():
    sandbox = make_training(0)
    judge = make_training(0)
    train_steps(*sandbox, steps=3)
    for sandbox_value, judge_value in zip(sandbox, judge, strict=True):
        replay(sandbox_value, judge_value)
    assert judge[1].param_groups[0]["lr"] == pytest.approx(0.05)
    assert judge[2].last_epoch == 3
    # the next steps agree, momentum buffers and schedule included
    train_steps(*sandbox, steps=2)
    train_steps(*judge, steps=2)
    for got, want in zip(judge[0].parameters(), sandbox[0].parameters(), strict=True):
        assert torch.allclose(got, want, atol=1e-7)


def test_one_cycle_and_adam_state_replay():
    def make():
        torch.manual_seed(0)
        model = nn.Linear(3, 2)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
        return model, optimizer, scheduler

    sandbox, judge = make(), make()
    train_steps(*sandbox, steps=4)
    for sandbox_value, judge_value in zip(sandbox, judge, strict=True):
        replay(sandbox_value, judge_value)
    assert judge[1].state_dict()["param_groups"] == sandbox[1].state_dict()["param_groups"]
    assert judge[2].state_dict() == sandbox[2].state_dict()


def test_optimizer_state_refuses_other_parameters():
    sandbox, _, _ = make_training(0)
    small = torch.optim.SGD(nn.Linear(3, 4).parameters(), lr=0.1)
    with pytest.raises(BadObservation):
        replay(make_training(0)[1], small)
    forged = through_json(capture_state(make_training(0)[1]))
    forged["state_dict"]["state"] = {7: {"momentum_buffer": torch.zeros(2)}}
    with pytest.raises(BadObservation, match="does not exist"):
        apply_state(make_training(0)[1], forged, Budget())
    with pytest.raises(BadObservation, match="scheduler"):
        replay(make_training(0)[2], make_training(0)[1])


def test_list_of_layers_and_other_containers():
    torch.manual_seed(0)
    sandbox = [nn.Linear(2, 2), nn.Linear(2, 1)]
    judge = copy.deepcopy(sandbox)
    with torch.no_grad():
        for layer in sandbox:
            layer.weight.mul_(3)
    replay(sandbox, judge)
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(judge, sandbox, strict=True))

    history, judge_history = [1.0], [1.0]
    history += [2.0, torch.tensor([3.0])]
    replay(history, judge_history)
    assert judge_history[:2] == [1.0, 2.0] and torch.equal(judge_history[2], torch.tensor([3.0]))

    record, judge_record = {"a": 1, "b": torch.zeros(2)}, {"a": 1, "b": torch.zeros(2)}
    record.pop("a")
    record["c"] = "new"
    record["b"] += 1
    replay(record, judge_record)
    assert set(judge_record) == {"b", "c"} and torch.equal(judge_record["b"], torch.ones(2))

    pair, judge_pair = (torch.zeros(2), 5), (torch.zeros(2), 5)
    pair[0].add_(2)
    replay(pair, judge_pair)
    assert torch.equal(judge_pair[0], torch.full((2,), 2.0))


def test_container_state_refuses_another_structure():
    with pytest.raises(BadObservation, match="tuple"):
        replay((torch.zeros(1),), (torch.zeros(1), torch.zeros(1)))
    with pytest.raises(BadObservation, match="tuple"):
        replay([1], (1,))
    grown = [nn.Linear(1, 1), nn.Linear(1, 1)]
    with pytest.raises(BadObservation, match="neither plain data, a tensor"):
        replay(grown, [])


def test_new_containers_of_tensors_are_rebuilt():
    """An optimizer step that files each parameter's moments as a new dict of tensors."""
    state: dict = {}
    moments = {"t": 1, 0: {"m": torch.ones(2), "v": torch.full((2,), 2.0)},
               "order": [torch.zeros(1), (3, 4)]}
    replay(moments, state)
    assert set(state) == {"t", 0, "order"} and state["t"] == 1
    assert torch.equal(state[0]["v"], torch.full((2,), 2.0))
    assert type(state["order"]) is list and state["order"][1] == (3, 4)
    with pytest.raises(BadObservation, match="kind"):
        apply_state([], {"kind": "pickle_state"}, Budget())


def test_values_without_state_capture_nothing():
    assert capture_state(3) is None and capture_state("x") is None
    assert capture_state(lambda: 1) is None


# ---- exceptions -----------------------------------------------------------------------------

def raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:  # noqa: BLE001
        return caught


def exception_round_trip(error: BaseException) -> BaseException:
    data = json.loads(json.dumps(encode_exception(raised(error))))
    return decode_exception(data, Budget())


def test_checker_failures_round_trip():
    failed = exception_round_trip(CaseFailed("wrong shape", diagnosed=True))
    assert type(failed) is CaseFailed and str(failed) == "wrong shape" and failed.diagnosed
    assert not exception_round_trip(CaseFailed("x")).diagnosed
    violation = exception_round_trip(MethodViolation("used F.conv2d"))
    assert type(violation) is MethodViolation and str(violation) == "used F.conv2d"


def test_builtin_exceptions_round_trip_with_the_same_text():
    for error in (KeyError("missing"), ValueError("bad", 3), NotImplementedError(),
                  ZeroDivisionError("division by zero"), RecursionError("deep")):
        back = exception_round_trip(error)
        assert type(back).__name__ == type(error).__name__
        assert isinstance(back, type(error))
        assert str(back) == str(error)
    assert type(exception_round_trip(NotImplementedError())) is NotImplementedError
    assert type(exception_round_trip(TypeError("t"))) is TypeError


def test_other_exceptions_keep_their_name_and_standard_base():
    class ShapeError(ValueError):
        pass

    back = exception_round_trip(ShapeError("shapes differ"))
    assert type(back).__name__ == "ShapeError" and isinstance(back, ValueError)
    assert str(back) == "shapes differ"
    stop = exception_round_trip(SystemExit(3))
    assert type(stop).__name__ == "SystemExit" and isinstance(stop, Exception)
    assert not isinstance(stop, SystemExit)


def test_exception_place_and_unprintable_messages():
    def learner_code():
        raise IndexError("out of range")

    try:
        learner_code()
    except IndexError as error:
        data = encode_exception(error)
    assert data["where"].startswith("in learner_code, line ")
    back = decode_exception(data, Budget())
    assert back.__learner_where__ == data["where"]
    assert _where_in_learner_code(back) == f" ({data['where']})"

    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError

    assert "could not be computed" in str(exception_round_trip(Unprintable()))


@pytest.mark.parametrize("change", [{"base": "SystemExit"}, {"base": "BaseException"},
                                    {"message": 5}, {"where": ["x"]}, {"extra": 1},
                                    {"not_implemented": True}])
def test_forged_exceptions_are_refused(change):
    data = encode_exception(ValueError("x")) | change
    with pytest.raises(BadObservation):
        decode_exception(data, Budget())


# ---- networks -------------------------------------------------------------------------------

class LeNetView(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), (2, 2))
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class LeNetFlatten(LeNetView):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(torch.relu(self.conv1(x)), kernel_size=2, stride=2)
        x = F.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.dropout(torch.relu(self.fc1(x)), 0.5, self.training)
        return self.fc3(torch.relu(self.fc2(x)))


class LeNetPools(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU())
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.classifier = nn.ModuleList([nn.Linear(400, 120), nn.Linear(120, 84),
                                         nn.Linear(84, 10)])
        self.num_classes = 10

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        for layer in self.classifier[:-1]:
            x = nn.ReLU()(layer(x))
        return self.classifier[-1](x)


def lenet_sequential() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


class Block(nn.Module):
    """A learner's own building block inside a Sequential."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm = nn.BatchNorm2d(c_out)
        self.register_buffer("scale", torch.tensor(2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x))) * self.scale + x.mean()


def blocks() -> nn.Module:
    return nn.Sequential(Block(1, 4), nn.MaxPool2d(2), Block(4, 4), nn.Flatten(),
                         nn.Linear(4 * 14 * 14, 10))


def shapes_seen(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list]:
    """The output and, in call order, each Conv2d/Linear layer's type and output shape."""
    seen: list = []
    handles = [m.register_forward_hook(lambda m, i, o: seen.append((type(m).__name__,
                                                                     tuple(o.shape))))
               for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    try:
        out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return out, seen


def rebuilt(model: nn.Module) -> nn.Module:
    return through_json(model)


@pytest.mark.parametrize("make", [LeNetView, LeNetFlatten, LeNetPools, lenet_sequential,
                                  blocks, lenet_reference.lenet5, cifar_reference.relu_cnn])
def test_networks_round_trip(make):
    torch.manual_seed(0)
    model = make()
    copy_ = rebuilt(model)
    assert isinstance(copy_, nn.Module)
    assert type(copy_).__name__ == type(model).__name__
    assert [type(m).__name__ for m in copy_.modules()] == \
        [type(m).__name__ for m in model.modules()]
    assert [n for n, _ in copy_.named_modules()] == [n for n, _ in model.named_modules()]
    for (name, got), (_, want) in zip(copy_.state_dict().items(), model.state_dict().items(),
                                      strict=True):
        assert torch.equal(got, want), name
    assert sum(p.numel() for p in copy_.parameters()) == \
        sum(p.numel() for p in model.parameters())
    channels = 3 if make is cifar_reference.relu_cnn else 1
    side = 32 if make is cifar_reference.relu_cnn else 28
    generator = torch.Generator().manual_seed(1)
    for mode in ("eval", "train"):
        getattr(model, mode)()
        getattr(copy_, mode)()
        for batch in (1, 4):
            x = torch.randn(batch, channels, side, side, generator=generator)
            torch.manual_seed(2)
            want, want_seen = shapes_seen(model, x)
            torch.manual_seed(2)
            got, got_seen = shapes_seen(copy_, x)
            assert got_seen == want_seen
            assert torch.allclose(got, want, atol=1e-6)


def test_standard_layers_come_back_as_themselves():
    for layer in (nn.Linear(3, 2, bias=False), nn.Conv2d(2, 4, (3, 1), stride=2, padding="valid",
                                                         groups=2, padding_mode="reflect"),
                  nn.BatchNorm2d(3, momentum=None), nn.LayerNorm([4, 5]), nn.GELU("tanh"),
                  nn.AdaptiveAvgPool2d((None, 3)), nn.Unflatten(1, (2, 3)), nn.Dropout(0.2)):
        copy_ = rebuilt(layer)
        assert type(copy_) is type(layer) and repr(copy_) == repr(layer)
        assert copy_.state_dict().keys() == layer.state_dict().keys()


def test_rebuilt_network_contains_no_learner_code():
    copy_ = rebuilt(LeNetView())
    for module in copy_.modules():
        assert type(module).__module__ in ("learner", "torch.nn.modules.conv",
                                           "torch.nn.modules.linear")
        assert type(module).forward in (RebuiltModule.forward, nn.Conv2d.forward,
                                        nn.Linear.forward)


def test_rebuilt_network_copies():
    copy_ = rebuilt(LeNetView())
    twin = copy.deepcopy(copy_)
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(twin(x), copy_(x))


def test_rebuilt_network_trains():
    torch.manual_seed(0)
    model = LeNetView()
    copy_ = rebuilt(model)
    x = torch.randn(2, 1, 28, 28)
    for net in (model, copy_):
        net(x).sum().backward()
    assert torch.allclose(copy_.conv1.weight.grad, model.conv1.weight.grad, atol=1e-6)


def test_gradients_and_flags_of_a_returned_network_travel():
    model = LeNetView()
    model(torch.randn(1, 1, 28, 28)).sum().backward()
    model.eval()
    model.fc3.weight.requires_grad_(False)
    copy_ = rebuilt(model)
    assert torch.equal(copy_.conv1.weight.grad, model.conv1.weight.grad)
    assert not copy_.training and not copy_.fc3.weight.requires_grad


def test_shared_layers_and_tied_weights_stay_shared():
    model = nn.Module()
    model.a = nn.Linear(3, 3)
    model.b = model.a
    model.c = nn.Linear(3, 3)
    model.c.weight = model.a.weight
    copy_ = decode_module(encode_module(model), Budget())
    assert copy_.b is copy_.a and copy_.c.weight is copy_.a.weight
    assert sum(p.numel() for p in copy_.parameters()) == 3 * 3 + 3 + 3


class Branching(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.fc(x)
        return -self.fc(x)


class UsesSine(Branching):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.fc(x))


class UsesCumsum(Branching):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).cumsum(1)


@pytest.mark.parametrize("make, reason", [(Branching, "control flow"),
                                          (UsesSine, "uses torch.sin"),
                                          (UsesCumsum, "tensor method .cumsum()")])
def test_untraceable_networks_keep_their_layers_and_explain(make, reason):
    model = make()
    copy_ = rebuilt(model)
    assert sum(p.numel() for p in copy_.parameters()) == 10
    assert torch.equal(copy_.fc.weight, model.fc.weight)
    with pytest.raises(CaseFailed, match=reason) as failure:
        copy_(torch.ones(1, 4))
    assert failure.value.diagnosed
    assert "write forward() as a fixed sequence of layers and functions" in str(failure.value)


def test_the_encoder_leaves_the_learners_module_as_it_was():
    model = Watched()
    encode_module(model)
    assert model.saw_gradients is False and model.calls == 0 and model.training


def test_unsupported_torch_layers_are_named():
    model = nn.Sequential(nn.Linear(2, 2), nn.PReLU())
    copy_ = rebuilt(model)
    assert type(copy_[1]).__name__ == "PReLU"
    with pytest.raises(CaseFailed, match="uses nn.PReLU"):
        copy_(torch.ones(1, 2))


@pytest.mark.parametrize("exercise, fn", [("lenet5", lenet_reference.lenet5),
                                          ("relu_cnn", cifar_reference.relu_cnn)])
def test_reference_answers_pass_their_checks_through_the_protocol(exercise, fn):
    checks = lenet_checks if exercise == "lenet5" else cifar_checks

    def answer(*args, **kwargs):
        return rebuilt(fn(*args, **kwargs))

    result = checks.run_check(exercise, answer)
    assert result.passed, result.message


# ---- forged networks ------------------------------------------------------------------------

def lenet_data() -> dict:
    return json.loads(json.dumps(encode_module(LeNetView())))


def root_graph(data: dict) -> list[dict]:
    return data["modules"][0]["graph"]


def node(data: dict, op: str) -> dict:
    return next(n for n in root_graph(data) if n["op"] == op)


def forged(change) -> dict:
    data = lenet_data()
    change(data)
    return data


def set_target(op: str, target: object):
    return lambda data: node(data, op).update(target=target)


def layer(data: dict, path: str) -> dict:
    return next(e for e in data["modules"] if e["path"] == path)


def config_change(path: str, key: str, value: object):
    def change(data):
        config = decode(layer(data, path)["config"], Budget())
        config[key] = value
        layer(data, path)["config"] = encode(config)
    return change


@pytest.mark.parametrize("change, message", [
    (set_target("call_function", "os.system"), "not an allowed function"),
    (set_target("call_function", "builtins.eval"), "not an allowed function"),
    (set_target("call_function", "__import__"), "not an allowed function"),
    (set_target("call_method", "__class__"), "not allowed"),
    (set_target("call_method", "__globals__"), "not allowed"),
    (set_target("call_method", "register_forward_hook"), "not allowed"),
    (set_target("call_module", "fc9"), "does not exist"),
    (set_target("call_module", "__class__"), "path"),
    (set_target("call_module", ""), "path"),
    (set_target("placeholder", "not a name"), "identifier"),
    (lambda d: node(d, "call_module").update(args=[{"node": "output"}]), "earlier node"),
    (lambda d: node(d, "call_module").update(args=[{"node": "nobody"}]), "earlier node"),
    (lambda d: node(d, "call_module").update(args=[{"code": "x"}]), "not valid"),
    (lambda d: node(d, "call_module").update(args=[10 ** 30]), "not valid"),
    (lambda d: node(d, "call_function").update(op="call_code"), "op"),
    (lambda d: node(d, "call_function").update(name="x"), "new identifier"),
    (lambda d: root_graph(d).pop(), "output"),
    (lambda d: root_graph(d).append(root_graph(d)[0]), "output"),
    (lambda d: root_graph(d).__setitem__(slice(None), root_graph(d) * 200), "1000 nodes"),
    (config_change("conv1", "kernel_size", 10 ** 9), "kernel_size"),
    (config_change("conv1", "out_channels", -1), "out_channels"),
    (config_change("conv1", "padding", "everything"), "padding"),
    (config_change("conv1", "groups", 4), "cannot be built"),
    (config_change("conv1", "evil", 1), "settings"),
    (config_change("fc1", "in_features", 401), "shape"),
    (lambda d: layer(d, "fc1").update(layer="Bilinear"), "unknown layer"),
    (lambda d: layer(d, "fc1").update(path="fc1.__class__"), "path"),
    (lambda d: layer(d, "fc1").update(path="missing.fc1"), "before its parent"),
    (lambda d: layer(d, "fc1").update(parameters={"weight": "fc1.weight"}), "parameters"),
    (lambda d: layer(d, "fc1").update(parameters={"weight": "nowhere", "bias": None}),
     "no recorded tensor"),
    (lambda d: d["modules"].__setitem__(slice(None), d["modules"] * 100), "500"),
    (lambda d: d["modules"].append({"path": ".".join(["m"] * 40), "same_as": "fc1"}), "path"),
    (lambda d: d["modules"].append({"path": "fc1.x", "same_as": ""}), "shared"),
    (lambda d: d["modules"][0].update(type=5, attrs=encode({"x": [1]})), "plain data"),
    (lambda d: d.update(extra=1), "fields"),
    (lambda d: d["tensors"]["fc1.weight"].update(shape=[400, 120]), "shape"),
])
def test_forged_networks_are_refused(change, message):
    with pytest.raises(BadObservation, match=message):
        decode_module(forged(change), Budget())


def test_a_forged_graph_cannot_make_huge_tensors():
    def pad_everything(data):
        node(data, "call_function").update(target="torch.nn.functional.pad",
                                           args=[{"node": "x"}, {"tuple": [0, 10 ** 7] * 2}],
                                           kwargs={})

    copy_ = decode_module(forged(pad_everything), Budget())
    with pytest.raises(CaseFailed, match="more than the grader allows"):
        copy_(torch.zeros(1, 1, 28, 28))


def test_forged_graphs_cannot_compute_with_strings():
    def multiply_text(data):
        node(data, "call_function").update(target="operator.mul", args=["abc", 10 ** 9],
                                           kwargs={})

    copy_ = decode_module(forged(multiply_text), Budget())
    with pytest.raises(TypeError, match="unsupported operand"):
        copy_(torch.zeros(1, 1, 28, 28))
