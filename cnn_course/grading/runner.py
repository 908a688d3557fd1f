"""Run one attempt at a submission in the sandbox and collect its events, under the grader's
own deadlines and size limits.

The sandbox's events are claims: the runner checks their shape and sizes and keeps them as
data. Its deadlines come from the grader's limits alone: a cell gets ``cell_timeout`` from
the moment the sandbox says it starts (plus a grace period for the sandbox's own alarm to
fire), a check ``check_timeout``, and the whole attempt never outlives the notebook's
deadline. When one passes, or the monitor finds the sandbox over its memory or process
limit, every process of the sandbox is killed.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from cnn_course.grading import sandbox
from cnn_course.grading.worker import BOOTSTRAP, read_frame
from cnn_course.messages import tr

STARTUP_TIMEOUT = 120.0   # starting Python and importing torch, on a busy machine


@dataclass
class Limits:
    """How long and how big one submission may be, all its processes and attempts together."""

    cell_timeout: float = 120.0
    notebook_timeout: float = 900.0      # wall time for everything: startup, cells, checks
    check_timeout: float = 60.0
    memory_limit: int | None = 8 << 30   # bytes resident, all processes together
    check_memory: int = 1 << 30          # kept free for the checks (see worker.main)
    max_output: int = 1 << 20            # bytes of printed output kept
    max_message: int = 64 << 20          # bytes of events (observations) accepted
    max_processes: int = 64
    scratch: int = 512 << 20             # bytes of /tmp in the sandbox
    threads: int = 1
    quick: bool = True

    @property
    def grace(self) -> float:
        """How long past a limit the sandbox's own alarm may take before it is killed."""
        return min(10.0, max(2.0, self.cell_timeout / 2))


@dataclass
class Attempt:
    """What one sandbox run reported before it finished or was stopped."""

    cells: dict[int, dict] = field(default_factory=dict)          # index -> end event
    observations: dict[tuple[str, bool], dict] = field(default_factory=dict)
    problems: dict[str, dict] = field(default_factory=dict)       # key -> exercise event
    not_run: list[int] = field(default_factory=list)   # cells left when their time ran out
    finished: bool = False
    stopped_at: tuple[str, object] | None = None   # ("cell", index) / ("check", key) / ...
    why: str = ""
    output: bytes = b""
    output_bytes: int = 0
    peak_memory: int = 0
    peak_processes: int = 0


def _read_output(stream, attempt: Attempt, keep: int) -> None:
    chunks, kept = [], 0
    try:
        for chunk in iter(lambda: stream.read1(1 << 16), b""):
            attempt.output_bytes += len(chunk)
            if kept < keep:
                chunks.append(chunk[:keep - kept])
                kept += len(chunks[-1])
    except (OSError, ValueError):
        pass
    attempt.output = b"".join(chunks)


def _read_events(stream, events: queue.Queue, budget: int) -> None:
    left = budget
    while True:
        try:
            event = read_frame(stream, left)
        except (OSError, ValueError) as error:
            events.put(("too much" if "bytes" in str(error) else "bad", str(error)))
            return
        if event is None:
            events.put(("end", None))
            return
        left -= event.pop("_bytes", 0)
        events.put(("event", event))


def _describe_exit(run: sandbox.Run) -> str:
    try:
        code = run.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return tr("it did not exit")
    if code < 0 or code > 128:   # bwrap reports a signal as 128 + its number
        number = -code if code < 0 else code - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = tr("signal {number}", number=number)
        return tr("it was killed by {signal}", signal=name)
    return tr("it exited with code {code}", code=code)


