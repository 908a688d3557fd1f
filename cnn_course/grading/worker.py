"""The grading worker: runs one submission's cells, then the grader's own checks.

It runs in a fresh Python process started by :mod:`cnn_course.grading.runner`, which loads
the course package from the snapshot taken when grading started (see
:mod:`cnn_course.grading.snapshot`). The worker reports to the grader on its own pipe, one
JSON object per line; the learner's output goes to stdout and stderr, which the grader caps.

Order of events:

1. Import torch and the modules the chapter's solution imports (so that the time limit of
   the first cell measures the learner's code, not library imports), remember the state of
   torch's and Python's main namespaces, and forget every ``cnn_course`` module.
2. Run the submission's code cells in an IPython shell, in their order, each under a time
   limit, skipping the cells tagged ``check``. Stored outputs are never read.
3. Undo what the cells may have changed where the checks could notice (patched torch or
   builtins functions, replaced modules, trace hooks, grad mode, default dtype), import the
   checker modules afresh from the snapshot, and run each exercise's visible and hidden cases
   on the learner's answer, each under a time limit. While an exercise is checked, the
   course's own answer to it (the function of the same name in ``cnn_course.reference``) is
   made to fail if the learner's code calls it, and what the learner's function returns is
   turned into exact built-in types (no tensor or int subclass that fakes comparisons).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import json
import os
import signal
import sys
import time
import types
from collections.abc import Callable, Iterator

_GUARDED_MODULES = ("builtins", "math", "numpy", "torch", "torch.nn", "torch.nn.functional",
                    "torch.nn.init", "torch.linalg", "torch.autograd", "torch.optim",
                    "torch.testing")
_MESSAGE_LIMIT = 300
_PACKAGE = "cnn_course"
_REFERENCE = "cnn_course.reference"


class CellTimeout(BaseException):
    """Raised in the learner's code when its time is up (a BaseException, so that
    ``except Exception`` in the learner's code does not swallow it)."""


class _Alarm:
    """A wall-clock limit that interrupts Python code with :class:`CellTimeout`."""

    def __init__(self) -> None:
        self.armed = False

    def _fire(self, signum, frame) -> None:
        if self.armed:
            # Fire again soon, in case the code caught this one and carried on.
            signal.setitimer(signal.ITIMER_REAL, 0.5)
            raise CellTimeout()

    def start(self, seconds: float) -> None:
        signal.signal(signal.SIGALRM, self._fire)
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))

    def stop(self) -> None:
        self.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)

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


class _Namespaces:
    """Remembers the contents of torch's and Python's main namespaces to restore them."""

    def __init__(self, torch_module) -> None:
        self.modules = {name: (sys.modules[name], dict(vars(sys.modules[name])))
                        for name in _GUARDED_MODULES if name in sys.modules}
        self.classes = [(cls, dict(vars(cls))) for cls in
                        (torch_module.Tensor, torch_module.nn.Module,
                         torch_module.nn.Parameter)]
        self.sys_modules = {name: module for name, module in sys.modules.items()
                            if not name.startswith(_PACKAGE)}

    def restore(self) -> None:
        for name, module in self.sys_modules.items():
            if sys.modules.get(name) is not module:
                sys.modules[name] = module
        for module, saved in self.modules.values():
            self._restore(module, saved, drop_added=False)
        for cls, saved in self.classes:
            self._restore(cls, saved, drop_added=True)

    @staticmethod
    def _restore(owner, saved: dict, drop_added: bool) -> None:
        current = dict(vars(owner))
        for key, value in saved.items():
            if current.get(key, saved) is not value:
                try:
                    setattr(owner, key, value)
                except (AttributeError, TypeError):
                    pass
        if drop_added:
            for key in current.keys() - saved.keys():
                try:
                    delattr(owner, key)
                except (AttributeError, TypeError):
                    pass


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


