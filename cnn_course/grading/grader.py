"""Grade submitted notebooks: read, recognise the chapter, run in the sandbox, judge.

One :class:`Grader` holds what every submission is graded against (the chapters, the hidden
seed, the limits) and grades submissions in parallel, one sandbox each. Every submission is
read into memory before any of them runs. A notebook's cells and the checks' observations
run in the sandbox (:mod:`~cnn_course.grading.runner`); the verdicts are computed here, by
the judge (:mod:`~cnn_course.grading.judge`). Nothing a submission contains can stop the
grading of another: every failure ends as a
:class:`~cnn_course.grading.results.SubmissionResult` with a reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cnn_course
from cnn_course.grading import flags, sandbox
from cnn_course.grading.chapters import (
    Chapter,
    ExerciseSpec,
    best_match,
    defined_names,
    discover_chapters,
    find_chapter,
    similarity,
)
from cnn_course.grading.judge import judge
from cnn_course.grading.notebook import Cell, Unreadable, read_cells
from cnn_course.grading.protocol import Budget
from cnn_course.grading.results import CaseSetResult, ExerciseResult, SubmissionResult
from cnn_course.grading.runner import Attempt, Limits, run_attempt
from cnn_course.messages import tr
from cnn_course.tools.notebook_format import CHECK_TAG

PACKAGE_DIR = Path(cnn_course.__file__).resolve().parent
DEFAULT_SOLUTIONS = PACKAGE_DIR.parent / "solutions"
EXPECTED_ERROR_TAG = "raises-exception"
CHECK_SHARE = 0.25   # of a notebook's time, kept for its checks
ADDRESS_SPACE_SLACK = 3 << 30   # address space a process may reserve beyond the memory limit


@dataclass
class GradingOptions:
    solutions: Path = DEFAULT_SOLUTIONS
    chapter: str | None = None     # grade every submission as this chapter
    jobs: int = os.cpu_count() or 1
    limits: Limits = field(default_factory=Limits)
    max_attempts: int = 5          # a cell that kills the sandbox is skipped on a new attempt
    seed: int | None = None        # the hidden cases' seed; None draws a fresh one
    sandbox: bool = True           # False: run notebooks unsandboxed (trusted notebooks only)
    max_processes: int | None = None   # overrides limits.max_processes
    max_message: int | None = None     # overrides limits.max_message


def exercise_seed(seed: int, key: str) -> int:
    """The hidden seed one exercise's cases use: derived from the run's seed, so that the
    run's seed itself never enters a sandbox."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.3g} {unit}"
    return tr("{count} bytes", count=n)


def _ranges(indices: list[int]) -> str:
    return ", ".join(str(i) for i in indices)


@dataclass
class Submission:
    """A submission as read at the start: its cells, or why it cannot be graded."""

    path: Path
    cells: list[Cell] | None = None
    unreadable: str | None = None


def read_submission(path: Path) -> Submission:
    try:
        return Submission(Path(path), cells=read_cells(Path(path)))
    except Unreadable as error:
        return Submission(Path(path), unreadable=str(error))
    except OSError as error:
        return Submission(Path(path), unreadable=tr("could not be read: {error}",
                                                    error=error.strerror))


