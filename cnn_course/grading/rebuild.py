"""Networks as data: a learner's ``nn.Module`` recorded in the sandbox, rebuilt in the judge.

Some exercises return a network the learner built. The judge must inspect and run it without
running learner code, so the sandbox records (:func:`encode_module`):

- the module tree: every submodule's dotted path; standard layers from an allowlist
  (:data:`LAYERS`) with the constructor arguments read off their attributes, everything else
  as a container named after its class;
- every parameter and buffer (values, ``requires_grad``, gradients) and the training flags;
- for each container, its ``forward`` as a list of graph nodes traced with ``torch.fx``, every
  submodule a leaf: placeholders, ``get_attr``, ``call_module``, ``call_function`` of an
  allowlisted function (:data:`FUNCTIONS`), ``call_method`` of an allowlisted tensor method
  (:data:`METHODS`), ``output``. A forward pass that cannot be traced, or that uses anything
  else, is recorded with the reason instead.

The judge (:func:`decode_module`) validates all of it, builds the standard layers itself and
gives each container a ``forward`` that interprets its node list: submodules are called
through ``__call__`` (so forward hooks fire), functions through the allowlist. No code is
generated and nothing is evaluated. Before running a graph on real data it runs it on
"meta" tensors (shapes only), so a forged graph cannot make the judge allocate huge tensors.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import re
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnn_course.checks.core import CaseFailed
from cnn_course.grading.protocol import (
    TORCH_DTYPES,
    BadObservation,
    Budget,
    decode,
    decode_tensor,
    encode,
    encode_tensor,
    one_line,
    plain_attributes,
    sanitize_name,
    set_plain_attributes,
)
from cnn_course.messages import N_, tr, translated

MAX_MODULES = 500
MAX_NESTING = 32       # modules inside modules
MAX_NODES = 1000
MAX_ARG_DEPTH = 16
MAX_WINDOW = 64        # kernel sizes, strides, padding, dilation
MAX_WIDTH = 65536      # channels and features
MAX_CONSTANT = 1 << 62

_NAME = re.compile(r"[A-Za-z0-9_]{1,100}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")

Check = Callable[[object, str], object]


# ---- the standard layers the judge builds itself ---------------------------------------------

def _bad_value(value: object, what: str, expected: str) -> BadObservation:
    return BadObservation(tr("{what} is {value!r}, expected {expected}", what=translated(what),
                             value=str(value)[:40], expected=translated(expected)))


def _int_in(lo: int, hi: int) -> Check:
    def check(value: object, what: str) -> int:
        if type(value) is not int or not lo <= value <= hi:
            raise _bad_value(value, what, tr("an int from {lo} to {hi}", lo=lo, hi=hi))
        return value
    return check


def _ints(lo: int, hi: int, max_len: int = 3) -> Check:
    """An int, or a tuple of 1 to ``max_len`` ints, each from ``lo`` to ``hi``."""
    single = _int_in(lo, hi)

    def check(value: object, what: str) -> object:
        if type(value) is int:
            return single(value, what)
        if type(value) not in (tuple, list) or not 1 <= len(value) <= max_len:
            raise _bad_value(value, what, tr("an int or a tuple of at most {count} ints",
                                             count=max_len))
        return tuple(single(item, what) for item in value)
    return check


def _float_in(lo: float, hi: float) -> Check:
    def check(value: object, what: str) -> float:
        if type(value) not in (int, float) or not lo <= value <= hi:
            raise _bad_value(value, what, tr("a number from {lo} to {hi}", lo=lo, hi=hi))
        return value
    return check


def _flag(value: object, what: str) -> bool:
    if type(value) is not bool:
        raise _bad_value(value, what, N_("true or false"))
    return value


def _choice(*options: str) -> Check:
    def check(value: object, what: str) -> str:
        if type(value) is not str or value not in options:
            raise _bad_value(value, what, tr("one of {options}", options=", ".join(options)))
        return value
    return check


def _optional(inner: Check) -> Check:
    return lambda value, what: None if value is None else inner(value, what)


def _padding(value: object, what: str) -> object:
    if type(value) is str and value in ("same", "valid"):
        return value
    return _ints(0, MAX_WINDOW)(value, what)


def _output_size(value: object, what: str) -> object:
    single = _optional(_int_in(1, 4096))
    if type(value) in (tuple, list) and len(value) == 2:
        return tuple(single(item, what) for item in value)
    return single(value, what)


_WINDOW, _OFFSET, _WIDTH = _ints(1, MAX_WINDOW), _ints(0, MAX_WINDOW), _int_in(1, MAX_WIDTH)
_DIM, _UNIT = _int_in(-8, 8), _float_in(0.0, 1.0)
_INPLACE = {"inplace": _flag}
_NORM = {"num_features": _WIDTH, "eps": _float_in(0.0, 1.0), "momentum": _optional(_UNIT),
         "affine": _flag, "track_running_stats": _flag}

LAYERS: dict[str, tuple[type[nn.Module], dict[str, Check]]] = {
    "Conv2d": (nn.Conv2d, {
        "in_channels": _WIDTH, "out_channels": _WIDTH, "kernel_size": _WINDOW,
        "stride": _WINDOW, "padding": _padding, "dilation": _WINDOW, "groups": _WIDTH,
        "bias": _flag, "padding_mode": _choice("zeros", "reflect", "replicate", "circular")}),
    "Linear": (nn.Linear, {"in_features": _WIDTH, "out_features": _WIDTH, "bias": _flag}),
    "MaxPool2d": (nn.MaxPool2d, {
        "kernel_size": _WINDOW, "stride": _WINDOW, "padding": _OFFSET, "dilation": _WINDOW,
        "return_indices": _flag, "ceil_mode": _flag}),
    "AvgPool2d": (nn.AvgPool2d, {
        "kernel_size": _WINDOW, "stride": _WINDOW, "padding": _OFFSET, "ceil_mode": _flag,
        "count_include_pad": _flag, "divisor_override": _optional(_int_in(1, 4096))}),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, {"output_size": _output_size}),
    "AdaptiveMaxPool2d": (nn.AdaptiveMaxPool2d, {"output_size": _output_size,
                                                 "return_indices": _flag}),
    "ReLU": (nn.ReLU, _INPLACE),
    "ReLU6": (nn.ReLU6, _INPLACE),
    "LeakyReLU": (nn.LeakyReLU, {"negative_slope": _float_in(-1e6, 1e6), **_INPLACE}),
    "ELU": (nn.ELU, {"alpha": _float_in(-1e6, 1e6), **_INPLACE}),
    "SiLU": (nn.SiLU, _INPLACE),
    "GELU": (nn.GELU, {"approximate": _choice("none", "tanh")}),
    "Tanh": (nn.Tanh, {}),
    "Sigmoid": (nn.Sigmoid, {}),
    "Softmax": (nn.Softmax, {"dim": _optional(_DIM)}),
    "LogSoftmax": (nn.LogSoftmax, {"dim": _optional(_DIM)}),
    "Flatten": (nn.Flatten, {"start_dim": _DIM, "end_dim": _DIM}),
    "Unflatten": (nn.Unflatten, {"dim": _DIM,
                                 "unflattened_size": _ints(-1, MAX_WIDTH, max_len=8)}),
    "Dropout": (nn.Dropout, {"p": _UNIT, **_INPLACE}),
    "Dropout2d": (nn.Dropout2d, {"p": _UNIT, **_INPLACE}),
    "BatchNorm1d": (nn.BatchNorm1d, _NORM),
    "BatchNorm2d": (nn.BatchNorm2d, _NORM),
    "LayerNorm": (nn.LayerNorm, {"normalized_shape": _ints(1, MAX_WIDTH, max_len=4),
                                 "eps": _float_in(0.0, 1.0), "elementwise_affine": _flag,
                                 "bias": _flag}),
    "Identity": (nn.Identity, {}),
    "Sequential": (nn.Sequential, {}),
    "ModuleList": (nn.ModuleList, {}),
    "ModuleDict": (nn.ModuleDict, {}),
}
_LAYER_NAMES = {cls: name for name, (cls, _) in LAYERS.items()}


def layer_kind(module: nn.Module) -> str | None:
    """The :data:`LAYERS` name of ``module``'s class, or of the allowlisted class it derives
    from without changing ``forward``; ``None`` for anything else."""
    kind = type(module)
    for cls in kind.__mro__:
        name = _LAYER_NAMES.get(cls)
        if name is not None:
            return name if cls is kind or kind.forward is cls.forward else None
    return None


def layer_config(module: nn.Module, name: str) -> dict[str, object]:
    """The constructor arguments of standard layer ``module``, read off its attributes."""
    return {key: (getattr(module, "bias", None) is not None) if key == "bias"
            else getattr(module, key) for key in LAYERS[name][1]}


@functools.lru_cache(maxsize=512)
def _named_class(name: str, base: type[nn.Module]) -> type[nn.Module]:
    """``base`` itself, or a subclass of it named ``name`` that adds nothing."""
    if name == base.__name__:
        return base
    return type(name, (base,), {"__qualname__": name, "__module__": "learner"})


# ---- the functions and methods a graph may use -----------------------------------------------

TENSOR_ATTRIBUTES = frozenset({"shape", "ndim", "dtype", "device"})
METHODS = frozenset({
    "view", "reshape", "flatten", "size", "relu", "tanh", "sigmoid", "softmax", "log_softmax",
    "contiguous", "squeeze", "unsqueeze", "permute", "transpose", "mean", "sum", "float",
    "dim", "numel", "exp", "clamp", "add", "mul", "sub", "div", "t"})


def _is_number(value: object) -> bool:
    return isinstance(value, torch.Tensor) or type(value) in (int, float, bool)


def _arithmetic(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``op`` on tensors and numbers only (and ``+`` on short tuples, for shapes)."""
    def run(a: object, b: object) -> object:
        if _is_number(a) and _is_number(b):
            return op(a, b)
        if op is operator.add and isinstance(a, tuple) and isinstance(b, tuple) \
                and len(a) + len(b) <= 16:
            return op(a, b)
        raise TypeError(tr("unsupported operand types for {op}: {left} and {right}",
                           op=op.__name__, left=type(a).__name__, right=type(b).__name__))
    return run


