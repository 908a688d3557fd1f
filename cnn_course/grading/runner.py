"""Start a grading worker process, feed it one job, and watch it.

The worker is a fresh ``python -I`` process in its own process group and its own scratch
folder, with a memory limit (``RLIMIT_AS``), no GPU, quick mode on, and stdin closed after
the job is read. Its events come back on a dedicated pipe; its stdout and stderr go to
another, of which only the first ``max_output`` bytes are kept. If a cell or a check
outlives its limit by a grace period (its code ignored the worker's own alarm), or the
process dies, the whole process group is killed and the attempt says where it stopped.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# Runs in the worker before anything else: limits, then the package from the snapshot.
_BOOTSTRAP = """\
import json, resource, sys
_job = json.loads(sys.stdin.buffer.read(int(sys.stdin.buffer.readline())))
sys.stdin.close()
if _job["memory_limit"]:
    _soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    _limit = _job["memory_limit"] if _hard == resource.RLIM_INFINITY \
        else min(_hard, _job["memory_limit"])
    resource.setrlimit(resource.RLIMIT_AS, (_limit, _limit))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
_ns = {"__name__": "cnn_course_grading_bootstrap"}
exec(compile(_job["package"]["cnn_course/grading/snapshot.py"], "snapshot.py", "exec"), _ns)
_finder = _ns["install"](_job["package_root"], _job["package"])
from cnn_course.grading.worker import main
main(_job, _finder)
"""

STARTUP_TIMEOUT = 180.0   # starting Python, importing torch, on a busy machine
_LINE_LIMIT = 1 << 20
_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()
_stopping = threading.Event()


@dataclass
class Limits:
    """How long and how big one submission may be."""

    cell_timeout: float = 120.0
    notebook_timeout: float = 600.0
    check_timeout: float = 60.0
    memory_limit: int | None = 8 << 30   # bytes of address space; None for no limit
    max_output: int = 1 << 20            # bytes of output kept
    threads: int = 1
    quick: bool = True

    @property
    def grace(self) -> float:
        """How long past a limit the worker may take to stop by itself before it is killed."""
        return min(10.0, max(2.0, self.cell_timeout / 2))


@dataclass
class Attempt:
    """What one worker process did before it finished or was stopped."""

    cells: dict[int, dict] = field(default_factory=dict)       # index -> end event
    exercises: dict[str, dict] = field(default_factory=dict)   # key -> exercise event
    not_run: list[int] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)   # what the cells changed, put back
    finished: bool = False
    stopped_at: tuple[str, object] | None = None   # ("cell", index) / ("check", key) / ...
    why: str = ""
    output: bytes = b""
    output_bytes: int = 0
    peak_memory: dict[str, int] = field(default_factory=dict)   # from the "done" event


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (perhaps out of memory)" if -code == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


def _read_events(stream, events: queue.Queue) -> None:
    for line in iter(lambda: stream.readline(_LINE_LIMIT), b""):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.put(event)
    events.put(None)


def _read_output(stream, attempt: Attempt, keep: int) -> None:
    chunks, kept = [], 0
    for chunk in iter(lambda: stream.read1(1 << 16), b""):
        attempt.output_bytes += len(chunk)
        if kept < keep:
            chunks.append(chunk[:keep - kept])
            kept += len(chunks[-1])
    attempt.output = b"".join(chunks)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_all() -> None:
    """Kill every worker still running (when the grader itself is interrupted)."""
    _stopping.set()
    with _live_lock:
        for process in list(_live):
            _kill(process)


def _environment(limits: Limits, scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    threads = str(limits.threads)
    env.update(MPLBACKEND="Agg", CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS=threads,
               MKL_NUM_THREADS=threads, IPYTHONDIR=str(scratch / ".ipython"),
               TMPDIR=str(scratch), JUPYTER_PLATFORM_DIRS="1")
    if limits.quick:
        env["CNN_COURSE_QUICK"] = "1"
    return env


def run_attempt(package_root: Path, package: dict[str, str], cells: list[dict],
                exercises: list[dict], preload: list[str], limits: Limits) -> Attempt:
    """Run the given cells and checks in a new worker; never raises for the learner's sake."""
    attempt = Attempt()
    if _stopping.is_set():
        attempt.stopped_at, attempt.why = ("startup", None), "was not started: interrupted"
        return attempt
    read_end, write_end = os.pipe()
    with tempfile.TemporaryDirectory(prefix="cnn-grade-") as scratch:
        job = {"package_root": str(package_root), "package": package,
               "package_dir": str(package_root / "cnn_course"), "result_fd": write_end,
               "cells": cells, "exercises": exercises, "preload": preload,
               "cell_timeout": limits.cell_timeout, "notebook_timeout": limits.notebook_timeout,
               "check_timeout": limits.check_timeout, "memory_limit": limits.memory_limit,
               "threads": limits.threads}
        payload = json.dumps(job).encode()
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-u", "-c", _BOOTSTRAP], cwd=scratch,
                env=_environment(limits, Path(scratch)), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=(write_end,),
                start_new_session=True)
        finally:
            os.close(write_end)
        with _live_lock:
            _live.add(process)
        events: queue.Queue = queue.Queue()
        readers = [threading.Thread(target=_read_events, args=(os.fdopen(read_end, "rb"), events),
                                    daemon=True),
                   threading.Thread(target=_read_output,
                                    args=(process.stdout, attempt, limits.max_output),
                                    daemon=True)]
        for reader in readers:
            reader.start()
        try:
            process.stdin.write(b"%d\n" % len(payload) + payload)
            process.stdin.close()
        except OSError:
            pass  # it died at once; the watch below says so
        try:
            _watch(process, events, attempt, limits)
        finally:
            _kill(process)   # its whole process group: children the notebook left running too
            process.wait()
            with _live_lock:
                _live.discard(process)
            for reader in readers:
                reader.join(timeout=10)
    return attempt


def _watch(process: subprocess.Popen, events: queue.Queue, attempt: Attempt,
           limits: Limits) -> None:
    where: tuple[str, object] = ("startup", None)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            event = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            _kill(process)
            attempt.stopped_at = where
            attempt.why = "did not stop at its time limit and was killed"
            return
        if event is None:   # the worker closed its pipe: it ended
            if not attempt.finished:
                try:
                    code = process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    code = None
                attempt.stopped_at = where
                attempt.why = f"ended the Python process: it {_describe_exit(code)}"
            return
        kind = event.get("event")
        if kind == "ready":
            where, deadline = ("between", None), time.monotonic() + STARTUP_TIMEOUT
        elif kind == "cell" and event.get("phase") == "start":
            where = ("cell", event.get("index"))
            deadline = time.monotonic() + float(event.get("limit", 0)) + limits.grace
        elif kind == "cell":
            attempt.cells[event.get("index")] = event
            where, deadline = ("between", None), time.monotonic() + STARTUP_TIMEOUT
        elif kind == "cells_done":
            attempt.not_run = list(event.get("not_run", []))
            changed = event.get("changed")
            attempt.changed = [str(w) for w in changed][:20] if isinstance(changed, list) else []
        elif kind == "check":
            where = ("check", event.get("key"))
            deadline = time.monotonic() + float(event.get("limit", 0)) + limits.grace
        elif kind == "exercise":
            attempt.exercises.setdefault(event.get("key"), event)
            where, deadline = ("between", None), time.monotonic() + STARTUP_TIMEOUT
        elif kind == "done":
            attempt.finished = True
            attempt.peak_memory = {k: int(v) for k, v in event.get("memory", {}).items()
                                   if isinstance(v, int)}
            return   # the worker exits now; a child it left may hold the pipe open