def _launder(value: object, refuse: Callable[[str], None], depth: int = 0) -> object:
    """``value`` as exact built-in types: a tensor subclass that could fake comparisons
    (through ``__torch_function__``) becomes a plain tensor on the same data, keeping its
    autograd history; an ``int``, ``float`` or ``str`` subclass becomes the plain value; tuples,
    lists and dicts are laundered element by element."""
    import torch

    kind = type(value)   # type() cannot be faked; isinstance() can, through __class__
    if depth > 4 or kind in (int, float, bool, str, bytes, complex, type(None), torch.Tensor,
                             torch.nn.Parameter):
        return value
    if issubclass(kind, torch.Tensor):
        with torch._C.DisableTorchFunctionSubclass():
            return value.as_subclass(torch.Tensor)
    for base in (int, float, str):
        if issubclass(kind, base):
            return getattr(base, f"__{base.__name__}__")(value)
    if isinstance(value, (torch.Tensor, int, float, str)):
        refuse(f"it returned a {kind.__name__} that pretends to be a "
               f"{value.__class__.__name__}")
    if kind in (tuple, list):
        return kind(_launder(item, refuse, depth + 1) for item in value)
    if issubclass(kind, tuple) and hasattr(value, "_fields"):   # a named tuple
        return kind(*(_launder(item, refuse, depth + 1) for item in value))
    if kind is dict:
        return {key: _launder(item, refuse, depth + 1) for key, item in value.items()}
    return value


def _honest(fn: Callable, refuse: Callable[[str], None]) -> Callable:
    """``fn``, with its return values laundered (see :func:`_launder`)."""
    @functools.wraps(fn)
    def honest(*args, **kwargs):
        return _launder(fn(*args, **kwargs), refuse)

    return honest


def _in_package(obj: object, package_dir: str) -> bool:
    """True if ``obj`` is a function or class written in the course package itself."""
    code = getattr(obj, "__code__", None)
    if isinstance(code, types.CodeType):
        return os.path.abspath(code.co_filename).startswith(package_dir + os.sep)
    module = getattr(obj, "__module__", None) if isinstance(obj, type) else None
    return isinstance(module, str) and (module == _PACKAGE or module.startswith(_PACKAGE + "."))


def main(job: dict, finder) -> None:
    # Trusted references, taken before any learner code runs.
    write, dumps, monotonic, exit_now = os.write, json.dumps, time.monotonic, os._exit
    result_fd = job["result_fd"]
    os.set_inheritable(result_fd, False)   # not for processes the learner's code starts
    recursion_limit = sys.getrecursionlimit()
    scratch = os.getcwd()

    def send(**event) -> None:
        data = (dumps(event) + "\n").encode()
        while data:
            data = data[write(result_fd, data):]

    alarm = _Alarm()
    import torch

    torch.set_num_threads(job["threads"])
    for name in job["preload"]:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module is the notebook's problem
            pass
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.colors = "NoColor"
    namespaces = _Namespaces(torch)
    default_dtype = torch.get_default_dtype()
    _forget_package()
    send(event="ready")

    # ---- the learner's cells -----------------------------------------------------------
    deadline = monotonic() + job["notebook_timeout"]
    not_run = []
    for cell in job["cells"]:
        index = cell["index"]
        left = deadline - monotonic()
        if left <= 0:
            not_run.append(index)
            continue
        limit = min(job["cell_timeout"], left)
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
    send(event="cells_done", not_run=not_run)
    _mark("--- the grader's checks ---")

    # ---- the grader's checks -----------------------------------------------------------
    sys.settrace(None)
    sys.setprofile(None)
    # New stream objects: the learner may have closed or replaced the old ones.
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)
    sys.setrecursionlimit(recursion_limit)
    os.chdir(scratch)
    namespaces.restore()
    torch.set_grad_enabled(True)
    torch.set_default_dtype(default_dtype)
    if hasattr(torch, "set_default_device"):
        torch.set_default_device(None)
    torch.set_num_threads(job["threads"])
    if finder in sys.meta_path:
        sys.meta_path.remove(finder)
    sys.meta_path.insert(0, finder)

    user_ns = shell.user_ns
    learner_modules = _forget_package()
    learner_modules.extend(v for v in list(user_ns.values()) if isinstance(v, types.ModuleType)
                           and str(vars(v).get("__name__", "")).startswith(_PACKAGE))
    checkers, core, problem = {}, None, None
    try:
        core = importlib.import_module("cnn_course.checks.core")
        for exercise in job["exercises"]:
            module = exercise["module"]
            if module not in checkers:
                checkers[module] = importlib.import_module(f"cnn_course.checks.{module}")
    except Exception as error:  # noqa: BLE001 - a broken checker is the grader's problem
        problem = f"grader error: could not import the checkers: {describe_error(error, alarm)}"
    # The learner's later imports get the modules they already had, or fresh stand-ins,
    # never the checkers' own copies.
    _forget_package()
    for module in learner_modules:
        sys.modules.setdefault(str(vars(module).get("__name__")), module)
    try:
        references = _reference_modules(finder, learner_modules)
    except Exception:  # noqa: BLE001 - odd modules left by the learner; guard what we can
        references = []

    def refuse(why: str = "your code calls the course's own answer to this exercise (from "
                          "cnn_course.reference); the exercise is to write it") -> None:
        raise core.CaseFailed(why, diagnosed=True)

    guard = _ReferenceGuard(references, refuse)
    for exercise in job["exercises"]:
        key = f"{exercise['module']}.{exercise['name']}"
        outcome = {"visible": None, "hidden": None, "problem": problem}
        if problem is None:
            outcome.update(_check(exercise, checkers, user_ns, alarm, guard, refuse, send,
                                  job["check_timeout"], job["package_dir"]))
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