def _plain_index(index: object, depth: int = 0) -> bool:
    if index is None or index is Ellipsis or type(index) is int:
        return True
    if type(index) is slice:
        return all(part is None or type(part) is int
                   for part in (index.start, index.stop, index.step))
    return type(index) is tuple and depth == 0 and all(_plain_index(i, 1) for i in index)


def _getitem(container: object, index: object) -> object:
    """``container[index]`` for tensors, tuples and lists, with basic indexes only."""
    if not isinstance(container, torch.Tensor | tuple | list) or not _plain_index(index):
        raise TypeError(tr("indexing a {container} with {index} is not supported",
                           container=type(container).__name__, index=type(index).__name__))
    return container[index]


def _tensor_attribute(value: object, name: object) -> object:
    if not isinstance(value, torch.Tensor) or name not in TENSOR_ATTRIBUTES:
        raise TypeError(tr("reading .{name} of a {type} is not supported",
                           name=str(name)[:40], type=type(value).__name__))
    return getattr(value, name)


def _function_table() -> dict[str, tuple[object, Callable]]:
    """Allowlisted name -> (the object fx records as the target, what the judge calls)."""
    table: dict[str, tuple[object, Callable]] = {}
    for name in ("relu", "flatten", "tanh", "sigmoid", "cat", "stack", "add", "mul", "sub",
                 "softmax", "log_softmax", "reshape", "squeeze", "unsqueeze", "transpose",
                 "permute", "sum", "mean", "exp", "max_pool2d"):
        table[f"torch.{name}"] = (getattr(torch, name), getattr(torch, name))
    for name in ("relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "tanh", "sigmoid",
                 "softmax", "log_softmax", "dropout", "dropout2d", "max_pool2d", "avg_pool2d",
                 "adaptive_avg_pool2d", "adaptive_max_pool2d", "linear", "conv2d", "pad"):
        table[f"torch.nn.functional.{name}"] = (getattr(F, name), getattr(F, name))
    for name in ("add", "mul", "sub", "truediv", "floordiv", "matmul"):
        table[f"operator.{name}"] = (getattr(operator, name),
                                     _arithmetic(getattr(operator, name)))
    table["operator.getitem"] = (operator.getitem, _getitem)
    table["builtins.getattr"] = (getattr, _tensor_attribute)
    return table