class Grader:
    """Grades notebooks against the chapters found in ``options.solutions``."""

    def __init__(self, options: GradingOptions) -> None:
        self.options = options
        limits = options.limits
        if options.max_processes is not None:
            limits.max_processes = options.max_processes
        if options.max_message is not None:
            limits.max_message = options.max_message
        self.chapters = discover_chapters(options.solutions)
        self.expected = find_chapter(self.chapters, options.chapter) if options.chapter else None
        self.seed = options.seed if options.seed is not None else secrets.randbits(63)
        if options.sandbox:
            sandbox.check_sandbox()   # raises SandboxUnavailable with what to do
        self._live: set = set()
        self._live_lock = threading.Lock()
        self._data_lock = threading.Lock()
        self._data_ready = False

    # ---- one submission ------------------------------------------------------------------

    def grade(self, submission: Submission | Path) -> SubmissionResult:
        """Grade one notebook; never raises."""
        if not isinstance(submission, Submission):
            submission = read_submission(Path(submission))
        start = time.monotonic()
        result = SubmissionResult(path=str(submission.path))
        try:
            self._grade(submission, result)
        except Exception as error:  # noqa: BLE001 - a grader bug must not stop the others
            result.status = "error"
            result.fatal = tr("grader error: {error_type}: {error}",
                              error_type=type(error).__name__, error=error)
        result.seconds = time.monotonic() - start
        return result

    def _grade(self, submission: Submission, result: SubmissionResult) -> None:
        if self.expected:
            result.chapter, result.max_score = self.expected.id, self.expected.max_score
        if submission.cells is None:
            result.status, result.fatal = "unreadable", submission.unreadable
            return
        cells = submission.cells
        chapter = self._chapter_of(cells, result)
        if chapter is None:
            return
        result.chapter, result.max_score = chapter.id, chapter.max_score
        result.flags = flags.scan(cells, chapter)
        self._run(cells, chapter, result)

    def _chapter_of(self, cells: list[Cell], result: SubmissionResult) -> Chapter | None:
        sources = [cell.source for cell in cells]
        best, score = best_match(self.chapters, sources)
        if self.expected is None:
            if best is None:
                result.status = "unrecognised"
                result.fatal = tr("none of its cells or exercise functions belong to a "
                                  "chapter of the course")
            return best
        if best is not None and best.id != self.expected.id:
            defined = set().union(*(defined_names(s) for s in sources))
            if score > similarity(self.expected, sources, defined):
                result.status = "wrong chapter"
                result.fatal = tr("this is the notebook of {chapter} ({title}), not of "
                                  "{expected}", chapter=best.id, title=best.title,
                                  expected=self.expected.id)
                return None
        return self.expected

    def _job(self, cells: list[dict], exercises: list[ExerciseSpec], chapter: Chapter,
             left: float) -> dict:
        limits = self.options.limits
        memory = limits.memory_limit
        return {"cells": cells,
                "exercises": [asdict(e) | {"seed": exercise_seed(self.seed, e.key)}
                              for e in exercises],
                "preload": list(chapter.preload),
                "cell_timeout": limits.cell_timeout,
                # A quarter of the time left is kept for the checks: a notebook whose cells
                # are slow still has its finished exercises checked.
                "cells_seconds": max(left * (1 - CHECK_SHARE), 0.01),
                "check_timeout": limits.check_timeout, "threads": limits.threads,
                # Per process, address space: PyTorch reserves far more than it uses.
                "memory_cells": (memory + ADDRESS_SPACE_SLACK) if memory else 0,
                "memory_hard": (memory + ADDRESS_SPACE_SLACK + limits.check_memory)
                if memory else 0,
                "observation_bytes": limits.max_message}

    def _prepare_data(self, chapter: Chapter) -> None:
        """The datasets are read-only in the sandbox: build here, once, the cache that the
        chapter's notebook would otherwise write on first use (CIFAR-10 decoded from the
        offline mirror). A dataset that cannot be prepared is the notebook's to report."""
        if "cnn_course.lessons.cifar" not in chapter.preload:
            return
        with self._data_lock:
            if not self._data_ready:
                from cnn_course.data import DataUnavailable, load_cifar10
                with contextlib.suppress(DataUnavailable, OSError, RuntimeError):
                    load_cifar10(train=True)
                self._data_ready = True

    def _run(self, cells: list[Cell], chapter: Chapter, result: SubmissionResult) -> None:
        self._prepare_data(chapter)
        limits = self.options.limits
        deadline = time.monotonic() + limits.notebook_timeout
        runnable = [c for c in cells if c.is_code and CHECK_TAG not in c.tags]
        pending: list[ExerciseSpec] = list(chapter.exercises)
        observations: dict[tuple[str, bool], dict] = {}
        problems: dict[str, dict] = {}
        cell_ends: dict[int, dict] = {}
        stopped: dict[int, str] = {}
        not_run: list[int] = []
        output_bytes = peak_memory = peak_processes = 0
        last: Attempt | None = None
        for _ in range(self.options.max_attempts):
            left = deadline - time.monotonic()
            if left <= 0:
                result.problems.append(tr("the notebook's time limit of {seconds:g} s passed",
                                          seconds=limits.notebook_timeout))
                break
            job = self._job([{"index": c.index, "source": c.source}
                             for c in runnable if c.index not in stopped],
                            pending, chapter, left)
            last = run_attempt(job, limits, deadline, self.options.sandbox, self._live,
                               self._live_lock)
            output_bytes += last.output_bytes
            peak_memory = max(peak_memory, last.peak_memory)
            peak_processes = max(peak_processes, last.peak_processes)
            cell_ends.update(last.cells)
            not_run = last.not_run
            for (key, hidden), event in last.observations.items():
                observations.setdefault((key, hidden), event)
            for key, event in last.problems.items():
                problems.setdefault(key, event)
            pending = [e for e in pending if e.key not in problems
                       and (e.key, True) not in observations]
            if last.finished or not pending or last.stopped_at is None:
                break
            kind, where = last.stopped_at
            if kind == "cell" and isinstance(where, int) and where not in stopped:
                stopped[where] = last.why
            elif kind == "check" and isinstance(where, str):
                problems[where] = {"problem": tr("its check {why}", why=last.why)}
                pending = [e for e in pending if e.key != where]
            else:
                if kind == "startup":
                    result.problems.append(tr("the sandbox {why} while starting: {output}",
                                              why=last.why, output=_tail(last.output)))
                else:
                    result.problems.append(tr("the sandbox {why} between two steps: {output}",
                                              why=last.why, output=_tail(last.output)))
                break
        self._cell_reports(cells, cell_ends, stopped, not_run, result)
        if output_bytes > limits.max_output:
            result.notes.append(tr("printed {size} of output; only the first {kept} was kept",
                                   size=_size(output_bytes), kept=_size(limits.max_output)))
        result.log = last.output if last else b""
        result.peak_memory = {"resident": peak_memory, "processes": peak_processes}
        budget = Budget(max_bytes=limits.max_message)
        for exercise in chapter.exercises:
            result.exercises.append(self._exercise_result(
                exercise, problems.get(exercise.key), observations, budget, cells, cell_ends,
                stopped))

    def _cell_reports(self, cells: list[Cell], ends: dict[int, dict], stopped: dict[int, str],
                      not_run: list[int], result: SubmissionResult) -> None:
        tags = {cell.index: cell.tags for cell in cells}
        memory = self.options.limits.memory_limit
        for index in sorted(set(ends) | set(stopped)):
            if index in stopped:
                result.problems.append(tr("cell {index} {why}; graded again without that cell",
                                          index=index, why=stopped[index]))
                continue
            end = ends[index]
            status, error = end.get("status"), end.get("error")
            if status == "timeout":
                result.problems.append(tr("cell {index} did not finish within {seconds:g} s "
                                          "and was stopped", index=index,
                                          seconds=self.options.limits.cell_timeout))
            elif status == "memory":
                limit = tr(" (limit {size})", size=_size(memory)) if memory else ""
                asked = re.search(r"tried to allocate (\d+) bytes", error or "")
                error = tr("it asked for {size} more", size=_size(int(asked[1]))) \
                    if asked else error
                result.problems.append(tr("cell {index} ran out of memory{limit}: {error}",
                                          index=index, limit=limit, error=error))
            elif status == "error" and EXPECTED_ERROR_TAG not in tags.get(index, ()):
                result.notes.append(tr("cell {index} raised {error}", index=index,
                                       error=error))
        if not_run:
            limit = self.options.limits.notebook_timeout
            result.problems.append(tr("cells {cells} were not run: the notebook passed the "
                                      "{seconds:g} s its cells may take ({share:.0%} of its "
                                      "{limit:g} s time limit)", cells=_ranges(not_run),
                                      seconds=limit * (1 - CHECK_SHARE),
                                      share=1 - CHECK_SHARE, limit=limit))

    def _exercise_result(self, exercise: ExerciseSpec, problem: dict | None,
                         observations: dict, budget: Budget, cells: list[Cell],
                         ends: dict[int, dict], stopped: dict[int, str]) -> ExerciseResult:
        if problem is not None:
            text = problem["problem"]
            if problem.get("undefined"):
                text += _why_undefined(exercise, cells, ends, stopped)
            return ExerciseResult(exercise.module, exercise.name, problem=text)
        verdicts = {}
        for hidden in (False, True):
            observation = observations.get((exercise.key, hidden))
            if observation is None:
                break
            verdict = judge(exercise.module, exercise.name, observation,
                            exercise_seed(self.seed, exercise.key), budget,
                            self.options.limits.threads, self.options.limits.check_timeout)
            verdicts[hidden] = CaseSetResult(verdict.passed, verdict.message,
                                             verdict.method is not None)
            if not verdict.passed:
                break
        if not verdicts:
            return ExerciseResult(exercise.module, exercise.name,
                                  problem=tr("not checked: the sandbox stopped first"))
        return ExerciseResult(exercise.module, exercise.name, verdicts.get(False),
                              verdicts.get(True))

    # ---- many submissions ----------------------------------------------------------------

    def grade_all(self, paths: Iterable[Path],
                  progress: Callable[[int, int, SubmissionResult], None] | None = None
                  ) -> list[SubmissionResult]:
        """Grade every path, ``options.jobs`` at a time; results in the order given. Every
        file is read before any notebook runs."""
        submissions = [read_submission(Path(p)) for p in paths]
        done, lock = 0, threading.Lock()

        def one(submission: Submission) -> SubmissionResult:
            nonlocal done
            result = self.grade(submission)
            if progress:
                with lock:
                    done += 1
                    progress(done, len(submissions), result)
            return result

        pool = ThreadPoolExecutor(max_workers=max(1, self.options.jobs))
        try:
            return list(pool.map(one, submissions))
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            self.kill_all()
            raise
        finally:
            pool.shutdown(wait=True)

    def kill_all(self) -> None:
        """Kill every sandbox still running (when the grader itself is interrupted)."""
        with self._live_lock:
            for run in list(self._live):
                run.kill("interrupted")