def _reference_modules(finder, learner_modules: list[types.ModuleType]
                       ) -> list[types.ModuleType]:
    """The learner's ``cnn_course.reference`` modules, with any not yet imported loaded
    now, so that an import inside the learner's function finds one that can be guarded."""
    for key in finder.sources:
        if key.startswith("cnn_course/reference/") and key.endswith(".py"):
            name = key[:-3].replace("/", ".").removesuffix(".__init__")
            if name not in sys.modules:
                try:
                    importlib.import_module(name)
                except Exception:  # noqa: BLE001 - a broken reference cannot be called either
                    pass
    modules = {id(m): m for m in learner_modules
               if str(vars(m).get("__name__", "")).startswith(_REFERENCE)}
    modules.update({id(m): m for name, m in sys.modules.items()
                    if name.startswith(_REFERENCE) and isinstance(m, types.ModuleType)})
    return list(modules.values())


def _check(exercise: dict, checkers: dict, user_ns: dict, alarm: _Alarm, guard: _ReferenceGuard,
           refuse: Callable[[str], None], send: Callable[..., None], seconds: float,
           package_dir: str) -> dict:
    name, checker = exercise["name"], checkers[exercise["module"]]
    exercises = getattr(checker, "EXERCISES", {})
    if name not in exercises:
        return {"problem": f"grader error: cnn_course.checks.{exercise['module']} has no "
                           f"exercise {name!r}"}
    try:
        answer = alarm.call(seconds, lambda: eval(exercise["expression"], user_ns))
    except NameError:
        what = "" if exercise["expression"] == name else f"{exercise['expression']} is "
        return {"problem": f"{what}not defined", "undefined": True}
    except CellTimeout:
        return {"problem": f"evaluating {exercise['expression']!r} did not finish within "
                           f"{seconds:g} s"}
    except BaseException as error:  # noqa: BLE001
        return {"problem": f"evaluating {exercise['expression']!r} raised "
                           f"{describe_error(error, alarm)}"}
    if _in_package(answer, package_dir):
        return {"problem": "this is the course's own implementation (from cnn_course), not "
                           "the learner's"}
    if isinstance(answer, (types.FunctionType, functools.partial)):
        answer = _honest(answer, refuse)
    outcome = {}
    for kind, hidden in (("visible", False), ("hidden", True)):
        send(event="check", phase="start", key=f"{exercise['module']}.{name}", hidden=hidden,
             limit=seconds)
        try:
            with guard.protecting(name):
                result = alarm.call(seconds, lambda h=hidden: checker.run_check(name, answer, h))
            verdict = {"passed": bool(result.passed), "message": _one_line(result.message)}
        except CellTimeout:
            verdict = {"passed": False, "message": f"did not finish within {seconds:g} s"}
        except BaseException as error:  # noqa: BLE001 - SystemExit and the like from the learner
            verdict = {"passed": False,
                       "message": f"stopped the check: {describe_error(error, alarm)}"}
        outcome[kind] = verdict
        if not verdict["passed"]:
            break
    return outcome