FUNCTIONS = _function_table()
_FUNCTION_NAMES = {id(target): name for name, (target, _) in FUNCTIONS.items()}


# ---- the sandbox's side: recording a module --------------------------------------------------

class _Untraceable(Exception):
    """A forward pass the judge could not rebuild; the message says why."""


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _walk(root: nn.Module) -> list[tuple[str, nn.Module, str | None]]:
    """Every submodule in ``named_modules`` order as (path, module, alias): ``alias`` is the
    path where a module seen before first appeared, else ``None`` (its children follow)."""
    first: dict[int, str] = {}
    found: list[tuple[str, nn.Module, str | None]] = []
    stack: list[tuple[str, nn.Module]] = [("", root)]
    while stack:
        path, module = stack.pop()
        if id(module) in first:
            found.append((path, module, first[id(module)]))
            continue
        first[id(module)] = path
        found.append((path, module, None))
        if len(found) > MAX_MODULES or path.count(".") >= MAX_NESTING:
            raise BadObservation(tr("the network has more than {modules} modules or nests "
                                    "them more than {nesting} deep", modules=MAX_MODULES,
                                    nesting=MAX_NESTING))
        if type(module._modules) is not dict:
            raise BadObservation(tr("a module's submodules are not a dict"))
        children = [(_join(path, name), child) for name, child in module._modules.items()
                    if child is not None]
        if any(type(name) is not str or not _NAME.fullmatch(name)
               for name in module._modules):
            raise BadObservation(tr("a submodule's name is not made of letters, digits and _"))
        stack.extend(reversed(children))
    return found


@contextlib.contextmanager
def _preserved(modules: list[nn.Module]) -> Iterator[None]:
    """Put every module's attributes, parameters, buffers and children back afterwards
    (tracing runs ``forward``, which may change them)."""
    saved = [(m, dict(vars(m)), dict(m._parameters), dict(m._buffers), dict(m._modules))
             for m in modules]
    try:
        yield
    finally:
        for module, attributes, parameters, buffers, children in saved:
            vars(module).clear()
            vars(module).update(attributes)
            for live, old in ((module._parameters, parameters), (module._buffers, buffers),
                              (module._modules, children)):
                live.clear()
                live.update(old)


@functools.lru_cache(maxsize=1)
def _tracer_class() -> type:
    import torch.fx

    class Tracer(torch.fx.Tracer):
        """Every installed submodule is a leaf; a module made inside ``forward`` (say
        ``nn.ReLU()(x)``) is traced through."""

        def __init__(self, installed: set[int]) -> None:
            super().__init__()
            self.installed = installed

        def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
            return True

        def call_module(self, m: nn.Module, forward: Callable, args: tuple,
                        kwargs: dict) -> object:
            if id(m) not in self.installed:
                return forward(*args, **kwargs)
            return super().call_module(m, forward, args, kwargs)
    return Tracer


def _function_name(target: object) -> str:
    try:
        from torch.fx.node import _get_qualified_name
        return _get_qualified_name(target)[:80]
    except Exception:  # noqa: BLE001
        return sanitize_name(getattr(target, "__name__", None), tr("a function"))


def _encode_arg(value: object, depth: int = 0) -> object:
    """A node's argument as JSON: node references, numbers, strings, containers..."""
    import torch.fx
    if depth > MAX_ARG_DEPTH:
        raise _Untraceable(tr("its forward pass nests arguments too deeply"))
    kind = type(value)
    if isinstance(value, torch.fx.Node):
        return {"node": value.name}
    if value is None or kind is bool or kind is str and len(value) <= 100:
        return value
    if kind is int and abs(value) <= MAX_CONSTANT:
        return value
    if kind is float:
        return value if math.isfinite(value) else {"float": str(value)}
    if value is Ellipsis:
        return {"ellipsis": None}
    if kind is slice:
        return {"slice": [_encode_arg(p, depth + 1) for p in (value.start, value.stop,
                                                             value.step)]}
    if kind is torch.dtype and str(value).removeprefix("torch.") in TORCH_DTYPES:
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, tuple | list):
        tag = "list" if isinstance(value, list) else "tuple"
        return {tag: [_encode_arg(item, depth + 1) for item in value]}
    if isinstance(value, dict) and all(type(k) is str for k in value):
        return {"dict": [[k, _encode_arg(v, depth + 1)] for k, v in value.items()]}
    raise _Untraceable(tr("its forward pass uses a constant of type {type}, which the grader "
                          "cannot rebuild", type=sanitize_name(type(value).__name__)))


