"""The data that crosses from the grader's sandbox to its judge: learners' values as JSON.

In the sandbox, :func:`encode` turns what a learner's function returned into plain JSON data,
:func:`capture_state` records what a call did to its arguments and :func:`encode_exception`
what it raised. Outside, the judge turns that data back into values with :func:`decode`,
:func:`apply_state` and :func:`decode_exception`.

The judge trusts nothing it receives: a hostile notebook can write any JSON it likes. Decoding
validates every field, counts what it builds against a :class:`Budget`, never recurses deeper
than the budget allows, never unpickles and never runs code from the data; anything wrong
ends as one :class:`BadObservation` whose message says what. Encoding, in the sandbox, looks
at values through their exact types and calls as few of their (overridable) methods as it can.

Format: ``None``, bools, ints, finite floats and strings are themselves; every other value is
a JSON object with a ``"kind"`` (``"list"``, ``"tuple"``, ``"dict"``, ``"tensor"``, ...).
Tensor and array data are the raw little-endian bytes in base64.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from cnn_course.messages import N_, tr, translated

MAX_INT_BITS = 13_300          # about 4,000 decimal digits
MAX_RANK = 8
MAX_TEXT = 2_000               # characters of an exception's message
REPR_CHARS = 200
REPR_SECONDS = 0.5

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
    "float64": torch.float64, "complex64": torch.complex64, "complex128": torch.complex128,
    "int8": torch.int8, "int16": torch.int16, "int32": torch.int32, "int64": torch.int64,
    "uint8": torch.uint8, "bool": torch.bool,
}
_TORCH_DTYPE_NAMES = {dtype: name for name, dtype in TORCH_DTYPES.items()}

NUMPY_DTYPES: dict[str, np.dtype] = {name: np.dtype(name) for name in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128")}
_NUMPY_SCALARS = {dtype.type: name for name, dtype in NUMPY_DTYPES.items()}

_PLAIN_SCALARS = (type(None), bool, int, float, str)
_FLOAT_WORDS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class BadObservation(ValueError):
    """Data from the sandbox that cannot be decoded; the message says why (one line)."""


@dataclass
class Budget:
    """Limits on what decoding (or encoding) may build, shared across one notebook's
    observations: every call of :meth:`spend` adds to the totals."""

    max_bytes: int = 64 << 20       # total bytes of tensor/array data and strings
    max_items: int = 1_000_000      # total number of values (containers, scalars, tensors)
    max_depth: int = 32             # nesting
    max_elements: int = 50_000_000  # total tensor elements
    bytes_used: int = 0
    items_used: int = 0
    elements_used: int = 0

    def spend(self, items: int = 0, nbytes: int = 0, elements: int = 0) -> None:
        """Count ``items`` values, ``nbytes`` bytes and ``elements`` tensor elements; raise
        :class:`BadObservation` when a total passes its limit."""
        self.items_used += items
        self.bytes_used += nbytes
        self.elements_used += elements
        if self.items_used > self.max_items:
            raise BadObservation(tr("more than {limit:,} values in all", limit=self.max_items))
        if self.bytes_used > self.max_bytes:
            raise BadObservation(tr("more than {limit:,} bytes of data in all",
                                    limit=self.max_bytes))
        if self.elements_used > self.max_elements:
            raise BadObservation(tr("more than {limit:,} tensor elements in all",
                                    limit=self.max_elements))

    def enter(self, depth: int) -> int:
        """The depth one level below ``depth``; raise when that is too deep."""
        if depth >= self.max_depth:
            raise BadObservation(tr("values nested more than {limit} levels deep",
                                    limit=self.max_depth))
        return depth + 1


# ---- small checks shared by decoding ---------------------------------------------------------

def _fields(data: object, what: str, required: tuple[str, ...],
            optional: tuple[str, ...] = ()) -> dict:
    """``data`` as a dict with exactly the ``required`` keys and some of ``optional``."""
    if type(data) is not dict:
        raise BadObservation(tr("{what} is not an object", what=translated(what)))
    missing = [key for key in required if key not in data]
    extra = [key for key in data if key not in required and key not in optional]
    if missing or extra:
        raise BadObservation(tr("{what} has fields {fields}, expected {required} (and maybe "
                                "{optional})", what=translated(what),
                                fields=sorted(map(str, data))[:8], required=list(required),
                                optional=list(optional)))
    return data


def _str(value: object, what: str, limit: int = 200) -> str:
    if type(value) is not str or len(value) > limit:
        raise BadObservation(tr("{what} is not a string of at most {limit} characters",
                                what=translated(what), limit=limit))
    return value


def _bool(value: object, what: str) -> bool:
    if type(value) is not bool:
        raise BadObservation(tr("{what} is not true or false", what=translated(what)))
    return value


def _checked_int(value: int) -> int:
    if value.bit_length() > MAX_INT_BITS:
        raise BadObservation(tr("an integer has more than about 4,000 digits"))
    return value


def sanitize_name(name: object, default: str = "object") -> str:
    """A type or class name reduced to an identifier of at most 60 characters."""
    text = re.sub(r"\W", "_", name, flags=re.ASCII)[:60] if type(name) is str else ""
    if text and text[0].isdigit():
        text = "_" + text[:59]
    return text or default


def one_line(text: str, limit: int = 200) -> str:
    """The first line of ``text``, cut to ``limit`` characters."""
    lines = text.strip().splitlines()
    return (lines[0] if lines else "")[:limit]


# ---- running code the sandbox does not control -----------------------------------------------

class _TooSlow(Exception):
    pass


def safe_call(compute: Callable[[], object], seconds: float = REPR_SECONDS) -> object:
    """``compute()``, stopped with an exception when its Python code runs past ``seconds``
    (checked by a trace function, so no signal handler is touched). For the sandbox side:
    a learner's ``__repr__`` or ``__str__`` must not stop the recording."""
    deadline = time.monotonic() + seconds

    def trace(frame: object, event: str, arg: object) -> Callable:
        if time.monotonic() > deadline:
            raise _TooSlow
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        return compute()
    finally:
        sys.settrace(previous)


