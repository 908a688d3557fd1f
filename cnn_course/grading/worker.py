"""The sandboxed side of grading: run a learner's cells, then record what the checks observe.

This module runs inside the sandbox (see :mod:`cnn_course.grading.sandbox`), started by
:data:`BOOTSTRAP`. Nothing it sends is trusted: the grader validates every event, and the
judge (:mod:`cnn_course.grading.judge`) decides from the recorded observations alone. The
limits here (an alarm per cell and per check, an address-space limit per process) only make
a well-behaved notebook fail early with a clear message; the grader enforces the real limits
from outside.

Events go to the grader on their own descriptor, as frames: a 4-byte big-endian length, then
one JSON object (see :func:`read_frame`).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import struct
import sys
from collections.abc import Callable
from typing import Any

from cnn_course.messages import tr

# Run in the sandbox before anything else: become the learner's own user, set the limits.
BOOTSTRAP = """\
import json, os, resource, sys
fd, uid, nproc = (int(a) for a in sys.argv[1:4])
if uid >= 0:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
if nproc >= 0:
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
job = json.loads(sys.stdin.buffer.read(int(sys.stdin.buffer.readline())))
sys.stdin.close()
soft, hard = job["memory_cells"], job["memory_hard"]
if hard:
    resource.setrlimit(resource.RLIMIT_AS, (soft or hard, hard))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
from cnn_course.grading.worker import main
main(job, fd)
"""

_HEADER = struct.Struct(">I")
MAX_FRAME = 256 << 20
_MESSAGE_LIMIT = 300


def read_frame(stream, limit: int) -> dict | None:
    """The next event from ``stream``; None at its end. Raises ValueError for a frame longer
    than ``limit`` bytes or one that is not a JSON object (the caller stops reading)."""
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > limit:
        raise ValueError(tr("sent a message of {size:,} bytes, more than the {limit:,} bytes "
                            "left to it", size=size, limit=limit))
    body = _read_exactly(stream, size)
    if body is None:
        return None
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        raise ValueError(tr("sent a message that is not valid JSON")) from None
    if not isinstance(event, dict):
        raise ValueError(tr("sent a message that is not a JSON object"))
    event["_bytes"] = size + _HEADER.size
    return event


def _read_exactly(stream, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class CellTimeout(BaseException):
    """Raised in the learner's code when its time is up (a BaseException, so that
    ``except Exception`` in the learner's code does not swallow it)."""


class _Alarm:
    """A wall-clock limit that interrupts Python code with :class:`CellTimeout`. The code
    can defeat it (block the signal, say): then the grader kills the sandbox from outside."""

    def __init__(self) -> None:
        self.armed = False

    def _fire(self, signum, frame) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0.5)   # again, if this one is swallowed
            raise CellTimeout()

    def call(self, seconds: float, fn: Callable[[], Any]) -> Any:
        signal.signal(signal.SIGALRM, self._fire)
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
        try:
            return fn()
        finally:
            self.armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)