def _encode_target(node: Any, module: nn.Module, tensor_ids: set[int],
                   constants: dict[str, torch.Tensor]) -> str:
    """A node's target as a string, checked against the allowlists."""
    op, target = node.op, node.target
    if op == "call_function":
        name = _FUNCTION_NAMES.get(id(target))
        if name is None:
            raise _Untraceable(tr("uses {function}, which the grader cannot rebuild",
                                  function=_function_name(target)))
        if name == "builtins.getattr" and node.args[1:2] and \
                node.args[1] not in TENSOR_ATTRIBUTES:
            raise _Untraceable(tr("reads .{name}, which the grader cannot rebuild",
                                  name=str(node.args[1])[:40]))
        return name
    if op == "call_method" and target not in METHODS:
        raise _Untraceable(tr("calls the tensor method .{name}(), which the grader cannot "
                              "rebuild", name=str(target)[:40]))
    if op == "placeholder" and str(target).startswith("*"):
        raise _Untraceable(tr("its forward takes *args or **kwargs"))
    if op == "get_attr":
        owner_path, _, local = target.rpartition(".")
        owner = module.get_submodule(owner_path)
        value = owner._parameters.get(local, owner._buffers.get(local, vars(owner).get(local)))
        if type(value) not in (torch.Tensor, nn.Parameter):
            raise _Untraceable(tr("reads {target}, which is not a tensor", target=target))
        if id(value) not in tensor_ids:
            constants[target] = value
    return str(target)


def _trace(module: nn.Module, subtree: list[nn.Module], training: bool,
           tensor_ids: set[int], constants: dict[str, torch.Tensor]) -> list[dict]:
    """``module``'s forward pass in the given mode as a list of JSON nodes."""
    with _preserved(subtree):
        for each in subtree:
            each.training = training
        try:
            graph = _tracer_class()({id(m) for m in subtree}).trace(module)
        except _Untraceable:
            raise
        except Exception as error:  # noqa: BLE001 - fx fails in many ways
            raise _Untraceable(f"{type(error).__name__}: {one_line(str(error), 160)}") \
                from None
        nodes = []
        for node in graph.nodes:
            nodes.append({"op": node.op, "name": node.name,
                          "target": _encode_target(node, module, tensor_ids, constants),
                          "args": [_encode_arg(a) for a in node.args],
                          "kwargs": {k: _encode_arg(v) for k, v in node.kwargs.items()}})
            if len(nodes) > MAX_NODES:
                raise _Untraceable(tr("its forward pass has more than {count} steps",
                                      count=MAX_NODES))
        return nodes


def _graphs(path: str, module: nn.Module, subtree: list[nn.Module], tensor_ids: set[int],
            budget: Budget) -> dict:
    """The ``graph``, ``eval_graph``, ``untraceable`` and ``constants`` fields of a
    container: its forward pass traced in training and in evaluation mode."""
    where = tr(" (in self.{path})", path=path) if path else ""
    constants: dict[str, torch.Tensor] = {}
    graphs: dict[bool, object] = {}
    reason = None
    if type(module).__module__.startswith("torch."):
        reason = tr("uses nn.{name}, which the grader cannot rebuild{where}",
                    name=sanitize_name(type(module).__name__), where=where)
    else:
        for training in (True, False):
            try:
                graphs[training] = _trace(module, subtree, training, tensor_ids, constants)
            except _Untraceable as error:
                graphs[training] = None
                reason = reason or f"{one_line(str(error), 240)}{where}"
    train, evaluation = graphs.get(True), graphs.get(False)
    return {"graph": train, "eval_graph": "same" if evaluation == train else evaluation,
            "untraceable": reason,
            "constants": {k: encode_tensor(v, budget) for k, v in constants.items()}}


def encode_module(module: nn.Module, budget: Budget | None = None) -> dict:
    """``{"kind": "module", "modules": [...], "tensors": {...}}``: the module tree (standard
    layers with their constructor arguments, other modules as containers with their traced
    forward pass), every parameter and buffer, the training flags and plain attributes.

    A forward pass that cannot be traced is recorded with ``"untraceable": reason``; the
    module is still encoded. Raises :class:`BadObservation` for a tree the judge could not
    rebuild at all (too many modules, a shared container, odd internals) or over budget."""
    budget = budget or Budget()
    walk = _walk(module)
    canonical: dict[int, str] = {}
    tensors: dict[str, dict] = {}
    entries: list[dict] = []

    def names(path: str, own: dict) -> dict[str, str | None]:
        mapping: dict[str, str | None] = {}
        for local, tensor in own.items():
            if tensor is None:
                mapping[local] = None
                continue
            if type(tensor) not in (torch.Tensor, nn.Parameter):
                raise BadObservation(tr("{name} is a {type}, not a tensor",
                                        name=_join(path, local), type=type(tensor).__name__))
            if id(tensor) not in canonical:
                canonical[id(tensor)] = _join(path, local)
                tensors[canonical[id(tensor)]] = encode_tensor(tensor, budget)
            mapping[local] = canonical[id(tensor)]
        return mapping

    for path, each, alias in walk:
        if alias is not None:
            if each._modules:
                raise BadObservation(tr("the network uses the same block of layers at "
                                        "{first!r} and {second!r}; the grader cannot rebuild "
                                        "that", first=alias, second=path))
            entries.append({"path": path, "same_as": alias})
            continue
        kind = layer_kind(each)
        entries.append({
            "path": path, "type": sanitize_name(type(each).__name__, "Module"), "layer": kind,
            "config": None if kind is None else encode(layer_config(each, kind), budget),
            "training": bool(each.training),
            "parameters": names(path, each._parameters), "buffers": names(path, each._buffers),
            "non_persistent": sorted(str(b) for b in each._non_persistent_buffers_set),
            "attrs": encode(plain_attributes(each), budget)})
    for entry, (path, each, alias) in zip(entries, walk, strict=True):
        if alias is None and entry["layer"] is None:
            subtree = list({id(m): m for p, m, _ in walk
                            if not path or p == path or p.startswith(path + ".")}.values())
            entry.update(_graphs(path, each, subtree, set(canonical), budget))
    return {"kind": "module", "modules": entries, "tensors": tensors}