def safe_text(compute: Callable[[], object], limit: int) -> str:
    """The string ``compute()`` returns, cut to ``limit`` characters; a placeholder when it
    fails, runs too long or returns something else."""
    try:
        text = safe_call(compute)
        return str.__str__(text)[:limit] if isinstance(text, str) else tr("<not a string>")
    except _TooSlow:
        return tr("<its text took too long to compute>")
    except Exception as error:  # noqa: BLE001 - any learner code may fail
        return tr("<its text could not be computed: {error_type}>",
                  error_type=type(error).__name__)


def _type_name(value: object) -> str:
    try:
        return sanitize_name(type.__dict__["__name__"].__get__(type(value)))
    except Exception:  # noqa: BLE001
        return "object"


# ---- opaque values ---------------------------------------------------------------------------

class Opaque:
    """Stands in, in the judge, for a value the protocol does not carry (a function, an
    object of the learner's own class...). Its class is named after the original type and its
    ``repr()`` and ``str()`` are the original's text; it is not callable, not a number, not
    iterable, and equal only to itself."""

    __slots__ = ("_text",)
    __iter__ = None   # iter() raises TypeError instead of trying __getitem__
    __hash__ = object.__hash__

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other


@functools.lru_cache(maxsize=512)
def opaque_class(name: str) -> type[Opaque]:
    """The (cached) :class:`Opaque` subclass named ``name`` (already sanitized)."""
    return type(name, (Opaque,), {"__slots__": (), "__qualname__": name,
                                  "__module__": "learner"})


def _encode_opaque(value: object) -> dict:
    return {"kind": "opaque", "type": _type_name(value),
            "repr": safe_text(lambda: repr(value), REPR_CHARS)}


# ---- encoding --------------------------------------------------------------------------------

def _encode_float(value: float) -> object:
    if math.isfinite(value):
        return value
    return {"kind": "float", "value": "nan" if math.isnan(value) else
            ("inf" if value > 0 else "-inf")}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class _Encoder:
    """Turns one value into JSON data, counting against ``budget``; refuses cycles."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.active: set[int] = set()

    def value(self, value: object, depth: int = 0) -> object:
        self.budget.spend(items=1)
        kind = type(value)
        if value is None or kind is bool:
            return value
        if kind is int:
            return self.int(value)
        if kind is float:
            return _encode_float(value)
        if kind is str:
            self.budget.spend(nbytes=len(value))
            return value
        if kind in (bytes, bytearray):
            self.budget.spend(nbytes=len(value))
            return {"kind": kind.__name__, "data": _b64(bytes(value))}
        if kind is complex:
            return {"kind": "complex", "real": _encode_float(value.real),
                    "imag": _encode_float(value.imag)}
        if kind in (torch.Tensor, nn.Parameter):
            try:
                return self.tensor(value, depth)
            except BadObservation:
                raise
            except Exception:  # noqa: BLE001 - a tensor torch cannot read out
                return _encode_opaque(value)
        if kind is torch.Size:
            return {"kind": "size", "dims": [self.int(int(d)) for d in value]}
        if kind is torch.dtype:
            name = _TORCH_DTYPE_NAMES.get(value)
            return _encode_opaque(value) if name is None else {"kind": "dtype", "name": name}
        if kind is np.ndarray:
            return self.array(value)
        if kind in _NUMPY_SCALARS:
            return self.numpy_scalar(value)
        if issubclass(kind, nn.Module):
            from cnn_course.grading.rebuild import encode_module
            try:
                return encode_module(value, self.budget)
            except BadObservation:
                raise
            except Exception as error:  # noqa: BLE001 - odd internals of a learner's module
                raise BadObservation(tr("the network could not be recorded: {error_type}: "
                                        "{error}", error_type=type(error).__name__,
                                        error=one_line(str(error)))) from None
        return self.container_or_subclass(value, kind, depth)

    def int(self, value: int) -> int:
        return _checked_int(value)

    def container_or_subclass(self, value: object, kind: type, depth: int) -> object:
        # Subclasses of plain types travel as the plain type, read through the base type's
        # own methods: an override could otherwise fake comparisons in the judge.
        if issubclass(kind, int) and not issubclass(kind, bool):
            return self.int(int.__int__(value))
        if issubclass(kind, float):
            return _encode_float(float.__float__(value))
        if issubclass(kind, str):
            return self.value(str.__str__(value), depth)
        readers: list[tuple[type, str, Callable]] = [
            (tuple, "tuple", tuple.__iter__), (list, "list", list.__iter__),
            (frozenset, "frozenset", frozenset.__iter__), (set, "set", set.__iter__)]
        for base, name, iterate in readers:
            if issubclass(kind, base):
                return self.items(value, name, iterate, depth)
        if issubclass(kind, dict):
            ordered = kind is OrderedDict
            return self.items(value, "ordereddict" if ordered else "dict",
                              OrderedDict.items if ordered else dict.items, depth)
        return _encode_opaque(value)

    def items(self, value: object, name: str, iterate: Callable, depth: int) -> dict:
        if id(value) in self.active:
            raise BadObservation(tr("a {kind} contains itself", kind=name))
        inner = self.budget.enter(depth)
        self.active.add(id(value))
        try:
            if name in ("dict", "ordereddict"):
                items = [[self.value(k, inner), self.value(v, inner)] for k, v in iterate(value)]
            else:
                items = [self.value(item, inner) for item in iterate(value)]
        finally:
            self.active.discard(id(value))
        return {"kind": name, "items": items}

    def tensor(self, tensor: torch.Tensor, depth: int, with_grad: bool = True) -> dict:
        """A plain tensor's dtype, shape, bytes, requires_grad, parameter flag and (for a
        leaf) its gradient; other layouts and dtypes become opaque."""
        name = _TORCH_DTYPE_NAMES.get(tensor.dtype)
        if (name is None or tensor.layout != torch.strided or tensor.is_quantized
                or tensor.is_meta or tensor.is_nested):
            return _encode_opaque(tensor)
        self.budget.spend(nbytes=tensor.numel() * tensor.element_size(),
                          elements=tensor.numel())
        data = tensor.detach().to("cpu").resolve_conj().resolve_neg().contiguous()
        raw = data.reshape(-1).view(torch.uint8).numpy().tobytes()
        grad = None
        if with_grad and tensor.is_leaf and tensor.grad is not None:
            grad = self.tensor(tensor.grad, self.budget.enter(depth), with_grad=False)
            grad = grad if grad.get("kind") == "tensor" else None
        return {"kind": "tensor", "dtype": name, "shape": [int(d) for d in data.shape],
                "data": _b64(raw), "requires_grad": bool(tensor.requires_grad),
                "parameter": type(tensor) is nn.Parameter, "grad": grad}

    def array(self, array: np.ndarray) -> dict:
        name = array.dtype.name
        if NUMPY_DTYPES.get(name) != array.dtype.newbyteorder("="):
            return _encode_opaque(array)
        self.budget.spend(nbytes=array.nbytes, elements=array.size)
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        return {"kind": "ndarray", "dtype": name, "shape": [int(d) for d in array.shape],
                "data": _b64(data.tobytes())}

    def numpy_scalar(self, scalar: np.generic) -> dict:
        name = _NUMPY_SCALARS[type(scalar)]
        raw = np.asarray(scalar, dtype=NUMPY_DTYPES[name].newbyteorder("<")).tobytes()
        return {"kind": "numpy_scalar", "dtype": name, "data": _b64(raw)}


def encode(value: object, budget: Budget | None = None) -> object:
    """A JSON-able structure (dicts, lists, strings, numbers, bools, None) that :func:`decode`
    turns back into ``value``; raises :class:`BadObservation` for a value that contains
    itself, nests too deeply or passes the budget."""
    return _Encoder(budget or Budget()).value(value)


def encode_tensor(tensor: torch.Tensor, budget: Budget | None = None) -> dict:
    """A tensor's data (see :func:`encode`), or an opaque record for an unusual tensor."""
    return _Encoder(budget or Budget()).tensor(tensor, 0)


