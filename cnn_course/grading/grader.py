"""Grade submitted notebooks: read, recognise the chapter, run in a worker, score.

One :class:`Grader` holds what every submission is graded against (the chapters, a snapshot
of the course package, the limits) and grades submissions in parallel, one worker process
each. Nothing a submission contains can stop the grading of another: every failure ends as
a :class:`~cnn_course.grading.results.SubmissionResult` with a reason.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cnn_course
from cnn_course.authoring import CHECK_TAG
from cnn_course.grading import flags
from cnn_course.grading.chapters import (
    Chapter,
    ExerciseSpec,
    best_match,
    defined_names,
    discover_chapters,
    find_chapter,
    similarity,
)
from cnn_course.grading.notebook import Cell, Unreadable, read_cells
from cnn_course.grading.results import CaseSetResult, ExerciseResult, SubmissionResult
from cnn_course.grading.runner import Attempt, Limits, kill_all, run_attempt
from cnn_course.grading.snapshot import take_snapshot

PACKAGE_DIR = Path(cnn_course.__file__).resolve().parent
DEFAULT_SOLUTIONS = PACKAGE_DIR.parent / "solutions"
EXPECTED_ERROR_TAG = "raises-exception"


@dataclass
class GradingOptions:
    solutions: Path = DEFAULT_SOLUTIONS
    chapter: str | None = None     # grade every submission as this chapter
    jobs: int = os.cpu_count() or 1
    limits: Limits = field(default_factory=Limits)
    max_attempts: int = 3          # a cell that kills the process is skipped on a new attempt
    package_dir: Path = PACKAGE_DIR  # the course package whose source the workers import


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.3g} {unit}"
    return f"{n} bytes"


def _ranges(indices: list[int]) -> str:
    return ", ".join(str(i) for i in indices)


class Grader:
    """Grades notebooks against the chapters found in ``options.solutions``."""

    def __init__(self, options: GradingOptions) -> None:
        self.options = options
        self.chapters = discover_chapters(options.solutions)
        self.expected = find_chapter(self.chapters, options.chapter) if options.chapter else None
        self.package = take_snapshot(options.package_dir)

    # ---- one submission ------------------------------------------------------------------

    def grade(self, path: Path) -> SubmissionResult:
        """Grade one notebook; never raises."""
        start = time.monotonic()
        result = SubmissionResult(path=str(path))
        try:
            self._grade(Path(path), result)
        except Exception as error:  # noqa: BLE001 - a grader bug must not stop the others
            result.status = "error"
            result.fatal = f"grader error: {type(error).__name__}: {error}"
        result.seconds = time.monotonic() - start
        return result

    def _grade(self, path: Path, result: SubmissionResult) -> None:
        if self.expected:
            result.chapter, result.max_score = self.expected.id, self.expected.max_score
        try:
            cells = read_cells(path)
        except Unreadable as error:
            result.status, result.fatal = "unreadable", str(error)
            return
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
                result.fatal = ("none of its cells or exercise functions belong to a chapter "
                                "of the course")
            return best
        if best is not None and best.id != self.expected.id:
            defined = set().union(*(defined_names(s) for s in sources))
            if score > similarity(self.expected, sources, defined):
                result.status = "wrong chapter"
                result.fatal = (f"this is the notebook of {best.id} ({best.title}), not of "
                                f"{self.expected.id}")
                return None
        return self.expected

    def _run(self, cells: list[Cell], chapter: Chapter, result: SubmissionResult) -> None:
        limits, code = self.options.limits, [c for c in cells if c.is_code]
        runnable = [c for c in code if CHECK_TAG not in c.tags]
        pending: list[ExerciseSpec] = list(chapter.exercises)
        events: dict[str, dict] = {}
        cell_ends: dict[int, dict] = {}
        stopped: dict[int, str] = {}
        not_run: list[int] = []
        changed: list[str] = []
        last: Attempt | None = None
        output_bytes = 0
        for _ in range(self.options.max_attempts):
            last = run_attempt(Path(self.options.package_dir).parent, self.package,
                               [{"index": c.index, "source": c.source}
                                for c in runnable if c.index not in stopped],
                               [asdict(e) for e in pending], list(chapter.preload), limits)
            output_bytes = max(output_bytes, last.output_bytes)
            cell_ends.update(last.cells)
            not_run = last.not_run
            changed = list(dict.fromkeys(changed + last.changed))
            events.update(last.exercises)
            pending = [e for e in pending if e.key not in events]
            if last.finished or not pending or last.stopped_at is None:
                break
            kind, where = last.stopped_at
            if kind == "cell" and isinstance(where, int):
                stopped[where] = last.why
            elif kind == "check" and isinstance(where, str):
                events[where] = {"problem": f"its check {last.why}"}
                pending = [e for e in pending if e.key != where]
            else:
                what = "while starting" if kind == "startup" else "between two cells"
                result.problems.append(f"the grading process {last.why} {what}: "
                                       f"{_tail(last.output)}")
                break
        self._cell_reports(cells, cell_ends, stopped, not_run, result)
        if changed:
            result.flags.append("its cells changed " + ", ".join(changed) + " (put back before "
                                "the checks)")
        if output_bytes > limits.max_output:
            result.notes.append(f"printed {_size(output_bytes)} of output; only the first "
                                f"{_size(limits.max_output)} was kept")
        result.log = last.output if last else b""
        result.peak_memory = last.peak_memory if last else {}
        for exercise in chapter.exercises:
            result.exercises.append(self._exercise_result(exercise, events.get(exercise.key),
                                                          cells, cell_ends, stopped, not_run))

    def _cell_reports(self, cells: list[Cell], ends: dict[int, dict], stopped: dict[int, str],
                      not_run: list[int], result: SubmissionResult) -> None:
        tags = {cell.index: cell.tags for cell in cells}
        memory = self.options.limits.memory_limit
        for index in sorted(set(ends) | set(stopped)):
            if index in stopped:
                result.problems.append(f"cell {index} {stopped[index]}; graded again without "
                                       "that cell")
                continue
            end = ends[index]
            status, error = end.get("status"), end.get("error")
            if status == "timeout":
                result.problems.append(f"cell {index} did not finish within "
                                       f"{float(end.get('limit', 0)):g} s and was stopped")
            elif status == "memory":
                limit = f" (limit {_size(memory)})" if memory else ""
                asked = re.search(r"tried to allocate (\d+) bytes", error or "")
                error = f"it asked for {_size(int(asked[1]))} more" if asked else error
                result.problems.append(f"cell {index} ran out of memory{limit}: {error}")
            elif status == "error" and EXPECTED_ERROR_TAG not in tags.get(index, ()):
                result.notes.append(f"cell {index} raised {error}")
        if not_run:
            result.problems.append(f"cells {_ranges(not_run)} were not run: the notebook "
                                   f"passed its {self.options.limits.notebook_timeout:g} s "
                                   "time limit")

    @staticmethod
    def _exercise_result(exercise: ExerciseSpec, event: dict | None, cells: list[Cell],
                         ends: dict[int, dict], stopped: dict[int, str], not_run: list[int]
                         ) -> ExerciseResult:
        if event is None:
            return ExerciseResult(exercise.module, exercise.name,
                                  problem="not checked: the grading process stopped first")
        problem = event.get("problem")
        if event.get("undefined"):
            problem += _why_undefined(exercise, cells, ends, stopped, not_run)

        def case_set(data: object) -> CaseSetResult | None:
            if not isinstance(data, dict):
                return None
            return CaseSetResult(bool(data.get("passed")), str(data.get("message", "")))

        return ExerciseResult(exercise.module, exercise.name, case_set(event.get("visible")),
                              case_set(event.get("hidden")), problem)

    # ---- many submissions ----------------------------------------------------------------

    def grade_all(self, paths: Iterable[Path],
                  progress: Callable[[int, int, SubmissionResult], None] | None = None
                  ) -> list[SubmissionResult]:
        """Grade every path, ``options.jobs`` at a time; results in the order given."""
        paths = list(paths)
        done, lock = 0, threading.Lock()

        def one(path: Path) -> SubmissionResult:
            nonlocal done
            result = self.grade(path)
            if progress:
                with lock:
                    done += 1
                    progress(done, len(paths), result)
            return result

        pool = ThreadPoolExecutor(max_workers=max(1, self.options.jobs))
        try:
            return list(pool.map(one, paths))
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            kill_all()
            raise
        finally:
            pool.shutdown(wait=True)


def _why_undefined(exercise: ExerciseSpec, cells: list[Cell], ends: dict[int, dict],
                   stopped: dict[int, str], not_run: list[int]) -> str:
    """Which cell should have defined the exercise's function, and what happened to it."""
    names = set(exercise.names)
    defining = [c for c in cells if c.is_code and names & defined_names(c.source)]
    if not defining:
        return " (no cell defines it: was the cell deleted?)"
    cell = defining[-1]
    if CHECK_TAG in cell.tags:
        return f" (it is defined in cell {cell.index}, which is tagged '{CHECK_TAG}' and not run)"
    if cell.index in stopped:
        return f" (cell {cell.index}, which defines it, was not run: it {stopped[cell.index]})"
    if cell.index in not_run:
        return f" (cell {cell.index}, which defines it, was not run: time limit)"
    end = ends.get(cell.index, {})
    if end.get("status") == "timeout":
        return f" (cell {cell.index}, which defines it, ran past its time limit)"
    if end.get("error"):
        return f" (cell {cell.index}, which defines it, raised {end['error']})"
    return ""


def _tail(output: bytes, limit: int = 200) -> str:
    text = " ".join(output.decode("utf-8", "replace").split())
    return ("…" + text[-limit:]) if len(text) > limit else (text or "no output")
