"""The grading worker: runs one submission's cells, then the grader's own checks.

It runs in a fresh Python process started by :mod:`cnn_course.grading.runner`, which loads
the course package from the snapshot taken when grading started (see
:mod:`cnn_course.grading.snapshot`). The worker reports to the grader on its own pipe, one
JSON object per line; the learner's output goes to stdout and stderr, which the grader caps.

Order of events:

1. Import torch and the modules the chapter's solution imports (so that the time limit of
   the first cell measures the learner's code, not library imports). Then, before any of the
   learner's code runs, take what the checks will need and keep it out of the learner's
   reach: private references to the functions the worker calls, an immutable copy of the
   course package's source, and a record (:func:`_record`, plain tuples) of what the
   learner's code could change where the checks would notice: every function, class and
   submodule bound in the modules of PyTorch, NumPy and the standard library that the checks
   rely on, the classes the checkers name (found by loading a throwaway copy of them), the
   code of every function in them, the import system (``sys.meta_path``, ``sys.path_hooks``,
   ``sys.path``, ``sys.modules``) and the worker's own namespace. Forget every ``cnn_course``
   module.
2. Run the submission's code cells in an IPython shell, in their order, each under a time
   limit, skipping the cells tagged ``check``. Stored outputs are never read.
3. Put back everything recorded (and tell the grader what had changed), clear PyTorch's
   function and dispatch modes, global module hooks and saved-tensor hooks, reset grad mode,
   the default dtype and trace hooks. Load the checker modules from the immutable copy into a
   table of modules of their own (:class:`_CheckerPackage`): never through ``sys.modules``,
   ``sys.meta_path`` or ``importlib``, and with builtins of their own. Then run each
   exercise's visible and hidden cases on the learner's answer, each under a time limit.
   While an exercise is checked, the course's own answer to it (the function of the same name
   in the learner's ``cnn_course.reference``) is made to fail if the learner's code calls it,
   and what the learner's function returns is turned into exact built-in types (no tensor,
   int or tuple subclass that fakes comparisons), whether the answer is a function or another
   callable object. After each set of cases, everything recorded, the checker modules
   included, is compared and put back: an answer whose code changed any of it (or left a
   trace hook on) while it was checked fails.

What a process cannot defend against, code that reaches the worker's own objects through
frames or the garbage collector while it runs, is described on the instructors' page.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import gc
import importlib
import importlib.machinery
import json
import os
import signal
import sys
import time
import types
from collections.abc import Callable, Iterator

# Modules whose every name is put back after the learner's cells, data included.
_FULLY_GUARDED = ("builtins", "math", "numpy", "torch", "torch.nn", "torch.nn.functional",
                  "torch.nn.init", "torch.linalg", "torch.autograd", "torch.optim",
                  "torch.testing", "importlib", "importlib._bootstrap",
                  "importlib._bootstrap_external", "importlib.machinery", "importlib.util")
# Packages (with all their loaded submodules) whose functions, classes and submodules are put
# back, and whose functions' code is put back: what the checks use, directly or through
# PyTorch, and what the worker itself uses.
_GUARDED_ROOTS = frozenset({
    "builtins", "math", "cmath", "numpy", "torch", "torchvision", "importlib",
    "_frozen_importlib", "_frozen_importlib_external", "sys", "os", "posixpath", "io", "json",
    "copy", "copyreg", "contextlib", "functools", "itertools", "operator", "collections",
    "_collections_abc", "dataclasses", "traceback", "linecache", "sysconfig", "warnings",
    "numbers", "typing", "types", "abc", "enum", "re", "pathlib", "inspect", "signal", "time",
    "random", "weakref", "gc"})
# PyTorch's global module hooks (``register_module_forward_hook`` and the like).
_HOOK_MODULE = "torch.nn.modules.module"
_MESSAGE_LIMIT = 300
_PACKAGE = "cnn_course"
_REFERENCE = "cnn_course.reference"
_CHECKS = "cnn_course.checks"
_MISSING = object()
_CACHES = frozenset({"__slotnames__"})   # class attributes Python adds by itself (copyreg)
_DESCRIPTORS = (staticmethod, classmethod, property, types.ModuleType,
                types.GetSetDescriptorType, types.MemberDescriptorType)


class CellTimeout(BaseException):
    """Raised in the learner's code when its time is up (a BaseException, so that
    ``except Exception`` in the learner's code does not swallow it)."""