# ---- decoding --------------------------------------------------------------------------------

def _decode_float(data: object) -> float:
    if type(data) is float or (type(data) is int and data.bit_length() <= 1024):
        return float(data)
    fields = _fields(data, N_("a float"), ("kind", "value"))
    word = fields["value"]
    if type(word) is not str or word not in _FLOAT_WORDS:
        raise BadObservation(tr("a float is not a number, 'nan', 'inf' or '-inf'"))
    return _FLOAT_WORDS[word]


def _raw_bytes(text: object, nbytes: int, budget: Budget) -> bytes:
    """Base64 ``text`` holding exactly ``nbytes`` bytes, counted against ``budget``."""
    if type(text) is not str or len(text) != 4 * ((nbytes + 2) // 3):
        raise BadObservation(tr("the data does not hold the {nbytes:,} bytes its dtype and "
                                "shape call for", nbytes=nbytes))
    budget.spend(nbytes=nbytes)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadObservation(tr("the data is not valid base64")) from None
    if len(raw) != nbytes:
        raise BadObservation(tr("the data holds {got:,} bytes, expected {expected:,}",
                                got=len(raw), expected=nbytes))
    return raw


def _shape(data: object, budget: Budget) -> tuple[tuple[int, ...], int]:
    """A validated shape and its number of elements (counted against ``budget``)."""
    if type(data) is not list or len(data) > MAX_RANK:
        raise BadObservation(tr("a shape is not a list of at most {rank} sizes", rank=MAX_RANK))
    for size in data:
        if type(size) is not int or not 0 <= size <= budget.max_elements:
            raise BadObservation(tr("a shape holds {size}, not a size between 0 and "
                                    "{limit:,}", size=str(size)[:30],
                                    limit=budget.max_elements))
    count = math.prod(data)
    budget.spend(elements=count)
    return tuple(data), count


def _check_bools(raw: bytes) -> None:
    if raw.translate(None, b"\x00\x01"):
        raise BadObservation(tr("a bool tensor holds bytes other than 0 and 1"))


def _buffer(fields: dict, dtypes: dict, what: str, budget: Budget
            ) -> tuple[object, tuple[int, ...], int, bytes]:
    """The dtype (from ``dtypes``), shape, element count and raw bytes of a tensor's or an
    array's data, each checked against the others and the budget."""
    dtype = dtypes.get(fields["dtype"]) if type(fields["dtype"]) is str else None
    if dtype is None:
        raise BadObservation(tr("{what} has dtype {dtype!r}, not one of {dtypes}",
                                what=translated(what), dtype=str(fields["dtype"])[:40],
                                dtypes=", ".join(dtypes)))
    shape, count = _shape(fields["shape"], budget)
    raw = _raw_bytes(fields["data"], count * dtype.itemsize, budget)
    if fields["dtype"] == "bool":
        _check_bools(raw)
    return dtype, shape, count, raw


def decode_tensor(data: object, budget: Budget, with_grad: bool = True) -> torch.Tensor:
    """A fresh ``torch.Tensor`` (or ``nn.Parameter``) from :meth:`_Encoder.tensor`'s data."""
    fields = _fields(data, N_("a tensor"), ("kind", "dtype", "shape", "data"),
                     ("requires_grad", "parameter", "grad"))
    dtype, shape, count, raw = _buffer(fields, TORCH_DTYPES, N_("a tensor"), budget)
    tensor = (torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape) if count
              else torch.empty(shape, dtype=dtype))
    requires_grad = _bool(fields.get("requires_grad", False), "requires_grad")
    if requires_grad and not (dtype.is_floating_point or dtype.is_complex):
        raise BadObservation(tr("a {dtype} tensor cannot require gradients",
                                dtype=fields["dtype"]))
    if _bool(fields.get("parameter", False), N_("the parameter flag")):
        tensor = nn.Parameter(tensor, requires_grad=requires_grad)
    elif requires_grad:
        tensor.requires_grad_(True)
    grad = fields.get("grad")
    if grad is not None:
        if not with_grad:
            raise BadObservation(tr("a gradient has a gradient of its own"))
        grad = decode_tensor(grad, budget, with_grad=False)
        if type(grad) is not torch.Tensor or grad.shape != tensor.shape \
                or grad.dtype != tensor.dtype or grad.requires_grad:
            raise BadObservation(tr("a tensor's gradient does not match it in type, shape or "
                                    "dtype"))
        try:
            tensor.grad = grad
        except RuntimeError as error:
            raise BadObservation(tr("a tensor's gradient does not fit: {error}",
                                    error=one_line(str(error)))) from None
    return tensor