def _one_line(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def describe_error(error: BaseException, alarm: _Alarm) -> str:
    """``"ValueError: message"`` in one line; the learner's ``__str__`` runs under a limit."""
    name = type(error).__name__
    if isinstance(error, SyntaxError):
        return _one_line(tr("{name}: {message} (line {line})", name=name, message=error.msg,
                            line=error.lineno))
    try:
        message = str(alarm.call(2.0, lambda: str(error)))
    except BaseException:  # noqa: BLE001 - the learner's __str__ may do anything
        message = tr("(its message could not be shown)")
    return _one_line(f"{name}: {message}" if message else name)


def _is_memory_error(error: BaseException) -> bool:
    text = str(error) if isinstance(error, RuntimeError) else ""
    return isinstance(error, MemoryError) or "can't allocate memory" in text \
        or "DefaultCPUAllocator" in text


class _Channel:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_inheritable(fd, False)   # not for processes the learner's code starts

    def send(self, **event: Any) -> None:
        body = json.dumps(event, ensure_ascii=True, allow_nan=False).encode()
        data = _HEADER.pack(len(body)) + body
        while data:
            data = data[os.write(self.fd, data):]


def _drop_last_error(shell) -> None:
    """Forget the last traceback, whose frames may hold what a failed cell allocated."""
    shell.last_execution_result = None
    if hasattr(shell.InteractiveTB, "tb"):
        shell.InteractiveTB.tb = None
    sys.last_type = sys.last_value = sys.last_traceback = None
    if hasattr(sys, "last_exc"):
        sys.last_exc = None
    gc.collect()


def _run_cells(job: dict, shell, alarm: _Alarm, channel: _Channel, deadline: float
               ) -> list[int]:
    """Run the cells in order; return the indices of those left unrun at ``deadline``."""
    import time

    not_run = []
    for cell in job["cells"]:
        index = cell["index"]
        left = deadline - time.monotonic()
        if left <= 0:
            not_run.append(index)
            continue
        channel.send(event="cell", phase="start", index=index)
        os.write(1, ("\n" + tr("--- cell {index} ---", index=index) + "\n").encode())
        status, error = "ok", None
        try:
            result = alarm.call(min(job["cell_timeout"], left),
                                lambda s=cell["source"]: shell.run_cell(s, store_history=False))
            failure = result.error_before_exec or result.error_in_exec
        except BaseException as escaped:  # noqa: BLE001 - e.g. the timeout, outside the cell
            failure = escaped
        if isinstance(failure, CellTimeout):
            status = "timeout"
        elif failure is not None:
            status = "memory" if _is_memory_error(failure) else "error"
            error = describe_error(failure, alarm)
        channel.send(event="cell", phase="end", index=index, status=status, error=error)
        if failure is not None:
            result = failure = None
            _drop_last_error(shell)
    return not_run


def _from_course_package(answer: object) -> bool:
    """True if the answer is one of the course's own functions (its reference answer, say)."""
    code = getattr(answer, "__code__", None) or getattr(
        getattr(answer, "__init__", None), "__code__", None)
    filename = getattr(code, "co_filename", "") or ""
    from cnn_course.grading.sandbox import PACKAGE_DIR
    return isinstance(filename, str) and filename.startswith(str(PACKAGE_DIR))


class _references_refused:
    """While an exercise is checked, the course's own function of the exercise's name (its
    reference answer in ``cnn_course.reference``, or the helper in ``cnn_course.arith`` it
    re-exports) raises a method violation when the learner's code calls it. Best-effort: code
    in the sandbox can undo it, which is why it is reported as a method check."""

    def __init__(self, name: str, recorder) -> None:
        self.name, self.recorder, self.saved = name, recorder, []

    def __enter__(self) -> None:
        import pkgutil
        import types

        import cnn_course.reference as package
        from cnn_course.checks.core import MethodViolation

        for info in pkgutil.iter_modules(package.__path__, "cnn_course.reference."):
            try:
                importlib.import_module(info.name)
            except Exception:  # noqa: BLE001 - a module that cannot load cannot be called
                pass
        recorder = self.recorder
        for module_name, module in list(sys.modules.items()):
            if not module_name.startswith("cnn_course") or module_name.startswith(
                    ("cnn_course.checks", "cnn_course.grading")):
                continue
            original = getattr(module, self.name, None)
            if not isinstance(original, types.FunctionType):
                continue

            def guarded(*args: Any, original=original, **kwargs: Any) -> Any:
                if recorder.busy:
                    raise MethodViolation(tr("your code calls the course's own answer to this "
                                             "exercise (from cnn_course); the exercise is to "
                                             "write it"))
                return original(*args, **kwargs)

            self.saved.append((module, original))
            setattr(module, self.name, guarded)

    def __exit__(self, *exc: object) -> None:
        for module, original in self.saved:
            setattr(module, self.name, original)
        self.saved = []


def _check(job: dict, exercise: dict, user_ns: dict, alarm: _Alarm, channel: _Channel,
           budget) -> None:
    from cnn_course.checks import core
    from cnn_course.grading.recording import Recorder

    key = f"{exercise['module']}.{exercise['name']}"
    expression = exercise["expression"]
    try:
        answer = alarm.call(job["check_timeout"], lambda: eval(expression, user_ns))
    except NameError:
        problem = tr("not defined") if expression == exercise["name"] else \
            tr("{expression} is not defined", expression=expression)
        channel.send(event="exercise", key=key, problem=problem, undefined=True)
        return
    except BaseException as error:  # noqa: BLE001
        problem = (tr("evaluating {expression!r} did not finish", expression=expression)
                   if isinstance(error, CellTimeout) else
                   tr("evaluating {expression!r} raised {error}", expression=expression,
                      error=describe_error(error, alarm)))
        channel.send(event="exercise", key=key, problem=problem)
        return
    method = None
    if _from_course_package(answer):
        method = tr("this is the course's own implementation (from cnn_course), not the "
                    "learner's")
    checker = importlib.import_module(f"cnn_course.checks.{exercise['module']}")
    for hidden in (False, True):
        channel.send(event="check", key=key, hidden=hidden)
        recorder = Recorder(budget, passthrough=(CellTimeout,))
        timed_out = False
        try:
            with core.hidden_seed(exercise["seed"]), core.observing(recorder), \
                    _references_refused(exercise["name"], recorder):
                import torch
                torch.manual_seed(0)
                alarm.call(job["check_timeout"],
                           lambda h=hidden, r=recorder: checker.run_check(exercise["name"],
                                                                          r.wrap(answer), h))
        except CellTimeout:
            timed_out = True
        except BaseException:  # noqa: BLE001 - the judge decides from what was recorded
            pass
        channel.send(event="observations", key=key, hidden=hidden, records=recorder.records,
                     problem=recorder.problem, timed_out=timed_out, method=method)


def main(job: dict, fd: int) -> None:
    """Run the job's cells, then record every exercise's checks; report on descriptor ``fd``."""
    import time

    cells_deadline = time.monotonic() + float(job["cells_seconds"])   # startup counts too
    channel = _Channel(fd)
    alarm = _Alarm()
    import torch

    torch.set_num_threads(int(job["threads"]))
    for name in job["preload"]:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module is the notebook's problem
            pass
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from cnn_course.grading.protocol import Budget

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.colors = "NoColor"
    channel.send(event="ready")
    not_run = _run_cells(job, shell, alarm, channel, cells_deadline)
    channel.send(event="cells_done", not_run=not_run)
    # The checks get the memory the cells could not take (see the grader's limits).
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)
    os.write(1, ("\n" + tr("--- the checks ---") + "\n").encode())
    budget = Budget(max_bytes=int(job["observation_bytes"]))
    for exercise in job["exercises"]:
        _check(job, exercise, shell.user_ns, alarm, channel, budget)
    channel.send(event="done")
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(0)   # no atexit handlers: the learner may have registered some