class _Alarm:
    """A wall-clock limit that interrupts Python code with :class:`CellTimeout`."""

    def __init__(self) -> None:
        self.armed = False
        # Private references: the learner's code may rebind signal's functions.
        self._signal, self._setitimer = signal.signal, signal.setitimer

    def _fire(self, signum, frame) -> None:
        if self.armed:
            # Fire again soon, in case the code caught this one and carried on.
            self._setitimer(signal.ITIMER_REAL, 0.5)
            raise CellTimeout()

    def start(self, seconds: float) -> None:
        self._signal(signal.SIGALRM, self._fire)
        self.armed = True
        self._setitimer(signal.ITIMER_REAL, max(seconds, 0.01))

    def stop(self) -> None:
        self.armed = False
        self._setitimer(signal.ITIMER_REAL, 0)

    def call(self, seconds: float, fn: Callable[[], object]) -> object:
        self.start(seconds)
        try:
            return fn()
        finally:
            self.stop()


def _one_line(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def describe_error(error: BaseException, alarm: _Alarm) -> str:
    """``"ValueError: message"`` in one line; the learner's ``__str__`` runs under a limit."""
    name = type(error).__name__
    if isinstance(error, SyntaxError):
        return _one_line(f"{name}: {error.msg} (line {error.lineno})")
    try:
        message = str(alarm.call(2.0, lambda: str(error)))
    except BaseException:  # noqa: BLE001 - the learner's __str__ may do anything
        message = "(its message could not be shown)"
    return _one_line(f"{name}: {message}" if message else name)


def _is_memory_error(error: BaseException) -> bool:
    text = str(error) if isinstance(error, RuntimeError) else ""
    return isinstance(error, MemoryError) or "can't allocate memory" in text \
        or "DefaultCPUAllocator" in text


# ---- what the learner's code could change, recorded and put back -----------------------------

def _is_code(value: object) -> bool:
    """Functions, classes, modules and descriptors: what a monkey patch replaces. (type() and
    callable() only: some module attributes warn when their ``__class__`` is read.)"""
    return callable(value) or type(value) in _DESCRIPTORS


def _is_class(value: object) -> bool:
    return issubclass(type(value), type)


def _root(name: str) -> str:
    return name.partition(".")[0]


def _function_state(fn: types.FunctionType) -> tuple:
    closure = fn.__closure__
    cells = () if closure is None else tuple((cell, cell.cell_contents) for cell in closure
                                             if _cell_holds_code(cell))
    return (fn, fn.__code__, fn.__defaults__, fn.__kwdefaults__, cells)


def _cell_holds_code(cell) -> bool:
    try:
        return _is_code(cell.cell_contents)
    except ValueError:   # an empty cell
        return False


def _functions_in(values) -> Iterator[types.FunctionType]:
    for value in values:
        kind = type(value)
        if kind is types.FunctionType:
            yield value
        elif kind in (staticmethod, classmethod):
            if type(value.__func__) is types.FunctionType:
                yield value.__func__
        elif kind is property:
            yield from (f for f in (value.fget, value.fset, value.fdel)
                        if type(f) is types.FunctionType)


def _classes_in(namespaces) -> list[type]:
    """The classes bound in ``namespaces`` (dicts), with every class they derive from."""
    found: dict[int, type] = {}
    for namespace in namespaces:
        for value in list(namespace.values()):
            if _is_class(value):
                for cls in type.__dict__["__mro__"].__get__(value):
                    found.setdefault(id(cls), cls)
    return list(found.values())


def _record(namespaces: list[tuple[str, dict, bool]], classes: list[type],
            full_classes: tuple = (), functions: tuple = (), contents: bool = False) -> tuple:
    """A record of ``namespaces`` (label, dict, every name or only the code?), of
    ``classes`` (every attribute of ``full_classes``, the code of the others), and of the code
    of every function in them (and of ``functions``), to compare and put back later. With
    ``contents``, the items of the plain dicts bound in the namespaces recorded in full are
    recorded too (a checker's ``EXERCISES``).

    Plain tuples all the way down, so that code that finds the record (through the garbage
    collector) cannot change what it says; the objects in it are compared by identity.
    """
    saved_namespaces, found = [], {id(fn): fn for fn in functions}
    for label, namespace, every in namespaces:
        items = tuple((k, v) for k, v in namespace.items() if every or _is_code(v))
        saved_namespaces.append((label, namespace, items))
        for fn in _functions_in(v for _, v in items):
            found[id(fn)] = fn
    full_ids = {id(cls) for cls in full_classes}
    saved_classes = []
    for cls in classes:
        flags = type.__dict__["__flags__"].__get__(cls)
        if not flags & (1 << 9) or flags & (1 << 8):   # not a heap type, or immutable
            continue
        own = dict(vars(cls))
        every = id(cls) in full_ids
        saved_classes.append((cls, every, tuple((k, v) for k, v in own.items()
                                                if every or _is_code(v)), frozenset(own)))
        for fn in _functions_in(own.values()):
            found[id(fn)] = fn
    containers = tuple((label, value, tuple(value.items()))
                       for label, namespace, every in namespaces if every and contents
                       for key, value in namespace.items()
                       if type(value) is dict and not key.startswith("__"))
    return (tuple(saved_namespaces), tuple(saved_classes),
            tuple(_function_state(fn) for fn in found.values()), containers)


def _join(*records: tuple) -> tuple:
    return tuple(tuple(item for record in records for item in record[part])
                 for part in range(4))


def _wraps(new: object, old: object, library: str) -> bool:
    """True if ``new`` is a wrapper that PyTorch itself put around ``old``, as importing
    ``torch._dynamo`` does to ``torch.manual_seed`` and the first optimizer of a class does to
    its ``step``: a function of the library's own files whose ``__wrapped__`` is ``old``."""
    return type(new) is types.FunctionType and new.__code__.co_filename.startswith(library) \
        and vars(new).get("__wrapped__") is old


def _inherited(cls: type, key: str) -> object:
    """What ``cls`` would inherit as ``key`` from its bases."""
    for base in type.__dict__["__mro__"].__get__(cls)[1:]:
        own = type.__dict__["__dict__"].__get__(base)
        if key in own:
            return own[key]
    return None


def _put_back(record: tuple, changed: list[str], library: str = "\0",
              _missing: object = _MISSING) -> None:
    """Put back everything ``record`` holds that differs now; name what did in ``changed``,
    except PyTorch's own wrappers (see :func:`_wraps`) of functions in files under
    ``library``.

    The namespaces come first, in order: builtins and the worker's own before the rest, so
    that what this function calls is the original by the time it calls it.
    """
    namespaces, classes, functions, containers = record
    for label, namespace, items in namespaces:
        for key, value in items:
            now = namespace.get(key, _missing)
            if now is not value:
                namespace[key] = value
                if not _wraps(now, value, library):
                    changed.append(label + "." + key)
    for cls, every, items, keys in classes:
        own = vars(cls)
        for key, value in items:
            now = own.get(key, _missing)
            if now is not value:
                with contextlib.suppress(AttributeError, TypeError):
                    type.__setattr__(cls, key, value)
                    if not _wraps(now, value, library):
                        changed.append(f"{cls.__qualname__}.{key}")
        for key in [k for k in own if k not in keys and k not in _CACHES]:
            now = own[key]
            if every or _is_code(now):
                with contextlib.suppress(AttributeError, TypeError):
                    type.__delattr__(cls, key)
                    if not _wraps(now, _inherited(cls, key), library):
                        changed.append(f"{cls.__qualname__}.{key}")
    for fn, code, defaults, kwdefaults, cells in functions:
        if fn.__code__ is not code or fn.__defaults__ is not defaults \
                or fn.__kwdefaults__ is not kwdefaults:
            fn.__code__, fn.__defaults__, fn.__kwdefaults__ = code, defaults, kwdefaults
            changed.append(f"the code of {fn.__qualname__}")
        for cell, contents in cells:
            try:
                same = cell.cell_contents is contents
            except ValueError:
                same = False
            if not same:
                cell.cell_contents = contents
                changed.append(f"the code of {fn.__qualname__}")
    for label, container, items in containers:
        if len(container) != len(items) or any(container.get(k, _missing) is not v
                                               for k, v in items):
            container.clear()
            container.update(items)
            changed.append(f"the contents of a dict in {label}")


def _same_sources(finder, sources: tuple) -> bool:
    """True if ``finder`` still holds exactly ``sources`` (compared as exact strings, so that
    no ``__eq__`` of the learner's runs)."""
    held = vars(finder).get("sources")
    return type(held) is dict and len(held) == len(sources) and all(
        type(held.get(key)) is str and str.__eq__(held[key], text) for key, text in sources)


def _record_importing() -> tuple:
    """The import system as it is: the lists and their contents, and every module in
    ``sys.modules`` but the course's own."""
    return (sys.meta_path, tuple(sys.meta_path), sys.path_hooks, tuple(sys.path_hooks),
            sys.path, tuple(sys.path),
            tuple((name, module) for name, module in sys.modules.items()
                  if _root(name) != _PACKAGE))


def _same(current: list, items: tuple) -> bool:
    """Element by element identity (never the elements' own ``__eq__``)."""
    return len(current) == len(items) and all(a is b for a, b in zip(current, items, strict=True))


def _put_back_importing(saved: tuple, old_finder, new_finder, changed: list[str],
                        modules: dict) -> None:
    """Restore the import system recorded by :func:`_record_importing`, with ``new_finder``
    in the place of ``old_finder`` (both serve the course package from its source)."""
    meta_path, meta_items, path_hooks, hook_items, path, path_items, saved_modules = saved
    for name, value in (("meta_path", meta_path), ("path_hooks", path_hooks), ("path", path)):
        if getattr(sys, name, None) is not value:
            setattr(sys, name, value)
            changed.append(f"sys.{name}")
    expected = tuple(new_finder if f is old_finder else f for f in meta_items)
    if not _same(meta_path, meta_items) and not _same(meta_path, expected):
        changed.append("sys.meta_path")
    meta_path[:] = expected
    for current, items, name in ((path_hooks, hook_items, "path_hooks"),
                                 (path, path_items, "path")):
        if not _same(current, items):
            current[:] = items
            changed.append(f"sys.{name}")
    sys.path_importer_cache.clear()
    for name, module in saved_modules:
        if modules.get(name) is not module:
            modules[name] = module
            changed.append(f"sys.modules[{name!r}]")


def _global_hooks() -> tuple:
    """PyTorch's global module hooks (``register_module_forward_hook`` and the like): each
    dict, and the keys it has now."""
    module = sys.modules.get(_HOOK_MODULE)
    return tuple((name, value, tuple(value)) for name, value in
                 sorted(vars(module).items() if module else ())
                 if name.startswith("_global_") and isinstance(value, dict))


def _reset_torch(torch, hooks: tuple, default_dtype, threads: int, changed: list[str]) -> None:
    """Clear the modes and hooks a learner may have left behind; reset global settings."""
    C = torch._C
    for _ in range(100):
        if not C._len_torch_function_stack():
            break
        C._pop_torch_function_stack()
        changed.append("a torch function mode (TorchFunctionMode)")
    for _ in range(100):
        if not C._len_torch_dispatch_stack():
            break
        C._pop_torch_dispatch_stack(None)
        changed.append("a torch dispatch mode (TorchDispatchMode)")
    for key in C._TorchDispatchModeKey.__members__.values():
        with contextlib.suppress(Exception):
            if C._get_dispatch_mode(key) is not None:
                C._unset_dispatch_mode(key)
                changed.append("a torch dispatch mode (TorchDispatchMode)")
    for _ in range(100):
        if C._autograd._top_saved_tensors_default_hooks(True) is None:
            break
        C._autograd._pop_saved_tensors_default_hooks()
        changed.append("saved-tensor hooks (torch.autograd.graph.saved_tensors_hooks)")
    for name, hooks_now, keys in hooks:
        for key in [k for k in hooks_now if k not in keys]:
            hooks_now.pop(key, None)
            changed.append(f"{_HOOK_MODULE}.{name}")
    with contextlib.suppress(Exception):
        if torch.is_autocast_enabled("cpu"):
            torch.set_autocast_enabled("cpu", False)
            changed.append("autocast")
    if torch.is_anomaly_enabled():
        torch.autograd.set_detect_anomaly(False)
    torch.set_grad_enabled(True)
    torch.set_default_dtype(default_dtype)
    if hasattr(torch, "set_default_device"):
        torch.set_default_device(None)
    torch.set_num_threads(threads)


# ---- the checkers' own copy of the course package -------------------------------------------

def _source_key(sources: dict, fullname: str) -> tuple[str | None, bool]:
    base = fullname.replace(".", "/")
    if base + "/__init__.py" in sources:
        return base + "/__init__.py", True
    if base + ".py" in sources:
        return base + ".py", False
    return None, False


class _CheckerPackage:
    """The course package for the checkers alone, loaded from an immutable copy of its source.

    Its modules live in a table of their own, not in ``sys.modules``; an import of a course
    module inside them (at the top of a checker or inside one of its functions) is answered
    from that table, through builtins of their own, so that nothing the learner's code did to
    ``sys.modules``, ``sys.meta_path``, ``importlib``, ``builtins`` or its own course modules
    reaches the checks.
    """

    def __init__(self, sources: tuple, root: str, builtin_items: tuple, real_import,
                 compile_, exec_, module_spec) -> None:
        self.sources = dict(sources)
        self.root = root
        self.modules: dict[str, types.ModuleType] = {}
        self.builtins = dict(builtin_items)
        self.builtins["__import__"] = self._import
        self._real_import, self._compile, self._exec = real_import, compile_, exec_
        self._spec = module_spec

    def load(self, fullname: str) -> types.ModuleType:
        if fullname in self.modules:
            return self.modules[fullname]
        parent, _, child = fullname.rpartition(".")
        parent_module = self.load(parent) if parent else None
        if fullname in self.modules:   # the parent's own code imported it
            return self.modules[fullname]
        key, is_package = _source_key(self.sources, fullname)
        if key is None:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        origin = os.path.join(self.root, key)
        module = types.ModuleType(fullname)
        spec = self._spec(fullname, None, origin=origin, is_package=is_package)
        spec.has_location = True
        module.__spec__, module.__file__, module.__loader__ = spec, origin, None
        module.__package__ = fullname if is_package else parent
        module.__builtins__ = self.builtins
        if is_package:
            module.__path__ = spec.submodule_search_locations = [os.path.dirname(origin)]
        self.modules[fullname] = module
        # Dataclasses look a class's module up in sys.modules while they make the class.
        previous = sys.modules.get(fullname, _MISSING)
        sys.modules[fullname] = module
        try:
            self._exec(self._compile(self.sources[key], origin, "exec", dont_inherit=True),
                       vars(module))
        except BaseException:
            del self.modules[fullname]
            raise
        finally:
            if previous is _MISSING:
                sys.modules.pop(fullname, None)
            else:
                sys.modules[fullname] = previous
        if parent_module is not None:
            setattr(parent_module, child, module)
        return module

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level:
            package = (globals or {}).get("__package__") or ""
            base = package.rsplit(".", level - 1)[0] if level > 1 else package
            name = f"{base}.{name}" if name else base
        if _root(name) != _PACKAGE:
            return self._real_import(name, globals, locals, fromlist, 0)
        module = self.load(name)
        if not fromlist:
            return self.modules[_PACKAGE] if not level else module
        for item in fromlist:
            if item != "*" and item not in vars(module) \
                    and _source_key(self.sources, f"{name}.{item}")[0]:
                self.load(f"{name}.{item}")
        return module


# ---- the learner's answers --------------------------------------------------------------------

def _refuse(*args, **kwargs):
    __grader_refuse__()  # noqa: F821 - put into the poisoned function's globals


class _ReferenceGuard:
    """Make the course's own answer to one exercise fail while that exercise is checked."""

    def __init__(self, modules: list[types.ModuleType], raiser: Callable[[], None]) -> None:
        self.modules = modules
        self.raiser = raiser

    def _functions(self, name: str) -> list[types.FunctionType]:
        found = []
        for module in self.modules:
            value = vars(module).get(name)
            if isinstance(value, type):
                found.extend(v.__func__ if isinstance(v, (staticmethod, classmethod)) else v
                             for v in vars(value).values())
            else:
                found.append(value)
        return [fn for fn in found if isinstance(fn, types.FunctionType)
                and not fn.__code__.co_freevars]

    @contextlib.contextmanager
    def protecting(self, name: str) -> Iterator[None]:
        swapped = []
        try:
            for fn in self._functions(name):
                fn.__globals__["__grader_refuse__"] = self.raiser
                swapped.append((fn, fn.__code__))
                fn.__code__ = _refuse.__code__
            yield
        finally:
            for fn, code in swapped:
                fn.__code__ = code


_COMPARISONS = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__",
                "__bool__", "__len__", "__iter__", "__getitem__", "__contains__")