def _decode_array(data: object, budget: Budget) -> np.ndarray:
    fields = _fields(data, N_("an array"), ("kind", "dtype", "shape", "data"))
    dtype, shape, _, raw = _buffer(fields, NUMPY_DTYPES, N_("an array"), budget)
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def _decode_numpy_scalar(data: object, budget: Budget) -> np.generic:
    fields = _fields(data, N_("a numpy scalar"), ("kind", "dtype", "data"))
    dtype = NUMPY_DTYPES.get(fields["dtype"]) if type(fields["dtype"]) is str else None
    if dtype is None:
        raise BadObservation(tr("a numpy scalar has dtype {dtype!r}",
                                dtype=str(fields["dtype"])[:40]))
    raw = _raw_bytes(fields["data"], dtype.itemsize, budget)
    if dtype == np.bool_:
        _check_bools(raw)
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)[0]


def _hashable(value: object, what: str) -> object:
    try:
        hash(value)
    except TypeError:
        raise BadObservation(tr("{what} is a {type}, which cannot be one",
                                what=translated(what), type=type(value).__name__)) from None
    return value


def _decode_items(fields: dict, budget: Budget, depth: int) -> list:
    items = fields["items"]
    if type(items) is not list:
        raise BadObservation(tr("a container's items are not a list"))
    inner = budget.enter(depth)
    return [decode(item, budget, inner) for item in items]


def _decode_pairs(fields: dict, budget: Budget, depth: int) -> list[tuple[object, object]]:
    items = fields["items"]
    if type(items) is not list:
        raise BadObservation(tr("a dict's items are not a list"))
    inner = budget.enter(depth)
    pairs = []
    for pair in items:
        if type(pair) is not list or len(pair) != 2:
            raise BadObservation(tr("a dict item is not a [key, value] pair"))
        key = _hashable(decode(pair[0], budget, inner), N_("a dict key"))
        pairs.append((key, decode(pair[1], budget, inner)))
    return pairs


