"""How fast the grader gets through a class: notebooks per minute, with the sandbox and without.

    python benchmarks/grading.py                 # 50 copies of the solved Chapter 1 notebook
    python benchmarks/grading.py --copies 10 50  # two class sizes, to see the cost grow linearly
    python benchmarks/grading.py --jobs 1
    python benchmarks/grading.py --quick         # a smoke run: 2 copies in each mode

Grades copies of a solved notebook (every copy must get full marks) with ``--jobs`` workers at
a time, once in the bubblewrap sandbox and once without it (``--no-sandbox``), and prints both
rates and the sandbox's cost per notebook with the machine, the date and the machine's load,
which matters on a shared computer. The grader's own start (reading the chapters) is not
counted. A full run also writes its figures, each with the machine, date and load average when
it started, to ``benchmarks/results/grading_cpu.json``; a quick run writes only where
``--output`` says. Goal on a 2-core machine with ``--jobs 2``: at least 30 notebooks per
minute in the sandbox, and a sandbox overhead under 1 s per notebook.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from cnn_course.device import describe_device
from cnn_course.grading.grader import DEFAULT_SOLUTIONS, Grader, GradingOptions
from cnn_course.grading.runner import Limits
from cnn_course.tools.benchmark_results import load_average, results_path, stamp, write_results

QUICK_COPIES = 2


def grade_copies(notebook: Path, copies: int, jobs: int, sandboxed: bool = True
                 ) -> tuple[float, list[float]]:
    """Seconds to grade ``copies`` copies of ``notebook``, and each copy's own seconds."""
    grader = Grader(GradingOptions(jobs=jobs, sandbox=sandboxed, seed=0, limits=Limits(
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
    parser.add_argument("--copies", type=int, nargs="+", default=None,
                        help="how many copies to grade (several numbers: one run each; "
                             f"default 50, quick {QUICK_COPIES})")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="notebooks graded at once (default: the number of cores)")
    parser.add_argument("--notebook", type=Path,
                        default=DEFAULT_SOLUTIONS / "01_convolution.ipynb",
                        help="the solved notebook to copy (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run: {QUICK_COPIES} copies; figures not meaningful")
    parser.add_argument("--output", type=Path, default=None,
                        help="results file (default: benchmarks/results/grading_cpu.json; "
                             "quick runs write only if this is given)")
    args = parser.parse_args(argv)
    copies = args.copies or ([QUICK_COPIES] if args.quick else [50])
    machine = describe_device(torch.device("cpu"))
    print("grading benchmark" + (" (--quick: figures not meaningful)" if args.quick else ""))
    print(f"machine: {machine} (graders run on the CPU)")
    print(f"date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"notebook: {args.notebook.name}, {args.jobs} job(s) at a time")
    runs = []
    for count in copies:
        per_mode = {}
        for sandboxed in (True, False):
            label = "sandbox" if sandboxed else "no sandbox"
            measured = stamp(torch.device("cpu"))
            print(f"before ({label}): load average {measured['load_average_1_5_15']}",
                  flush=True)
            elapsed, each = grade_copies(args.notebook, count, args.jobs, sandboxed)
            print(f"{label}: {count} notebooks in {elapsed:.1f} s: "
                  f"{count / elapsed * 60:.1f} notebooks per minute ({elapsed / count:.2f} s "
                  f"per notebook; one notebook's own grading took {min(each):.1f} to "
                  f"{max(each):.1f} s)")
            after = load_average()
            print(f"after ({label}): load average {after}", flush=True)
            per_mode[sandboxed] = {
                "sandbox": sandboxed, "copies": count, "seconds": round(elapsed, 1),
                "notebooks_per_minute": round(count / elapsed * 60, 1),
                "seconds_per_notebook": round(elapsed / count, 2),
                "one_notebook_seconds": [round(min(each), 1), round(max(each), 1)],
                "mean_notebook_seconds": round(sum(each) / len(each), 2),
                "measured": measured, "load_average_after_1_5_15": after}
            runs.append(per_mode[sandboxed])
        # What the sandbox costs a class: the difference in seconds per notebook (the run's
        # time over the number of notebooks), with the jobs running side by side.
        overhead = per_mode[True]["seconds_per_notebook"] - \
            per_mode[False]["seconds_per_notebook"]
        print(f"sandbox overhead: {overhead:+.2f} s per notebook ({count} copies, "
              f"{args.jobs} job(s) at a time)")
        runs[-1]["sandbox_overhead_seconds"] = runs[-2]["sandbox_overhead_seconds"] = \
            round(overhead, 2)
    results = {"benchmark": "benchmarks/grading.py", "device": "cpu", "quick": args.quick,
               "notebook": args.notebook.name, "jobs": args.jobs,
               "cpu_count": os.cpu_count(), "runs": runs}
    output = args.output or (None if args.quick else results_path("grading", "cpu"))
    if output is not None:
        write_results(output, results)
        print(f"results written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