def _overrides(kind: type, base: type) -> bool:
    """True if ``kind`` (a subclass of ``base``) defines comparisons or element access of its
    own. Read from the classes' own dicts: a metaclass cannot fake them."""
    mro = type.__dict__["__mro__"].__get__(kind)
    for cls in mro[:mro.index(base)]:
        own = type.__dict__["__dict__"].__get__(cls)
        if any(name in own for name in _COMPARISONS):
            return True
    return False


def _launder(value: object, refuse: Callable[[str], None], depth: int = 0) -> object:
    """``value`` as exact built-in types: a tensor subclass that could fake comparisons
    (through ``__torch_function__``) becomes a plain tensor on the same data, keeping its
    autograd history; an ``int``, ``float``, ``complex`` or ``str`` subclass becomes the plain
    value; tuples, lists and dicts are laundered element by element, and a subclass of one
    becomes the plain container (a named tuple stays one unless it changes comparisons)."""
    import torch

    kind = type(value)   # type() cannot be faked; isinstance() can, through __class__
    if depth > 4 or kind in (int, float, bool, complex, str, bytes, type(None), torch.Tensor,
                             torch.nn.Parameter):
        return value
    if issubclass(kind, torch.Tensor):
        with torch._C.DisableTorchFunctionSubclass():
            return value.as_subclass(torch.Tensor)
    for base in (int, float, complex, str, bytes):
        if issubclass(kind, base):
            return getattr(base, f"__{base.__name__}__")(value)
    if kind in (tuple, list):
        return kind(_launder(item, refuse, depth + 1) for item in value)
    if kind is dict:
        return {key: _launder(item, refuse, depth + 1) for key, item in dict.items(value)}
    for base in (tuple, list, dict):
        if issubclass(kind, base):
            if base is tuple and hasattr(value, "_fields") and not _overrides(kind, tuple):
                return kind(*(_launder(item, refuse, depth + 1)
                              for item in tuple.__iter__(value)))
            if base is dict:
                return {key: _launder(item, refuse, depth + 1)
                        for key, item in dict.items(value)}
            return base(_launder(item, refuse, depth + 1) for item in base.__iter__(value))
    if isinstance(value, (torch.Tensor, int, float, str, tuple, list, dict)):
        refuse(f"it returned a {kind.__name__} that pretends to be a "
               f"{value.__class__.__name__}")
    return value


