"""Grade learners' exercise notebooks.

    python -m cnn_course.grade submissions/ --csv grades.csv --json grades.json

Each notebook (or every ``*.ipynb`` under a folder) runs in a fresh worker process; then the
grader's own copy of the checkers runs every exercise's visible and hidden cases on the
learner's functions. Prints a table (a score per exercise, a total, one reason per notebook)
and exits 0 only if every notebook has full marks. The submitted files are only read.
See the instructors' page of the book for the threat model.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cnn_course.grading.chapters import ChapterError
from cnn_course.grading.grader import DEFAULT_SOLUTIONS, Grader, GradingOptions
from cnn_course.grading.report import format_table, write_csv, write_json
from cnn_course.grading.results import SubmissionResult
from cnn_course.grading.runner import Limits

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int | None:
    """``"6G"``, ``"512M"``, ``"100000"`` in bytes; ``"0"`` or ``"none"`` for no limit."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if text.strip().lower() == "none":
        return None
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 6G, 512M)")
    size = int(float(match[1]) * _UNITS[match[2].upper()])
    return size or None


def find_submissions(arguments: Sequence[Path]) -> list[Path]:
    """Files as given; folders expanded to their ``*.ipynb`` files (checkpoints skipped)."""
    found: list[Path] = []
    for argument in arguments:
        if argument.is_dir():
            found.extend(sorted(
                path for path in argument.rglob("*.ipynb")
                if not any(part.startswith(".") for part in path.relative_to(argument).parts)))
        else:
            found.append(argument)
    return list(dict.fromkeys(found))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_course.grade",
        description="Run learners' notebooks and score every exercise with the course's own "
                    "checkers, visible and hidden cases. Exit status 0 only if every "
                    "notebook has full marks.")
    parser.add_argument("submissions", nargs="+", type=Path,
                        help="notebooks, or folders searched for *.ipynb")
    parser.add_argument("--chapter", help="grade every notebook as this chapter (01_convolution "
                        "or 1); by default each notebook's chapter is recognised from its cells")
    parser.add_argument("--solutions", type=Path, default=DEFAULT_SOLUTIONS,
                        help="folder of solution notebooks that define the exercises "
                        "(default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="notebooks graded at once (default: the number of cores, "
                        "%(default)s)")
    parser.add_argument("--csv", type=Path, help="also write one row per notebook to this file")
    parser.add_argument("--json", type=Path, help="also write every detail to this file")
    parser.add_argument("--logs", type=Path, help="write what each notebook printed "
                        "(capped) to this folder")
    parser.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout,
                        metavar="SECONDS", help="time allowed per cell (default: %(default)g)")
    parser.add_argument("--timeout", type=float, default=Limits.notebook_timeout,
                        metavar="SECONDS",
                        help="time allowed for all cells of a notebook (default: %(default)g)")
    parser.add_argument("--check-timeout", type=float, default=Limits.check_timeout,
                        metavar="SECONDS", help="time allowed for one exercise's visible or "
                        "hidden cases (default: %(default)g)")
    parser.add_argument("--memory-limit", type=parse_size, default=Limits.memory_limit,
                        metavar="SIZE", help="address space allowed per notebook, e.g. 6G; "
                        "'none' for no limit (default: 8G)")
    parser.add_argument("--max-output", type=parse_size, default=Limits.max_output,
                        metavar="SIZE", help="output kept per notebook (default: 1M)")
    parser.add_argument("--full-runs", action="store_true", help="run training cells at full "
                        "size (by default notebooks run with CNN_COURSE_QUICK=1)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def _log_name(index: int, result: SubmissionResult) -> str:
    stem = re.sub(r"[^\w.-]+", "_", Path(result.path).stem)[:60]
    return f"{index:03d}_{stem}.log"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    jobs = max(1, args.jobs)
    limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.timeout,
                    check_timeout=args.check_timeout, memory_limit=args.memory_limit,
                    max_output=args.max_output or Limits.max_output,
                    threads=max(1, (os.cpu_count() or 1) // jobs), quick=not args.full_runs)
    try:
        grader = Grader(GradingOptions(solutions=args.solutions, chapter=args.chapter,
                                       jobs=jobs, limits=limits))
    except ChapterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for warning in (w for c in grader.chapters for w in c.warnings):
        print(f"warning: {warning}", file=sys.stderr)
    paths = find_submissions(args.submissions)
    if not paths:
        print("error: no notebooks found in " + ", ".join(map(str, args.submissions)),
              file=sys.stderr)
        return 2

    def progress(done: int, total: int, result: SubmissionResult) -> None:
        print(f"[{done}/{total}] {result.path}: {result.score}/{result.max_score} "
              f"({result.seconds:.1f} s)", file=sys.stderr, flush=True)

    started = time.monotonic()
    try:
        results = grader.grade_all(paths, None if args.quiet else progress)
    except KeyboardInterrupt:
        print("interrupted: no report written", file=sys.stderr)
        return 130
    elapsed = time.monotonic() - started
    print(format_table(results, grader.chapters, shutil.get_terminal_size((120, 24)).columns))
    print(f"graded in {elapsed:.1f} s with {jobs} job{'s' * (jobs != 1)}")
    meta = {"graded_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "python": platform.python_version(), "seconds": round(elapsed, 1), "jobs": jobs,
            "limits": vars(limits) | {"grace": limits.grace}}
    if args.csv:
        write_csv(results, grader.chapters, args.csv)
    if args.json:
        write_json(results, grader.chapters, meta, args.json)
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
        for index, result in enumerate(results, start=1):
            (args.logs / _log_name(index, result)).write_bytes(result.log)
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