# ---- the judge's side: rebuilding and running a module ---------------------------------------

class _Ref:
    """A reference to the value of an earlier node."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


Node = tuple[str, Any, tuple, dict]   # (op, target, args, kwargs)


class RebuiltModule(nn.Module):
    """A learner's module as the judge rebuilt it: its submodules, parameters and buffers,
    and a ``forward`` that interprets the recorded graph (one per training mode)."""

    def __init__(self) -> None:
        super().__init__()
        self._rebuilt_graphs: dict[bool, list[Node] | None] = {True: None, False: None}
        self._rebuilt_reason = N_("its forward pass was not recorded")
        self._rebuilt_constants: dict[str, torch.Tensor] = {}
        self._rebuilt_limit = Budget().max_elements
        self._rebuilt_rehearsed: set[tuple] = set()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        graph = self._rebuilt_graphs.get(bool(self.training))
        if graph is None:
            raise CaseFailed(tr("the grader could not read your network's forward pass as a "
                                "graph of layers: {reason}; write forward() as a fixed "
                                "sequence of layers and functions",
                                reason=translated(self._rebuilt_reason)), diagnosed=True)
        key = self._shapes_key(args, kwargs)
        if key not in self._rebuilt_rehearsed and _dry_run(self, graph, args, kwargs) \
                and key is not None and len(self._rebuilt_rehearsed) < 64:
            self._rebuilt_rehearsed.add(key)
        return _execute(self, graph, args, kwargs, dry=False)

    def _shapes_key(self, args: tuple, kwargs: dict) -> tuple | None:
        """What the sizes in a forward pass depend on: the training flags and the tensor
        arguments' shapes and dtypes (``None`` when there are other arguments)."""
        if kwargs or not all(isinstance(a, torch.Tensor) for a in args):
            return None
        return (tuple(m.training for m in self.modules()),
                tuple((tuple(a.shape), a.dtype) for a in args))


class _DryStop(Exception):
    """The shape-only rehearsal cannot go on (the real run will raise or go unchecked)."""


def _fill(value: object, values: list) -> object:
    """``value`` with every node reference replaced by that node's value."""
    kind = type(value)
    if kind is _Ref:
        return values[value.index]
    if kind in (tuple, list):
        return kind(_fill(item, values) for item in value)
    if kind is dict:
        return {key: _fill(item, values) for key, item in value.items()}
    if kind is slice:
        return slice(_fill(value.start, values), _fill(value.stop, values),
                     _fill(value.step, values))
    return value


def _to_meta(value: object, depth: int = 0) -> object:
    if isinstance(value, torch.Tensor):
        return torch.empty_like(value, device="meta")
    if type(value) in (tuple, list) and depth < 8:
        return type(value)(_to_meta(item, depth + 1) for item in value)
    if type(value) is dict and depth < 8:
        return {key: _to_meta(item, depth + 1) for key, item in value.items()}
    return value


def _check_size(value: object, limit: int) -> None:
    """Refuse a tensor of more than ``limit`` elements, or an int of more than 64 bits."""
    if isinstance(value, torch.Tensor) and value.numel() > limit:
        raise CaseFailed(tr("your network's forward pass makes a tensor of {count:,} values, "
                            "more than the grader allows ({limit:,})", count=value.numel(),
                            limit=limit), diagnosed=True)
    if type(value) is int and value.bit_length() > 64:
        raise CaseFailed(tr("your network's forward pass computes a number larger than 64 "
                            "bits"), diagnosed=True)
    if type(value) in (tuple, list):
        for item in value[:16]:
            if isinstance(item, torch.Tensor):
                _check_size(item, limit)


def _owned_tensor(module: RebuiltModule, path: str) -> torch.Tensor | None:
    """The parameter, buffer or recorded constant at ``path`` below ``module``."""
    if path in module._rebuilt_constants:
        return module._rebuilt_constants[path]
    owner_path, _, local = path.rpartition(".")
    owner = _submodule(module, owner_path)
    if owner is None:
        return None
    value = owner._parameters.get(local)
    return value if value is not None else owner._buffers.get(local)


def _submodule(module: nn.Module, path: str) -> nn.Module | None:
    for name in path.split(".") if path else ():
        module = module._modules.get(name)
        if module is None:
            return None
    return module


def _meta_twin(layer: nn.Module, name: str) -> nn.Module:
    """A copy of standard layer ``layer`` on the meta device (shapes only, no hooks)."""
    with torch.device("meta"):
        twin = LAYERS[name][0](**layer_config(layer, name))
    for own, theirs in ((twin._parameters, layer._parameters),
                        (twin._buffers, layer._buffers)):
        for key, value in theirs.items():
            own[key] = None if value is None else torch.empty_like(value, device="meta")
    twin.training = layer.training
    return twin


def _dry_call(module: nn.Module, args: tuple, kwargs: dict) -> object:
    if isinstance(module, RebuiltModule):
        graph = module._rebuilt_graphs.get(bool(module.training))
        if graph is None:
            raise _DryStop
        return _execute(module, graph, args, kwargs, dry=True)
    name = layer_kind(module)
    if name in ("Sequential", "ModuleList", "ModuleDict"):
        if name != "Sequential" or len(args) != 1 or kwargs:
            raise _DryStop
        value = args[0]
        for child in module._modules.values():
            value = _dry_call(child, (value,), {})
        return value
    if name is None:
        raise _DryStop
    return _meta_twin(module, name)(*args, **kwargs)