def _honest(fn: Callable, refuse: Callable[[str], None]) -> Callable:
    """``fn``, with its return values laundered (see :func:`_launder`)."""
    def honest(*args, **kwargs):
        return _launder(fn(*args, **kwargs), refuse)

    with contextlib.suppress(Exception):   # a callable object may lack a name, or lie
        functools.update_wrapper(honest, fn)
    return honest


def _in_package(obj: object, package_dir: str) -> bool:
    """True if ``obj`` is a function or class written in the course package itself."""
    code = getattr(obj, "__code__", None)
    if isinstance(code, types.CodeType):
        return os.path.abspath(code.co_filename).startswith(package_dir + os.sep)
    module = getattr(obj, "__module__", None) if isinstance(obj, type) else None
    return isinstance(module, str) and (module == _PACKAGE or module.startswith(_PACKAGE + "."))


# ---- the worker --------------------------------------------------------------------------------

def _guarded_namespaces() -> list[tuple[str, dict, bool]]:
    """Builtins first, then every loaded module of the guarded packages."""
    found = [("builtins", vars(builtins), True)]
    for name, module in list(sys.modules.items()):
        if isinstance(module, types.ModuleType) and name != "builtins" and (
                _root(name) in _GUARDED_ROOTS or name in _FULLY_GUARDED):
            found.append((name, vars(module), name in _FULLY_GUARDED))
    return found