def _is_key(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 200


def run_attempt(job: dict, limits: Limits, deadline: float, sandboxed: bool,
                live: set, live_lock: threading.Lock) -> Attempt:
    """Run ``job`` in a new sandbox until it ends, a limit passes, or ``deadline``
    (``time.monotonic()``); never raises for the learner's sake."""
    attempt = Attempt()
    payload = json.dumps(job).encode()
    memory_hard = None if limits.memory_limit is None else \
        limits.memory_limit + limits.check_memory
    sandbox_limits = sandbox.SandboxLimits(
        memory=memory_hard, processes=limits.max_processes, scratch=limits.scratch,
        threads=limits.threads)
    run = sandbox.start([sys.executable, "-I", "-u", "-c", BOOTSTRAP],
                        b"%d\n" % len(payload) + payload, sandbox_limits, limits.quick,
                        sandboxed)
    with live_lock:
        live.add(run)
    events: queue.Queue = queue.Queue()
    readers = [threading.Thread(target=_read_events, args=(run.events, events,
                                                           limits.max_message), daemon=True),
               threading.Thread(target=_read_output, args=(run.output, attempt,
                                                           limits.max_output), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        _watch(run, events, attempt, limits, deadline, [c["index"] for c in job["cells"]])
    finally:
        run.close()
        for reader in readers:
            reader.join(timeout=10)
        with live_lock:
            live.discard(run)
        attempt.peak_memory = run.usage.peak_memory
        attempt.peak_processes = run.usage.peak_processes
    return attempt


def _watch(run: sandbox.Run, events: queue.Queue, attempt: Attempt, limits: Limits,
           deadline: float, order: list[int]) -> None:
    """Follow the sandbox's events until it ends or a limit passes. A cell may only start
    after the one that started before it, in the job's order: a forged start of another
    cell is ignored (it could only make the grader skip the wrong cell)."""
    position = {index: number for number, index in enumerate(order)}
    last_started = -1
    where: tuple[str, object] = ("startup", None)
    step_deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        wait = min(step_deadline, deadline) - time.monotonic()
        try:
            kind, event = events.get(timeout=max(0.0, min(wait, 0.25)))
        except queue.Empty:
            if run.usage.killed_for:
                attempt.stopped_at = where
                attempt.why = tr("was stopped: it {reason}", reason=run.usage.killed_for)
                return
            if time.monotonic() >= min(step_deadline, deadline):
                run.kill("time")
                attempt.stopped_at = where
                attempt.why = (tr("was stopped: the notebook's time limit of {seconds:g} s "
                                  "passed", seconds=limits.notebook_timeout)
                               if time.monotonic() >= deadline else
                               tr("did not stop at its time limit and was killed"))
                return
            continue
        if kind != "event":
            if run.usage.killed_for:
                attempt.why = tr("was stopped: it {reason}", reason=run.usage.killed_for)
            elif kind == "end":
                attempt.why = tr("ended the Python process: {how}", how=_describe_exit(run))
            else:
                run.kill("message")
                attempt.why = tr("was stopped: it {reason}", reason=event)
            attempt.stopped_at = where
            return
        name = event.get("event")
        if name == "ready":
            where, step_deadline = ("between", None), time.monotonic() + STARTUP_TIMEOUT
        elif name == "cell" and position.get(event.get("index"), -1) >= 0:
            if event.get("phase") == "start":
                if position[event["index"]] <= last_started:
                    continue
                last_started = position[event["index"]]
                where = ("cell", event["index"])
                step_deadline = time.monotonic() + limits.cell_timeout + limits.grace
            else:
                attempt.cells[event["index"]] = {
                    "status": event.get("status") if event.get("status") in
                    ("ok", "timeout", "memory", "error") else "error",
                    "error": str(event.get("error") or "")[:400] or None}
                where, step_deadline = ("between", None), time.monotonic() + STARTUP_TIMEOUT
        elif name == "cells_done":
            not_run = event.get("not_run")
            if isinstance(not_run, list):
                attempt.not_run = [i for i in not_run if isinstance(i, int)][:10_000]
            where, step_deadline = ("between", None), time.monotonic() + STARTUP_TIMEOUT
        elif name == "check" and _is_key(event.get("key")):
            where = ("check", event["key"])
            step_deadline = time.monotonic() + limits.check_timeout + limits.grace
        elif name == "observations" and _is_key(event.get("key")):
            hidden = event.get("hidden") is True
            attempt.observations.setdefault((event["key"], hidden), event)
            where, step_deadline = ("between", None), time.monotonic() + STARTUP_TIMEOUT
        elif name == "exercise" and _is_key(event.get("key")):
            attempt.problems.setdefault(event["key"], {
                "problem": str(event.get("problem") or tr("could not be checked"))[:400],
                "undefined": event.get("undefined") is True})
        elif name == "done":
            attempt.finished = True
            return
