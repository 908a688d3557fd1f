"""How fast the grader gets through a class: notebooks per minute.

    python benchmarks/grading.py                 # 50 copies of the solved Chapter 1 notebook
    python benchmarks/grading.py --copies 10 50  # two class sizes, to see the cost grow linearly
    python benchmarks/grading.py --jobs 1

Grades copies of a solved notebook (every copy must get full marks) with ``--jobs`` workers at
a time and prints the rate with the machine, the date and the machine's load, which matters on
a shared computer. The grader's own start (reading the chapters) is not counted.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from cnn_course.device import describe_device
from cnn_course.grading.grader import DEFAULT_SOLUTIONS, Grader, GradingOptions
from cnn_course.grading.runner import Limits


def _load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        one, five, fifteen = os.getloadavg()
        return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f}"


def grade_copies(notebook: Path, copies: int, jobs: int) -> tuple[float, list[float]]:
    """Seconds to grade ``copies`` copies of ``notebook``, and each copy's own seconds."""
    grader = Grader(GradingOptions(jobs=jobs, limits=Limits(
        threads=max(1, (os.cpu_count() or 1) // jobs))))
    with tempfile.TemporaryDirectory(prefix="grading-benchmark-") as folder:
        paths = []
        for number in range(copies):
            path = Path(folder) / f"learner_{number:03d}.ipynb"
            shutil.copyfile(notebook, path)
            paths.append(path)
        start = time.perf_counter()
        results = grader.grade_all(paths)
        elapsed = time.perf_counter() - start
    failed = [r for r in results if not r.passed]
    if failed:
        raise SystemExit(f"{len(failed)} copies did not get full marks, e.g. "
                         f"{failed[0].path}: {failed[0].reason}")
    return elapsed, [r.seconds for r in results]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, nargs="+", default=[50],
                        help="how many copies to grade (several numbers: one run each)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="notebooks graded at once (default: the number of cores)")
    parser.add_argument("--notebook", type=Path,
                        default=DEFAULT_SOLUTIONS / "01_convolution.ipynb",
                        help="the solved notebook to copy (default: %(default)s)")
    args = parser.parse_args(argv)
    print(f"machine: {describe_device(torch.device('cpu'))} (graders run on the CPU)")
    print(f"date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"notebook: {args.notebook.name}, {args.jobs} job(s) at a time")
    for copies in args.copies:
        print(f"before: {_load()}", flush=True)
        elapsed, each = grade_copies(args.notebook, copies, args.jobs)
        print(f"{copies} notebooks in {elapsed:.1f} s: {copies / elapsed * 60:.1f} notebooks "
              f"per minute ({elapsed / copies:.2f} s per notebook; one notebook's own "
              f"grading took {min(each):.1f} to {max(each):.1f} s)")
        print(f"after: {_load()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