def main(job: dict, finder) -> None:
    # Trusted references, taken before any learner code runs.
    write, monotonic, exit_now = os.write, time.monotonic, os._exit
    encode = json.JSONEncoder(ensure_ascii=True).encode
    settrace, setprofile, gettrace, getprofile = (sys.settrace, sys.setprofile, sys.gettrace,
                                                  sys.getprofile)
    import_module = importlib.import_module
    put_back = _put_back
    put_back_code = put_back.__code__, put_back.__defaults__
    result_fd = job["result_fd"]
    os.set_inheritable(result_fd, False)   # not for processes the learner's code starts
    recursion_limit = sys.getrecursionlimit()
    scratch = os.getcwd()
    cell_timeout, notebook_timeout = float(job["cell_timeout"]), float(job["notebook_timeout"])
    check_timeout, threads = float(job["check_timeout"]), int(job["threads"])
    package_dir, package_root = str(job["package_dir"]), str(job["package_root"])
    exercises = tuple((str(e["module"]), str(e["name"]), str(e["expression"]))
                      for e in job["exercises"])
    # The course package's source, as the checks will load it: immutable.
    sources = tuple(sorted((str(k), str(v)) for k, v in finder.sources.items()))

    def send(**event) -> None:
        data = (encode(event) + "\n").encode()
        while data:
            data = data[write(result_fd, data):]

    alarm = _Alarm()
    import torch

    torch.set_num_threads(threads)
    for name in job["preload"]:
        try:
            import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module is the notebook's problem
            pass
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.colors = "NoColor"
    _forget_package()
    builtin_items = tuple(vars(builtins).items())
    real_import, compile_, exec_ = builtins.__import__, compile, exec
    module_spec = importlib.machinery.ModuleSpec
    modules = sys.modules
    library = os.path.dirname(torch.__file__) + os.sep
    # What the learner's code could change where the checks would notice. Builtins and the
    # worker's own namespace first (see _put_back). The classes recorded: those of the fully
    # guarded modules, of the worker, and every class the checkers name, found by loading
    # them once now (a copy that is thrown away: the checks get a fresh one).
    namespaces = _guarded_namespaces()
    namespaces.insert(1, (__name__, globals(), True))
    class_namespaces = [ns for name, ns, every in namespaces if every] + [vars(json)]
    discovery = _CheckerPackage(sources, package_root, builtin_items, real_import, compile_,
                                exec_, module_spec)
    for module, _, _ in exercises:
        with contextlib.suppress(Exception):   # a broken checker is reported later
            discovery.load(f"cnn_course.checks.{module}")
    class_namespaces.extend(vars(m) for m in discovery.modules.values())
    discovery = None
    record = _record(namespaces, [*_classes_in(class_namespaces), type(finder)],
                     (torch.Tensor, torch.nn.Module, torch.nn.Parameter), functions=(send, main))
    importing = _record_importing()
    hooks = _global_hooks()
    default_dtype = torch.get_default_dtype()
    send(event="ready")

    # ---- the learner's cells -----------------------------------------------------------
    deadline = monotonic() + notebook_timeout
    not_run = []
    for cell in job["cells"]:
        index = cell["index"]
        left = deadline - monotonic()
        if left <= 0:
            not_run.append(index)
            continue
        limit = min(cell_timeout, left)
        send(event="cell", phase="start", index=index, limit=limit)
        _mark(f"--- cell {index} ---")
        status, error = "ok", None
        try:
            result = alarm.call(limit, lambda source=cell["source"]: shell.run_cell(
                source, store_history=False))
            failure = result.error_before_exec or result.error_in_exec
        except BaseException as escaped:  # noqa: BLE001 - e.g. the timeout, outside the cell
            failure = escaped
        if isinstance(failure, CellTimeout):
            status = "timeout"
        elif failure is not None:
            status = "memory" if _is_memory_error(failure) else "error"
            error = describe_error(failure, alarm)
        send(event="cell", phase="end", index=index, status=status, error=error, limit=limit)
        if failure is not None:
            result = failure = None
            _drop_last_error(shell)

    # ---- put back what the cells changed -------------------------------------------------
    settrace(None)
    setprofile(None)
    if (put_back.__code__, put_back.__defaults__) != put_back_code:
        put_back.__code__, put_back.__defaults__ = put_back_code
    changed: list[str] = []
    put_back(record, changed, library)
    # New stream objects: the learner may have closed or replaced the old ones.
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)
    sys.setrecursionlimit(recursion_limit)
    os.chdir(scratch)
    # The learner's later imports of course modules get them from a fresh finder (of a fresh
    # class), built from the immutable copy; the checkers never import through it.
    snapshot_ns: dict = {"__name__": "cnn_course_grading_snapshot"}
    exec_(compile_(dict(sources)["cnn_course/grading/snapshot.py"], "snapshot.py", "exec"),
          snapshot_ns)
    public_finder = snapshot_ns["SnapshotFinder"](package_root, dict(sources))
    _put_back_importing(importing, finder, public_finder, changed, modules)
    if not _same_sources(finder, sources):
        changed.append("the course package's source that the grader loads it from")
    _reset_torch(torch, hooks, default_dtype, threads, changed)
    send(event="cells_done", not_run=not_run, changed=list(dict.fromkeys(changed))[:20])
    _mark("--- the grader's checks ---")

    # ---- the grader's checks -----------------------------------------------------------
    user_ns = shell.user_ns
    learner_modules = [m for name, m in list(modules.items())
                       if _root(name) == _PACKAGE and isinstance(m, types.ModuleType)]
    learner_modules.extend(v for v in list(user_ns.values()) if isinstance(v, types.ModuleType)
                           and str(vars(v).get("__name__", "")).startswith(_PACKAGE))
    package = _CheckerPackage(sources, package_root, builtin_items, real_import, compile_,
                              exec_, module_spec)
    checkers, core, problem = {}, None, None
    try:
        core = package.load("cnn_course.checks.core")
        for module, _, _ in exercises:
            if module not in checkers:
                checkers[module] = package.load(f"cnn_course.checks.{module}")
    except Exception as error:  # noqa: BLE001 - a broken checker is the grader's problem
        problem = f"grader error: could not import the checkers: {describe_error(error, alarm)}"
    try:
        references = _reference_modules(sources, learner_modules, import_module)
    except Exception:  # noqa: BLE001 - odd modules left by the learner; guard what we can
        references = []

    def refuse(why: str = "your code calls the course's own answer to this exercise (from "
                          "cnn_course.reference); the exercise is to write it") -> None:
        raise core.CaseFailed(why, diagnosed=True)

    def untouched(during: list[str]) -> None:
        """Put back what the learner's code changed while it ran in a check; name it."""
        if gettrace() is not None or getprofile() is not None:
            during.append("a trace or profile hook (sys.settrace)")
        settrace(None)
        setprofile(None)
        if (put_back.__code__, put_back.__defaults__) != put_back_code:
            put_back.__code__, put_back.__defaults__ = put_back_code
        put_back(record, during, library)
        _put_back_importing(importing, public_finder, public_finder, during, modules)
        _reset_torch(torch, hooks, default_dtype, threads, during)

    # From here on, the checkers' own modules (and the functions above) are recorded too,
    # with the contents of the checker modules' dicts (EXERCISES).
    checker_namespaces = [vars(module) for module in package.modules.values()]
    own_classes = [c for c in _classes_in(checker_namespaces)
                   if _root(str(vars(c).get("__module__"))) == _PACKAGE]
    checks = [(name, vars(module), True) for name, module in package.modules.items()]
    record = _join(record,
                   _record([c for c in checks if not c[0].startswith(_CHECKS)], own_classes,
                           functions=(refuse, untouched)),
                   _record([c for c in checks if c[0].startswith(_CHECKS)], [],
                           contents=True))
    importing = _record_importing()
    guard = _ReferenceGuard(references, refuse)
    for module, name, expression in exercises:
        key = f"{module}.{name}"
        outcome = {"visible": None, "hidden": None, "problem": problem}
        if problem is None:
            outcome.update(_check(module, name, expression, checkers, user_ns, alarm, guard,
                                  refuse, send, check_timeout, package_dir, untouched))
        send(event="exercise", key=key, **outcome)
    send(event="done", memory=_peak_memory())
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        exit_now(0)  # no atexit handlers: the learner may have registered some