def _dry_run(module: RebuiltModule, graph: list[Node], args: tuple, kwargs: dict) -> bool:
    """Run ``graph`` on meta tensors first: a tensor over the size limit stops the forward
    pass before any real memory is spent on it. Any other failure ends the rehearsal
    quietly (and returns False); the real run then raises it (or goes on, checked node by
    node)."""
    try:
        with torch.no_grad():
            _execute(module, graph, _to_meta(args), _to_meta(kwargs), dry=True)
    except CaseFailed:
        raise
    except Exception:  # noqa: BLE001 - the real run reports real errors
        return False
    return True


def _execute(module: RebuiltModule, graph: list[Node], args: tuple, kwargs: dict,
             dry: bool) -> object:
    """Interpret ``graph``: placeholders take the arguments in order (or by name, or their
    default), every other node calls its allowlisted target; returns the output node's
    value."""
    positional, named = list(args), dict(kwargs)
    values: list[object] = []
    for op, target, node_args, node_kwargs in graph:
        if op == "placeholder":
            if positional:
                value = positional.pop(0)
            elif target in named:
                value = named.pop(target)
            elif node_args:
                value = node_args[0]
            else:
                raise TypeError(tr("forward() missing required argument: '{name}'",
                                   name=target))
        elif op == "output":
            if positional or named:
                raise TypeError(tr("forward() got more arguments than it takes"))
            return _fill(node_args[0], values)
        else:
            call_args, call_kwargs = _fill(node_args, values), _fill(node_kwargs, values)
            if op == "get_attr":
                value = _owned_tensor(module, target)
                value = _to_meta(value) if dry else value
            elif op == "call_module":
                child = _submodule(module, target)
                value = (_dry_call(child, call_args, call_kwargs) if dry
                         else child(*call_args, **call_kwargs))
            elif op == "call_function":
                value = target(*call_args, **call_kwargs)
            else:
                if not call_args or not isinstance(call_args[0], torch.Tensor):
                    raise TypeError(tr(".{method}() is called on something that is not a tensor",
                                       method=target))
                value = getattr(call_args[0], target)(*call_args[1:], **call_kwargs)
            _check_size(value, module._rebuilt_limit)
        values.append(value)
    raise TypeError(tr("the forward pass has no output"))


# ---- the judge's side: validating the data ---------------------------------------------------

def _fields(data: object, what: str, keys: tuple[str, ...]) -> dict:
    if type(data) is not dict or set(data) != set(keys):
        raise BadObservation(tr("{what} does not have exactly the fields {keys}",
                                what=translated(what), keys=list(keys)))
    return data


def _path(value: object, what: str, allow_root: bool = False) -> str:
    if type(value) is not str or len(value) > 1000:
        raise BadObservation(tr("{what} is not a module path", what=translated(what)))
    if value == "" and allow_root:
        return value
    parts = value.split(".")
    if len(parts) > MAX_NESTING or not all(_NAME.fullmatch(part) and not part.startswith("__")
                                           for part in parts):
        raise BadObservation(tr("{what} {path!r} is not a dotted path of names",
                                what=translated(what), path=value[:60]))
    return value


class _GraphReader:
    """Turns one container's JSON node list into the interpreter's nodes, validating every
    op, name, target and argument against the rebuilt module."""

    def __init__(self, module: RebuiltModule, budget: Budget) -> None:
        self.module = module
        self.budget = budget
        self.index: dict[str, int] = {}

    def arg(self, data: object, depth: int = 0) -> object:
        self.budget.spend(items=1)
        if depth > MAX_ARG_DEPTH:
            raise BadObservation(tr("a graph node's arguments nest too deeply"))
        kind = type(data)
        if data is None or kind in (bool, float):
            return data
        if kind is int and abs(data) <= MAX_CONSTANT:
            return data
        if kind is str and len(data) <= 100:
            return data
        if kind is not dict or len(data) != 1:
            raise BadObservation(tr("a graph node's argument {value!r} is not valid",
                                    value=str(data)[:40]))
        (tag, value), = data.items()
        if tag == "node" and type(value) is str and value in self.index:
            return _Ref(self.index[value])
        if tag == "node":
            raise BadObservation(tr("a graph node refers to {name!r}, which is not an earlier "
                                    "node", name=str(value)[:40]))
        if tag in ("tuple", "list") and type(value) is list:
            items = [self.arg(item, depth + 1) for item in value]
            return tuple(items) if tag == "tuple" else items
        if tag == "dict" and type(value) is list:
            pairs = [pair for pair in value if type(pair) is list and len(pair) == 2
                     and type(pair[0]) is str]
            if len(pairs) != len(value):
                raise BadObservation(tr("a graph node's dict argument is not [name, value] "
                                        "pairs"))
            return {key: self.arg(item, depth + 1) for key, item in pairs}
        if tag == "slice" and type(value) is list and len(value) == 3:
            return slice(*(self.arg(item, depth + 1) for item in value))
        if tag == "ellipsis" and value is None:
            return Ellipsis
        if tag == "dtype" and type(value) is str and value in TORCH_DTYPES:
            return TORCH_DTYPES[value]
        if tag == "float" and type(value) is str and value in ("nan", "inf", "-inf"):
            return float(value)
        raise BadObservation(tr("a graph node's argument of kind {kind!r} is not valid",
                                kind=str(tag)[:40]))

    def target(self, op: str, data: object, args: tuple) -> object:
        if op == "placeholder":
            if type(data) is not str or not _IDENTIFIER.fullmatch(data):
                raise BadObservation(tr("a placeholder's name is not an identifier"))
            return data
        if op == "output":
            return None
        if op == "call_function":
            if type(data) is not str or data not in FUNCTIONS:
                raise BadObservation(tr("a graph calls {name!r}, which is not an allowed "
                                        "function", name=str(data)[:60]))
            if data == "builtins.getattr" and (len(args) != 2 or type(args[1]) is not str
                                               or args[1] not in TENSOR_ATTRIBUTES):
                raise BadObservation(tr("a graph reads an attribute that is not allowed"))
            return FUNCTIONS[data][1]
        if op == "call_method":
            if type(data) is not str or data not in METHODS:
                raise BadObservation(tr("a graph calls the method {name!r}, which is not "
                                        "allowed", name=str(data)[:60]))
            return data
        path = _path(data, tr("the target of a {op} node", op=op))
        if op == "call_module" and _submodule(self.module, path) is None:
            raise BadObservation(tr("a graph calls the module {path!r}, which does not exist",
                                    path=path))
        if op == "get_attr" and _owned_tensor(self.module, path) is None:
            raise BadObservation(tr("a graph reads {path!r}, which is not a parameter, buffer "
                                    "or recorded constant", path=path))
        return path

    def graph(self, data: object) -> list[Node]:
        if type(data) is not list or not 1 <= len(data) <= MAX_NODES:
            raise BadObservation(tr("a graph is not a list of 1 to {count} nodes", count=MAX_NODES))
        self.budget.spend(items=len(data))
        self.index = {}
        nodes: list[Node] = []
        for position, item in enumerate(data):
            node = _fields(item, N_("a graph node"), ("op", "name", "target", "args", "kwargs"))
            op, name = node["op"], node["name"]
            if op not in ("placeholder", "get_attr", "call_module", "call_function",
                          "call_method", "output"):
                raise BadObservation(tr("a graph node has the op {op!r}", op=str(op)[:40]))
            if type(name) is not str or not _IDENTIFIER.fullmatch(name) or name in self.index:
                raise BadObservation(tr("a graph node's name {name!r} is not a new identifier",
                                        name=str(name)[:40]))
            if op == "placeholder" and nodes and nodes[-1][0] != "placeholder":
                raise BadObservation(tr("a placeholder comes after other nodes"))
            if (op == "output") != (position == len(data) - 1):
                raise BadObservation(tr("a graph does not end with exactly one output node"))
            if type(node["args"]) is not list or type(node["kwargs"]) is not dict:
                raise BadObservation(tr("a graph node's args are not a list and kwargs a dict"))
            if not all(type(k) is str and _IDENTIFIER.fullmatch(k) for k in node["kwargs"]):
                raise BadObservation(tr("a graph node's keyword names are not identifiers"))
            args = tuple(self.arg(a) for a in node["args"])
            kwargs = {key: self.arg(value) for key, value in node["kwargs"].items()}
            if op == "placeholder" and (len(args) > 1 or kwargs or _has_ref(args)):
                raise BadObservation(tr("a placeholder's default is not a constant"))
            if op == "output" and len(args) != 1:
                raise BadObservation(tr("an output node does not have one value"))
            nodes.append((op, self.target(op, node["target"], args), args, kwargs))
            self.index[name] = position
        return nodes