def _decode_kind(data: dict, budget: Budget, depth: int) -> object:
    kind = data.get("kind")
    if kind in ("list", "tuple", "set", "frozenset"):
        items = _decode_items(_fields(data, tr("a {kind}", kind=kind), ("kind", "items")),
                              budget, depth)
        if kind in ("set", "frozenset"):
            what = tr("an item of a {kind}", kind=kind)
            items = [_hashable(item, what) for item in items]
        return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[kind](items)
    if kind in ("dict", "ordereddict"):
        pairs = _decode_pairs(_fields(data, tr("a {kind}", kind=kind), ("kind", "items")),
                              budget, depth)
        return OrderedDict(pairs) if kind == "ordereddict" else dict(pairs)
    if kind == "tensor":
        return decode_tensor(data, budget)
    if kind == "ndarray":
        return _decode_array(data, budget)
    if kind == "numpy_scalar":
        return _decode_numpy_scalar(data, budget)
    if kind == "float":
        return _decode_float(data)
    if kind == "complex":
        fields = _fields(data, N_("a complex number"), ("kind", "real", "imag"))
        return complex(_decode_float(fields["real"]), _decode_float(fields["imag"]))
    if kind in ("bytes", "bytearray"):
        text = _fields(data, tr("a {kind} value", kind=kind), ("kind", "data"))["data"]
        if type(text) is not str:
            raise BadObservation(tr("a {kind} value's data is not a string", kind=kind))
        raw = _raw_bytes(text, len(text) // 4 * 3 - text[-2:].count("="), budget)
        return raw if kind == "bytes" else bytearray(raw)
    if kind == "size":
        dims = _fields(data, N_("a torch.Size"), ("kind", "dims"))["dims"]
        if type(dims) is not list or len(dims) > 32 or any(
                type(d) is not int or not 0 <= d < 1 << 62 for d in dims):
            raise BadObservation(tr("a torch.Size is not a list of at most 32 sizes"))
        budget.spend(items=len(dims))
        return torch.Size(dims)
    if kind == "dtype":
        name = _fields(data, N_("a dtype"), ("kind", "name"))["name"]
        if type(name) is not str or name not in TORCH_DTYPES:
            raise BadObservation(tr("unknown dtype {name!r}", name=str(name)[:40]))
        return TORCH_DTYPES[name]
    if kind == "opaque":
        fields = _fields(data, N_("an opaque value"), ("kind", "type", "repr"))
        text = _str(fields["repr"], N_("an opaque value's text"), REPR_CHARS)
        return opaque_class(sanitize_name(fields["type"]))(text)
    if kind == "module":
        from cnn_course.grading.rebuild import decode_module
        return decode_module(data, budget)
    raise BadObservation(tr("unknown kind of value {kind!r}", kind=str(kind)[:40]))


def decode(data: object, budget: Budget, depth: int = 0) -> object:
    """The value that :func:`encode` turned into ``data``, rebuilt from validated data only.

    Raises :class:`BadObservation` for anything malformed or over ``budget``.
    """
    budget.spend(items=1)
    kind = type(data)
    if data is None or kind is bool:
        return data
    if kind is int:
        return _checked_int(data)
    if kind is float:
        return data
    if kind is str:
        budget.spend(nbytes=len(data))
        return data
    if kind is dict:
        return _decode_kind(data, budget, depth)
    raise BadObservation(tr("a {type} where a value was expected", type=kind.__name__))


def loads(text: bytes | str, budget: Budget) -> object:
    """JSON text parsed into data for :func:`decode`. The text may be at most about twice
    ``budget.max_bytes`` long and hold at most 4 brackets and 8 commas per value the budget
    allows (so that parsing cannot build far more objects than decoding would accept);
    longer, too deeply nested or malformed text raises :class:`BadObservation`."""
    if not isinstance(text, str | bytes | bytearray):
        raise BadObservation(tr("the observations are not text"))
    if len(text) > 2 * budget.max_bytes + (1 << 20):
        raise BadObservation(tr("the observations are longer than {limit:,} bytes",
                                limit=2 * budget.max_bytes))
    marks = ("[", "{", ",") if isinstance(text, str) else (b"[", b"{", b",")
    if text.count(marks[0]) + text.count(marks[1]) > 4 * budget.max_items \
            or text.count(marks[2]) > 8 * budget.max_items:
        raise BadObservation(tr("the observations hold far more than {limit:,} values",
                                limit=budget.max_items))
    try:
        return json.loads(text)
    except RecursionError:
        raise BadObservation(tr("the observations are nested too deeply")) from None
    except ValueError as error:  # JSONDecodeError, bad UTF-8, an int too long to read
        raise BadObservation(tr("the observations are not valid JSON: {error}",
                                error=one_line(str(error)))) from None


# ---- the state of arguments after a call -----------------------------------------------------

def _is_tensor(value: object) -> bool:
    return type(value) in (torch.Tensor, nn.Parameter)


def _is_plain(value: object, depth: int = 0) -> bool:
    """True for data that can travel as a value: scalars, strings, numpy data, and containers
    of those (tensors and modules are state, not values)."""
    kind = type(value)
    if value is None or kind in (bool, int, float, str, bytes, complex, torch.Size,
                                 torch.dtype, np.ndarray) or kind in _NUMPY_SCALARS:
        return kind is not np.ndarray or value.dtype.name in NUMPY_DTYPES
    if depth > 16:
        return False
    if kind in (list, tuple, set, frozenset):
        return all(_is_plain(item, depth + 1) for item in value)
    if kind in (dict, OrderedDict):
        return all(_is_plain(k, depth + 1) and _is_plain(v, depth + 1) for k, v in value.items())
    return False


def plain_attributes(module: nn.Module) -> dict[str, object]:
    """A module's own attributes whose values are bool, int, float, str or None (not the
    private ones and not ``training``)."""
    return {key: value for key, value in vars(module).items()
            if type(key) is str and not key.startswith("_") and key != "training"
            and type(value) in _PLAIN_SCALARS}


def _is_scheduler(value: object) -> bool:
    lr = torch.optim.lr_scheduler
    return isinstance(value, lr.LRScheduler | lr.ReduceLROnPlateau)


def capture_state(value: object, _depth: int = 0) -> object | None:
    """What a call may have changed in argument ``value``, as data for :func:`encode`:
    a tensor's values and gradient; a module's parameters, buffers, gradients, training
    flags and plain attributes; an optimizer's or LR scheduler's ``state_dict()``; the items
    of a list, tuple or dict (each captured the same way, plain items as values). ``None``
    when there is nothing to replay."""
    if _depth > 32:
        raise BadObservation(tr("an argument nests containers more than 32 levels deep"))
    if _is_tensor(value):
        return {"kind": "tensor_state", "value": value}
    if isinstance(value, nn.Module):
        tensors = dict(value.named_parameters())
        tensors.update(value.named_buffers())
        modules = {name: {"training": bool(module.training),
                          "attrs": plain_attributes(module)}
                   for name, module in value.named_modules()}
        return {"kind": "module_state", "tensors": tensors, "modules": modules}
    if isinstance(value, torch.optim.Optimizer):
        return {"kind": "optimizer_state", "state_dict": value.state_dict()}
    if _is_scheduler(value):
        return {"kind": "scheduler_state", "state_dict": value.state_dict()}
    if type(value) in (list, tuple):
        kind = "list_state" if type(value) is list else "tuple_state"
        return {"kind": kind, "items": [_capture_item(item, _depth) for item in value]}
    if type(value) in (dict, OrderedDict):
        return {"kind": "dict_state",
                "entries": [(key, _capture_item(item, _depth)) for key, item in value.items()
                            if _is_plain(key)]}
    return None


def _capture_item(item: object, depth: int) -> object | None:
    if _is_plain(item):
        return {"kind": "value", "value": item}
    return capture_state(item, depth + 1)


def _state_kind(data: object) -> str:
    if type(data) is not dict or type(data.get("kind")) is not str:
        raise BadObservation(tr("an argument's state is not a record with a kind"))
    return data["kind"]


def apply_state(target: object, data: object, budget: Budget, _depth: int = 0) -> None:
    """Put the state that :func:`capture_state` recorded in the sandbox (as decoded by
    :func:`decode`) into the judge's own equivalent object ``target``, in place.

    Raises :class:`BadObservation` when the data does not fit ``target``: another kind of
    object, other parameter names, shapes or dtypes, other submodules, a tensor that changed
    shape."""
    if _depth > 32:
        raise BadObservation(tr("an argument's state nests more than 32 levels deep"))
    kind = _state_kind(data)
    appliers: dict[str, Callable[[Any, dict, Budget, int], None]] = {
        "tensor_state": _apply_tensor, "module_state": _apply_module,
        "optimizer_state": _apply_optimizer, "scheduler_state": _apply_scheduler,
        "list_state": _apply_sequence, "tuple_state": _apply_sequence,
        "dict_state": _apply_dict}
    if kind not in appliers:
        raise BadObservation(tr("unknown kind of state {kind!r}", kind=kind[:40]))
    appliers[kind](target, data, budget, _depth)


def _copy_tensor(target: object, new: object, what: str) -> None:
    """Copy tensor ``new`` (values, requires_grad, gradient) into tensor ``target``."""
    what = translated(what)
    if not _is_tensor(target):
        raise BadObservation(tr("{what} is a tensor in the sandbox but a {type} here",
                                what=what, type=type(target).__name__))
    if not _is_tensor(new):
        raise BadObservation(tr("{what} is not a tensor in the recorded state", what=what))
    if new.shape != target.shape or new.dtype != target.dtype:
        raise BadObservation(tr("{what} changed from {old_dtype} {old_shape} to {new_dtype} "
                                "{new_shape}", what=what, old_dtype=target.dtype,
                                old_shape=tuple(target.shape), new_dtype=new.dtype,
                                new_shape=tuple(new.shape)))
    try:
        with torch.no_grad():
            target.copy_(new)
        if not target.is_leaf:
            return
        if target.requires_grad != new.requires_grad:
            target.requires_grad_(new.requires_grad)
        target.grad = new.grad
    except RuntimeError as error:
        raise BadObservation(tr("{what} cannot take the recorded state: {error}", what=what,
                                error=one_line(str(error)))) from None


def _apply_tensor(target: object, data: dict, budget: Budget, depth: int) -> None:
    _copy_tensor(target, _fields(data, N_("a tensor's state"), ("kind", "value"))["value"],
                 N_("the tensor"))


def _dict_of(value: object, what: str) -> dict:
    if type(value) is not dict:
        raise BadObservation(tr("{what} is not a dict", what=translated(what)))
    return value


def _apply_module(target: object, data: dict, budget: Budget, depth: int) -> None:
    fields = _fields(data, N_("a module's state"), ("kind", "tensors", "modules"))
    if not isinstance(target, nn.Module):
        raise BadObservation(tr("the argument is a module in the sandbox but a {type} here",
                                type=type(target).__name__))
    own = dict(target.named_parameters())
    own.update(target.named_buffers())
    tensors = _dict_of(fields["tensors"], N_("a module's tensors"))
    if set(tensors) != set(own):
        raise BadObservation(tr("the module's parameters and buffers differ: {names}",
                                names=sorted(map(str, set(tensors) ^ set(own)))[:5]))
    modules = dict(target.named_modules())
    states = _dict_of(fields["modules"], N_("a module's submodules"))
    if set(states) != set(modules):
        raise BadObservation(tr("the module's submodules differ: {names}",
                                names=sorted(map(str, set(states) ^ set(modules)))[:5]))
    for name, tensor in tensors.items():
        _copy_tensor(own[name], tensor, f"{name!r}")
    for name, state in states.items():
        state = _fields(state, tr("the state of submodule {name!r}", name=name),
                        ("training", "attrs"))
        module = modules[name]
        module.training = _bool(state["training"], N_("a training flag"))
        set_plain_attributes(module, _dict_of(state["attrs"], N_("a module's attributes")))


def set_plain_attributes(module: nn.Module, attrs: dict) -> None:
    """Set plain-data attributes on ``module``; names must be public identifiers that are
    not parameters, buffers, submodules or attributes of the module's class."""
    for key, value in attrs.items():
        if type(key) is not str or not key.isidentifier() or key.startswith("_") \
                or key == "training" or len(key) > 100:
            raise BadObservation(tr("{name!r} is not an attribute name a module's plain data "
                                    "may use", name=str(key)[:40]))
        if type(value) not in _PLAIN_SCALARS:
            raise BadObservation(tr("attribute {name!r} is a {type}, not plain data",
                                    name=key, type=type(value).__name__))
        if key in module._parameters or key in module._buffers or key in module._modules:
            raise BadObservation(tr("attribute {name!r} is a parameter, buffer or submodule",
                                    name=key))
        if key in vars(module) or not hasattr(type(module), key):
            vars(module)[key] = value


def _like(new: object, old: object, what: str) -> object:
    """``new`` checked to have the structure of ``old`` (same containers, keys and lengths,
    tensors of the same shape and dtype, scalars for scalars); where ``old`` holds something
    that is not data (a function), ``old`` is kept."""
    what = translated(what)
    if type(old) in _PLAIN_SCALARS:
        if type(new) not in _PLAIN_SCALARS:
            raise BadObservation(tr("{what} is a {type}, expected plain data", what=what,
                                    type=type(new).__name__))
        return new
    if _is_tensor(old):
        if not _is_tensor(new) or new.shape != old.shape or new.dtype != old.dtype:
            raise BadObservation(tr("{what} is not a {dtype} tensor of shape {shape}",
                                    what=what, dtype=old.dtype, shape=tuple(old.shape)))
        return new
    if type(old) in (list, tuple):
        if type(new) is not type(old) or len(new) != len(old):
            raise BadObservation(tr("{what} is not a {type} of {count} items", what=what,
                                    type=type(old).__name__, count=len(old)))
        return type(old)(_like(n, o, f"{what}[{i}]") for i, (n, o) in
                         enumerate(zip(new, old, strict=True)))
    if isinstance(old, dict):
        if type(new) is not dict or set(new) != set(old):
            raise BadObservation(tr("{what} does not have the keys {keys}", what=what,
                                    keys=sorted(map(str, old))[:8]))
        return {key: _like(new[key], value, f"{what}[{key!r}]") for key, value in old.items()}
    return old


def _apply_optimizer(target: object, data: dict, budget: Budget, depth: int) -> None:
    if not isinstance(target, torch.optim.Optimizer):
        raise BadObservation(tr("the argument is an optimizer in the sandbox but a {type} "
                                "here", type=type(target).__name__))
    new = _dict_of(_fields(data, N_("an optimizer's state"),
                           ("kind", "state_dict"))["state_dict"],
                   N_("an optimizer's state_dict"))
    old = target.state_dict()
    if set(new) != {"state", "param_groups"}:
        raise BadObservation(tr("an optimizer's state_dict has other keys than state and "
                                "param_groups"))
    groups = _like(new["param_groups"], old["param_groups"], N_("the parameter groups"))
    for group, old_group in zip(groups, old["param_groups"], strict=True):
        if type(group["params"]) is not list or group["params"] != old_group["params"] \
                or any(type(i) is not int for i in group["params"]):
            raise BadObservation(tr("the parameter groups hold other parameters"))
    params = [p for group in target.param_groups for p in group["params"]]
    state = _dict_of(new["state"], N_("an optimizer's per-parameter state"))
    for index, entries in state.items():
        if type(index) is not int or not 0 <= index < len(params):
            raise BadObservation(tr("optimizer state for parameter {index}, which does not "
                                    "exist", index=str(index)[:20]))
        for key, value in _dict_of(entries, N_("a parameter's optimizer state")).items():
            fits = (type(value) in _PLAIN_SCALARS or type(value) is torch.Tensor and
                    value.shape in (torch.Size(), params[index].shape))
            if type(key) is not str or not fits:
                raise BadObservation(tr("optimizer state {key!r} of parameter {index} is "
                                        "neither a number nor a tensor of its shape",
                                        key=str(key)[:40], index=index))
    try:
        target.load_state_dict({"state": state, "param_groups": groups})
    except Exception as error:  # noqa: BLE001 - torch's own checks
        raise BadObservation(tr("the optimizer's state does not load: {error}",
                                error=one_line(str(error)))) from None


def _apply_scheduler(target: object, data: dict, budget: Budget, depth: int) -> None:
    if not _is_scheduler(target):
        raise BadObservation(tr("the argument is an LR scheduler in the sandbox but a {type} "
                                "here", type=type(target).__name__))
    new = _fields(data, N_("a scheduler's state"), ("kind", "state_dict"))["state_dict"]
    merged = _like(new, target.state_dict(), N_("the scheduler's state"))
    try:
        target.load_state_dict(merged)
    except Exception as error:  # noqa: BLE001
        raise BadObservation(tr("the scheduler's state does not load: {error}",
                                error=one_line(str(error)))) from None


def _item_value(state: dict) -> object:
    """The new value of a container's item: a plain value, or a fresh tensor."""
    kind = _state_kind(state)
    if kind == "value":
        return _fields(state, N_("an item's value"), ("kind", "value"))["value"]
    if kind == "tensor_state":
        value = _fields(state, N_("a tensor's state"), ("kind", "value"))["value"]
        if not _is_tensor(value):
            raise BadObservation(tr("a tensor's state holds no tensor"))
        return value
    if kind in ("list_state", "tuple_state"):   # a new container, e.g. Adam's moments
        items = _fields(state, N_("a list's state"), ("kind", "items"))["items"]
        if type(items) is not list or any(item is None for item in items):
            raise BadObservation(tr("a new list holds items that cannot be rebuilt"))
        values = [_item_value(item) for item in items]
        return values if kind == "list_state" else tuple(values)
    if kind == "dict_state":
        entries = _fields(state, N_("a dict's state"), ("kind", "entries"))["entries"]
        if type(entries) is not list or any(type(e) is not tuple or len(e) != 2 or e[1] is None
                                            for e in entries):
            raise BadObservation(tr("a new dict holds items that cannot be rebuilt"))
        return {_hashable(key, N_("a dict key")): _item_value(item) for key, item in entries}
    raise BadObservation(tr("a container changed its items, and a new item is neither plain "
                            "data, a tensor, nor a list or dict of them"))


def _apply_item(container: Any, key: object, state: object, budget: Budget,
                depth: int) -> None:
    """Put one item's recorded state into ``container[key]``."""
    if state is None:
        return
    kind = _state_kind(state)
    current = container[key]
    if kind == "value" or kind == "tensor_state" and not (
            _is_tensor(current) and _is_tensor(state.get("value"))
            and current.shape == state["value"].shape and current.dtype == state["value"].dtype):
        container[key] = _item_value(state)
    else:
        apply_state(current, state, budget, depth + 1)


def _apply_sequence(target: object, data: dict, budget: Budget, depth: int) -> None:
    kind = _fields(data, N_("a list's state"), ("kind", "items"))["kind"]
    items = data["items"]
    if type(items) is not list:
        raise BadObservation(tr("a list's items are not a list"))
    expected = list if kind == "list_state" else tuple
    if type(target) is not expected:
        raise BadObservation(tr("the argument is a {expected} in the sandbox but a {type} "
                                "here", expected=expected.__name__,
                                type=type(target).__name__))
    if type(target) is tuple:
        if len(items) != len(target):
            raise BadObservation(tr("a tuple of {count} items has {recorded} in the recorded "
                                    "state", count=len(target), recorded=len(items)))
        for item, state in zip(target, items, strict=True):
            if state is not None and _state_kind(state) != "value":
                apply_state(item, state, budget, depth + 1)
        return
    common = min(len(items), len(target))
    for index in range(common):
        _apply_item(target, index, items[index], budget, depth)
    del target[common:]
    target.extend(_item_value(state) for state in items[common:])


def _apply_dict(target: object, data: dict, budget: Budget, depth: int) -> None:
    entries = _fields(data, N_("a dict's state"), ("kind", "entries"))["entries"]
    if type(target) not in (dict, OrderedDict):
        raise BadObservation(tr("the argument is a dict in the sandbox but a {type} here",
                                type=type(target).__name__))
    if type(entries) is not list or any(type(e) is not tuple or len(e) != 2 for e in entries):
        raise BadObservation(tr("a dict's entries are not (key, state) pairs"))
    keys = {_hashable(key, N_("a dict key")) for key, _ in entries}
    for key in [key for key in target if key not in keys]:
        del target[key]
    for key, state in entries:
        if key in target:
            _apply_item(target, key, state, budget, depth)
        elif state is not None:
            target[key] = _item_value(state)


# ---- exceptions ------------------------------------------------------------------------------

EXCEPTION_TYPES: dict[str, type[Exception]] = {cls.__name__: cls for cls in (
    TypeError, ValueError, RuntimeError, IndexError, KeyError, AttributeError,
    NotImplementedError, ZeroDivisionError, AssertionError, RecursionError, MemoryError,
    OverflowError, ArithmeticError, LookupError, NameError, UnboundLocalError, StopIteration,
    FloatingPointError, ImportError, ModuleNotFoundError, OSError, TimeoutError,
    UnicodeError, Exception)}


def _where(error: BaseException) -> str:
    """``"in NAME, line N"`` for the innermost traceback frame in the learner's code."""
    from cnn_course.checks.core import _is_learner_file
    try:
        frames = [f for f in traceback.extract_tb(error.__traceback__)
                  if _is_learner_file(f.filename)]
    except Exception:  # noqa: BLE001
        return ""
    if not frames:
        return ""
    return tr("in {function}, line {line}", function=frames[-1].name,
              line=frames[-1].lineno)[:200]


def encode_exception(error: BaseException) -> dict:
    """What the judge needs to raise the same failure again: the type's name, the nearest
    standard base class, the message (``str(error)``, computed safely), whether it is one of
    the checkers' own failures, and where in the learner's code it happened."""
    from cnn_course.checks.core import CaseFailed, MethodViolation
    kind = type(error)
    base = next((cls.__name__ for cls in kind.__mro__
                 if EXCEPTION_TYPES.get(cls.__name__) is cls), "Exception")
    case_failed = issubclass(kind, CaseFailed)
    diagnosed = vars(error).get("diagnosed", False) if case_failed else False
    return {"type": _type_name(error), "base": base,
            "message": safe_text(lambda: str(error), MAX_TEXT),
            "case_failed": case_failed, "diagnosed": diagnosed is True,
            "method_violation": issubclass(kind, MethodViolation),
            "not_implemented": issubclass(kind, NotImplementedError),
            "where": _where(error)}


@functools.lru_cache(maxsize=256)
def _exception_class(name: str, base: type[Exception]) -> type[Exception]:
    """An exception class named ``name`` deriving from ``base`` whose ``str()`` is the
    message it was made with (KeyError's own ``str()`` would quote it)."""
    def __str__(self: BaseException) -> str:
        return str(self.args[0]) if self.args else ""
    return type(name, (base,), {"__str__": __str__, "__qualname__": name,
                                "__module__": "learner"})


def decode_exception(data: object, budget: Budget) -> BaseException:
    """The exception :func:`encode_exception` recorded, rebuilt without learner code: a
    checker's ``CaseFailed``/``MethodViolation``, a standard exception of the same type, or an
    ``Exception`` subclass of the recorded name and base; its ``__learner_where__`` names the
    place in the learner's code."""
    from cnn_course.checks.core import CaseFailed, MethodViolation
    fields = _fields(data, N_("an exception"), ("type", "base", "message", "case_failed",
                                                "diagnosed", "method_violation",
                                                "not_implemented", "where"))
    name = sanitize_name(_str(fields["type"], N_("the exception's type"), 200), "Exception")
    base = EXCEPTION_TYPES.get(_str(fields["base"], N_("the exception's base"), 40))
    if base is None:
        raise BadObservation(tr("unknown exception base {base!r}", base=fields["base"]))
    message = _str(fields["message"], N_("the exception's message"), MAX_TEXT)
    budget.spend(items=1, nbytes=len(message))
    where = _str(fields["where"], N_("the place of the exception"), 200)
    if _bool(fields["method_violation"], N_("the method-violation flag")):
        error: BaseException = MethodViolation(message)
    elif _bool(fields["case_failed"], N_("the case-failed flag")):
        error = CaseFailed(message, _bool(fields["diagnosed"], N_("the diagnosed flag")))
    elif _bool(fields["not_implemented"], N_("the not-implemented flag")) \
            and not issubclass(base, NotImplementedError):
        raise BadObservation(tr("an exception is marked NotImplementedError but its base is "
                                "not"))
    elif EXCEPTION_TYPES.get(name) is base and base is not KeyError:
        error = base(message)
    else:
        error = _exception_class(name, base)(message)
    error.__learner_where__ = one_line(where)
    return error