def _why_undefined(exercise: ExerciseSpec, cells: list[Cell], ends: dict[int, dict],
                   stopped: dict[int, str]) -> str:
    """Which cell should have defined the exercise's function, and what happened to it."""
    names = set(exercise.names)
    defining = [c for c in cells if c.is_code and names & defined_names(c.source)]
    if not defining:
        return tr(" (no cell defines it: was the cell deleted?)")
    cell = defining[-1]
    if CHECK_TAG in cell.tags:
        return tr(" (it is defined in cell {index}, which is tagged '{tag}' and not run)",
                  index=cell.index, tag=CHECK_TAG)
    if cell.index in stopped:
        return tr(" (cell {index}, which defines it, was not run: it {why})", index=cell.index,
                  why=stopped[cell.index])
    if cell.index not in ends:
        return tr(" (cell {index}, which defines it, was not run: time limit)",
                  index=cell.index)
    end = ends.get(cell.index, {})
    if end.get("status") == "timeout":
        return tr(" (cell {index}, which defines it, ran past its time limit)",
                  index=cell.index)
    if end.get("error"):
        return tr(" (cell {index}, which defines it, raised {error})", index=cell.index,
                  error=end["error"])
    return ""


def _tail(output: bytes, limit: int = 200) -> str:
    text = " ".join(output.decode("utf-8", "replace").split())
    return ("…" + text[-limit:]) if len(text) > limit else (text or tr("no output"))