def _has_ref(value: object) -> bool:
    if type(value) is _Ref:
        return True
    if type(value) in (tuple, list):
        return any(_has_ref(item) for item in value)
    return False


def _tensor_map(data: object, budget: Budget) -> dict[str, torch.Tensor]:
    if type(data) is not dict:
        raise BadObservation(tr("a module's tensors are not an object"))
    return {_path(name, N_("a tensor's name")): decode_tensor(value, budget)
            for name, value in data.items()}


def _install_tensors(module: nn.Module, mapping: object, tensors: dict[str, torch.Tensor],
                     parameters: bool, non_persistent: set[str], built_layer: bool) -> None:
    """Put the recorded parameters (or buffers) into ``module``: a standard layer's must be
    exactly the ones its constructor made, in the same shapes; a container registers its
    own."""
    own = module._parameters if parameters else module._buffers
    if type(mapping) is not dict:
        raise BadObservation(tr("a module's parameters are not an object") if parameters
                             else tr("a module's buffers are not an object"))
    if built_layer and set(mapping) != set(own):
        layer, names = type(module).__name__, sorted(map(str, mapping))[:6]
        raise BadObservation(
            tr("a {layer} layer has the parameters {names}, expected {expected}", layer=layer,
               names=names, expected=sorted(own)) if parameters
            else tr("a {layer} layer has the buffers {names}, expected {expected}",
                    layer=layer, names=names, expected=sorted(own)))
    for local, name in mapping.items():
        if type(local) is not str or not _IDENTIFIER.fullmatch(local):
            raise BadObservation(tr("a module's parameter name is not an identifier")
                                 if parameters
                                 else tr("a module's buffer name is not an identifier"))
        if name is not None and (type(name) is not str or name not in tensors):
            raise BadObservation(tr("parameter {name!r} names no recorded tensor", name=local)
                                 if parameters
                                 else tr("buffer {name!r} names no recorded tensor", name=local))
        tensor = None if name is None else tensors[name]
        if tensor is not None and (type(tensor) is nn.Parameter) != parameters:
            raise BadObservation(tr("{name!r} is recorded as a buffer", name=local)
                                 if parameters
                                 else tr("{name!r} is recorded as a parameter", name=local))
        if built_layer:
            old = own[local]
            if (old is None) != (tensor is None) or (tensor is not None
                                                     and tensor.shape != old.shape):
                layer = type(module).__name__
                raise BadObservation(
                    tr("parameter {name!r} of a {layer} layer does not have the shape its "
                       "settings give", name=local, layer=layer) if parameters
                    else tr("buffer {name!r} of a {layer} layer does not have the shape its "
                            "settings give", name=local, layer=layer))
            own[local] = tensor
            continue
        try:
            if parameters:
                module.register_parameter(local, tensor)
            else:
                module.register_buffer(local, tensor, persistent=local not in non_persistent)
        except (KeyError, TypeError, AttributeError) as error:
            raise BadObservation(tr("{name!r} cannot be registered: {error}", name=local,
                                    error=one_line(str(error)))) from None