def _drop_last_error(shell) -> None:
    """Forget the last traceback, whose frames may hold what a failed cell allocated (a
    list of tensors built until memory ran out, say), so that later cells get it back."""
    shell.last_execution_result = None
    if hasattr(shell.InteractiveTB, "tb"):
        shell.InteractiveTB.tb = None
    sys.last_type = sys.last_value = sys.last_traceback = None
    if hasattr(sys, "last_exc"):
        sys.last_exc = None
    gc.collect()


def _peak_memory() -> dict[str, int]:
    """The process's largest address space and resident size so far, in bytes (Linux)."""
    fields = {"VmPeak": "address_space", "VmHWM": "resident"}
    peaks = {}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in fields and value.split():
                    peaks[fields[key]] = int(value.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return peaks


def _mark(text: str) -> None:
    """A line in the output log saying what runs next."""
    try:
        os.write(1, f"\n{text}\n".encode())
    except OSError:
        pass


def _forget_package() -> list[types.ModuleType]:
    """Remove every ``cnn_course`` module from ``sys.modules``; return what was there."""
    names = [name for name in sys.modules if name == _PACKAGE or name.startswith(_PACKAGE + ".")]
    return [sys.modules.pop(name) for name in names]


def _reference_modules(sources: tuple, learner_modules: list[types.ModuleType],
                       import_module: Callable) -> list[types.ModuleType]:
    """The learner's ``cnn_course.reference`` modules, with any not yet imported loaded
    now, so that an import inside the learner's function finds one that can be guarded."""
    for key, _ in sources:
        if key.startswith("cnn_course/reference/") and key.endswith(".py"):
            name = key[:-3].replace("/", ".").removesuffix(".__init__")
            if name not in sys.modules:
                try:
                    import_module(name)
                except Exception:  # noqa: BLE001 - a broken reference cannot be called either
                    pass
    modules = {id(m): m for m in learner_modules
               if str(vars(m).get("__name__", "")).startswith(_REFERENCE)}
    modules.update({id(m): m for name, m in sys.modules.items()
                    if name.startswith(_REFERENCE) and isinstance(m, types.ModuleType)})
    return list(modules.values())


def _check(module: str, name: str, expression: str, checkers: dict, user_ns: dict,
           alarm: _Alarm, guard: _ReferenceGuard, refuse: Callable[[str], None],
           send: Callable[..., None], seconds: float, package_dir: str,
           untouched: Callable[[list[str]], None]) -> dict:
    checker = checkers[module]
    exercises = vars(checker).get("EXERCISES", {})
    if name not in exercises:
        return {"problem": f"grader error: cnn_course.checks.{module} has no exercise {name!r}"}
    try:
        answer = alarm.call(seconds, lambda: eval(expression, user_ns))
    except NameError:
        what = "" if expression == name else f"{expression} is "
        return {"problem": f"{what}not defined", "undefined": True}
    except CellTimeout:
        return {"problem": f"evaluating {expression!r} did not finish within {seconds:g} s"}
    except BaseException as error:  # noqa: BLE001
        return {"problem": f"evaluating {expression!r} raised {describe_error(error, alarm)}"}
    if _in_package(answer, package_dir):
        return {"problem": "this is the course's own implementation (from cnn_course), not "
                           "the learner's"}
    if callable(answer) and not _is_class(answer):
        answer = _honest(answer, refuse)
    if not expression.isidentifier():   # evaluating it ran the learner's code
        untouched([])
    run_check = vars(checker)["run_check"]
    outcome, during = {}, []
    for kind, hidden in (("visible", False), ("hidden", True)):
        send(event="check", phase="start", key=f"{module}.{name}", hidden=hidden,
             limit=seconds)
        try:
            with guard.protecting(name):
                result = alarm.call(seconds, lambda h=hidden: run_check(name, answer, h))
            verdict = {"passed": result.passed is True, "message": _one_line(result.message)}
        except CellTimeout:
            verdict = {"passed": False, "message": f"did not finish within {seconds:g} s"}
        except BaseException as error:  # noqa: BLE001 - SystemExit and the like from the learner
            verdict = {"passed": False,
                       "message": f"stopped the check: {describe_error(error, alarm)}"}
        outcome[kind] = verdict
        # Whatever the learner's code changed while it was checked is put back; if it changed
        # anything recorded, the cases ran with the change and do not count.
        untouched(during)
        if during or not verdict["passed"]:
            break
    if during:
        names = ", ".join(dict.fromkeys(during))
        outcome = {"visible": {"passed": False, "message": _one_line(
            f"the code changed {names} while it was checked (put back; the cases do not "
            "count)")}}
    return outcome