def _build(entry: dict, tensors: dict[str, torch.Tensor], budget: Budget) -> nn.Module:
    """One module of the tree (without its children and graph), from a validated entry."""
    name = sanitize_name(entry["type"], "Module")
    kind = entry["layer"]
    if kind is None:
        module: nn.Module = _named_class(name, RebuiltModule)()
        module._rebuilt_limit = budget.max_elements
    else:
        if type(kind) is not str or kind not in LAYERS:
            raise BadObservation(tr("unknown layer type {kind!r}", kind=str(kind)[:40]))
        cls, checks = LAYERS[kind]
        config = decode(entry["config"], budget)
        if type(config) is not dict or set(config) != set(checks):
            raise BadObservation(tr("a {kind} layer's settings are not {keys}", kind=kind,
                                    keys=sorted(checks)))
        arguments = {key: check(config[key], tr("{kind}'s {key}", kind=kind, key=key))
                     for key, check in checks.items()}
        try:
            with torch.device("meta"):
                module = _named_class(name, cls)(**arguments)
        except Exception as error:  # noqa: BLE001 - torch's own checks of the settings
            raise BadObservation(tr("a {kind} layer cannot be built: {error}", kind=kind,
                                    error=one_line(str(error)))) from None
    non_persistent = entry["non_persistent"]
    if type(non_persistent) is not list or any(type(b) is not str for b in non_persistent):
        raise BadObservation(tr("a module's non-persistent buffers are not a list of names"))
    for parameters, key in ((True, "parameters"), (False, "buffers")):
        _install_tensors(module, entry[key], tensors, parameters, set(non_persistent),
                         kind is not None)
    module.training = _flag(entry["training"], N_("a training flag"))
    attrs = decode(entry["attrs"], budget)
    if type(attrs) is not dict:
        raise BadObservation(tr("a module's attributes are not a dict"))
    if kind is not None:
        attrs = {key: value for key, value in attrs.items() if key not in vars(module)}
    set_plain_attributes(module, attrs)
    return module


_ENTRY_KEYS = ("path", "type", "layer", "config", "training", "parameters", "buffers",
               "non_persistent", "attrs")
_GRAPH_KEYS = ("graph", "eval_graph", "untraceable", "constants")


def _read_graphs(module: RebuiltModule, entry: dict, budget: Budget) -> None:
    constants = entry["constants"]
    if type(constants) is not dict:
        raise BadObservation(tr("a module's constants are not an object"))
    module._rebuilt_constants = {_path(k, N_("a constant's name")): decode_tensor(v, budget)
                                 for k, v in constants.items()}
    reason = entry["untraceable"]
    if reason is not None:
        if type(reason) is not str or len(reason) > 300:
            raise BadObservation(tr("the reason a forward pass was not traced is not a short "
                                    "text"))
        module._rebuilt_reason = one_line(reason, 300)
    train = None if entry["graph"] is None else _GraphReader(module, budget).graph(
        entry["graph"])
    evaluation = entry["eval_graph"]
    module._rebuilt_graphs = {True: train, False: train if evaluation == "same" else None
                              if evaluation is None else _GraphReader(module, budget).graph(
                                  evaluation)}


def decode_module(data: object, budget: Budget) -> nn.Module:
    """The module :func:`encode_module` recorded, rebuilt from validated data: standard layers
    built by the judge, containers that interpret their recorded graph, every parameter and
    buffer loaded (strictly: same names and shapes), training flags and plain attributes
    set. Raises :class:`BadObservation` for anything malformed or over ``budget``."""
    fields = _fields(data, N_("a module"), ("kind", "modules", "tensors"))
    entries = fields["modules"]
    if type(entries) is not list or not 1 <= len(entries) <= MAX_MODULES:
        raise BadObservation(tr("a module is not a list of 1 to {count} modules",
                                count=MAX_MODULES))
    budget.spend(items=len(entries))
    tensors = _tensor_map(fields["tensors"], budget)
    built: dict[str, nn.Module] = {}
    paths: set[str] = set()
    aliases: list[nn.Module] = []
    pending: list[tuple[RebuiltModule, dict]] = []
    for position, entry in enumerate(entries):
        if type(entry) is not dict:
            raise BadObservation(tr("a module entry is not an object"))
        path = _path(entry.get("path"), N_("a module's path"), allow_root=True)
        if (path == "") != (position == 0):
            raise BadObservation(tr("the first module entry, and only it, is the network "
                                    "itself"))
        if path in paths:
            raise BadObservation(tr("the module {path!r} appears twice", path=path))
        paths.add(path)
        parent_path, _, local = path.rpartition(".")
        if position and parent_path not in built:
            raise BadObservation(tr("the module {path!r} comes before its parent", path=path))
        if "same_as" in entry:
            target = _path(_fields(entry, N_("a shared module"), ("path", "same_as"))["same_as"],
                           N_("a shared module's original"), allow_root=True)
            if target not in built:
                raise BadObservation(tr("the module {path!r} shares {target!r}, which is not an "
                                        "earlier module", path=path, target=target))
            module = built[target]
            aliases.append(module)
        else:
            is_layer = entry.get("layer") is not None
            keys = _ENTRY_KEYS if is_layer else _ENTRY_KEYS + _GRAPH_KEYS
            module = _build(_fields(entry, tr("the module {path!r}", path=path), keys), tensors,
                            budget)
            if not is_layer:
                pending.append((module, entry))
            built[path] = module
        if position:
            try:
                built[parent_path].add_module(local, module)
            except (KeyError, TypeError) as error:
                raise BadObservation(tr("the module {path!r} cannot be added: {error}",
                                        path=path, error=one_line(str(error)))) from None
    if any(module._modules for module in aliases):
        raise BadObservation(tr("a module shared at two places has submodules"))
    for module, entry in pending:
        _read_graphs(module, entry, budget)
    return built[""]
