"""Grade learners' exercise notebooks.

    python -m cnn_course.grade submissions/ --csv grades.csv --json grades.json
    python -m cnn_course.grade submissions/ --shard 2/8 --seed 1234 --json shard-2.json
    python -m cnn_course.grade merge shard-*.json --csv grades.csv --json grades.json

Each notebook (or every ``*.ipynb`` under a folder) runs in a bubblewrap sandbox, which
records what the learner's functions return on every exercise's visible and hidden cases;
the checkers then judge those results outside the sandbox. Prints a table (a score per
exercise, a total, one reason per notebook) and exits 0 only if every notebook has full
marks, 2 for a usage error or an output that could not be written. The submitted files are
only read. See the instructors' page of the book for what is guaranteed.

``--shard K/N`` grades a stable K-th of the notebooks (see :mod:`cnn_course.grading.shards`);
``merge`` combines the shards' JSON reports (see :mod:`cnn_course.grading.merge`). ``merge``
is the subcommand only as the first argument and only when no file or folder named ``merge``
exists in the current folder; there, ``merge`` is a submission folder and
``python -m cnn_course.grading.merge`` merges.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cnn_course.grading import merge
from cnn_course.grading.chapters import Chapter, ChapterError
from cnn_course.grading.grader import DEFAULT_SOLUTIONS, Grader, GradingOptions
from cnn_course.grading.report import (
    NO_SANDBOX_WARNING,
    ReportPathError,
    check_output_folder,
    format_table,
    output_problems,
    write_csv,
    write_json,
    write_log,
    write_output,
)
from cnn_course.grading.results import SubmissionResult
from cnn_course.grading.runner import Limits
from cnn_course.grading.safe_text import clean
from cnn_course.grading.sandbox import SandboxUnavailable
from cnn_course.grading.shards import parse_shard, select
from cnn_course.messages import ENGLISH, LANGUAGES, apply_language_option, tr

SEED_VARIABLE = "CNN_COURSE_GRADE_SEED"

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int | None:
    """``"6G"``, ``"512M"``, ``"100000"`` in bytes; ``"0"`` or ``"none"`` for no limit."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if text.strip().lower() == "none":
        return None
    if not match:
        raise argparse.ArgumentTypeError(tr("not a size: {text!r} (examples: 6G, 512M)",
                                            text=text))
    size = int(float(match[1]) * _UNITS[match[2].upper()])
    return size or None


def _positive_size(text: str) -> int:
    size = parse_size(text)
    if size is None:
        raise argparse.ArgumentTypeError(tr("need a size above 0: {text!r}", text=text))
    return size


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(tr("need a whole number above 0: {text!r}",
                                            text=text))
    return int(text)


def parse_seed(text: str) -> int:
    """A hidden seed: a whole number from 0 to 2**63 - 1."""
    text = text.strip()
    if not text.isdigit() or int(text) >= 1 << 63:
        raise argparse.ArgumentTypeError(tr("not a seed: {text!r} (a whole number from 0 to "
                                            "2**63 - 1)", text=clean(text, 40)))
    return int(text)


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
        description=tr("Run learners' notebooks and score every exercise with the course's own "
                       "checkers, visible and hidden cases. Exit status 0 only if every "
                       "notebook has full marks, 2 if an output cannot be written."),
        epilog=tr("'python -m cnn_course.grade merge REPORT.json ... [--csv FILE] [--json "
                  "FILE]' merges the JSON reports of shards (--shard K/N). 'merge' is that "
                  "subcommand only as the first argument and only if no file or folder named "
                  "'merge' exists here; otherwise use 'python -m cnn_course.grading.merge'."))
    parser.add_argument("submissions", nargs="+", type=Path,
                        help=tr("notebooks, or folders searched for *.ipynb"))
    parser.add_argument("--chapter", help=tr("grade every notebook as this chapter "
                                             "(01_convolution or 1); by default each "
                                             "notebook's chapter is recognised from its cells"))
    parser.add_argument("--solutions", type=Path, default=DEFAULT_SOLUTIONS,
                        help=tr("folder of solution notebooks that define the exercises "
                                "(default: %(default)s)"))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help=tr("notebooks graded at once (default: the number of cores, "
                                "%(default)s)"))
    parser.add_argument("--csv", type=Path,
                        help=tr("also write one row per notebook to this file"))
    parser.add_argument("--json", type=Path, help=tr("also write every detail to this file"))
    parser.add_argument("--logs", type=Path, help=tr("write what each notebook printed "
                                                     "(capped) to this folder"))
    parser.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout,
                        metavar="SECONDS",
                        help=tr("time allowed per cell (default: %(default)g)"))
    parser.add_argument("--timeout", type=float, default=Limits.notebook_timeout,
                        metavar="SECONDS",
                        help=tr("time allowed for all cells of a notebook "
                                "(default: %(default)g)"))
    parser.add_argument("--check-timeout", type=float, default=Limits.check_timeout,
                        metavar="SECONDS", help=tr("time allowed for one exercise's visible or "
                                                   "hidden cases (default: %(default)g)"))
    parser.add_argument("--memory-limit", type=parse_size, default=Limits.memory_limit,
                        metavar="SIZE", help=tr("address space allowed per notebook, e.g. 6G; "
                                                "'none' for no limit (default: 8G)"))
    parser.add_argument("--max-output", type=parse_size, default=Limits.max_output,
                        metavar="SIZE", help=tr("output kept per notebook (default: 1M)"))
    parser.add_argument("--full-runs", action="store_true",
                        help=tr("run training cells at full size (by default notebooks run "
                                "with CNN_COURSE_QUICK=1)"))
    parser.add_argument("--quiet", action="store_true", help=tr("no progress lines on stderr"))
    parser.add_argument("--shard", type=parse_shard, metavar="K/N",
                        help=tr("grade only shard K of N (1 <= K <= N): a split that depends "
                                "only on the notebooks' paths; merge the JSON reports with the "
                                "merge subcommand"))
    parser.add_argument("--seed", type=parse_seed, metavar="N",
                        help=tr("the hidden cases' seed (default: ${variable} if set, else a "
                                "fresh random one); recorded in the JSON report",
                                variable=SEED_VARIABLE))
    parser.add_argument("--no-sandbox", action="store_true",
                        help=tr("run the notebooks without the OS sandbox: DANGEROUS, a "
                                "notebook could change other notebooks' grades or files; only "
                                "for trusted notebooks"))
    parser.add_argument("--max-processes", type=_positive_int, default=64, metavar="N",
                        help=tr("processes allowed per notebook (default: %(default)s)"))
    parser.add_argument("--max-message", type=_positive_size, default=64 << 20,
                        metavar="SIZE", help=tr("bytes of results a notebook's sandbox may "
                                                "send back (default: 64M)"))
    parser.add_argument("--language", choices=(ENGLISH, *LANGUAGES),
                        help=tr("the language of the report's table and reasons, of the "
                                "messages and of this help (default: $CNN_COURSE_LANG, else "
                                "English); the JSON and CSV keys, column names and status "
                                "words stay in English"))
    return parser


def _log_name(index: int, result: SubmissionResult) -> str:
    stem = re.sub(r"[^\w.-]+", "_", Path(result.path).stem)[:60]
    return f"{index:03d}_{stem}.log"


def _seed(given: int | None) -> int:
    """``--seed``, else ``$CNN_COURSE_GRADE_SEED`` if set and not empty, else a fresh one.
    The variable is removed from the environment: no process the grader starts inherits it."""
    text = os.environ.pop(SEED_VARIABLE, "").strip()
    if given is not None:
        return given
    if text:
        try:
            return parse_seed(text)
        except argparse.ArgumentTypeError as error:
            raise ValueError(f"${SEED_VARIABLE}: {error}") from None
    return secrets.randbits(63)


def chapters_digest(chapters: Sequence[Chapter]) -> str:
    """Tells apart reports graded against different solution notebooks."""
    text = json.dumps([[c.id, c.title, [[e.module, e.name, e.expression] for e in c.exercises]]
                       for c in chapters])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _errors(lines: Sequence[str]) -> None:
    for line in lines:
        print(tr("error: {message}", message=line), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge"] and not os.path.lexists("merge"):
        return merge.main(argv[1:])
    apply_language_option(argv)
    args = _parser().parse_args(argv)
    refused = output_problems({"--csv": args.csv, "--json": args.json}, {"--logs": args.logs})
    if refused:
        _errors(refused)
        return 2
    jobs = max(1, args.jobs)
    limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.timeout,
                    check_timeout=args.check_timeout, memory_limit=args.memory_limit,
                    max_output=args.max_output or Limits.max_output,
                    threads=max(1, (os.cpu_count() or 1) // jobs), quick=not args.full_runs)
    try:
        seed = _seed(args.seed)
    except ValueError as error:
        _errors([str(error)])
        return 2
    options = GradingOptions(
        solutions=args.solutions, chapter=args.chapter, jobs=jobs, limits=limits, seed=seed,
        sandbox=not args.no_sandbox, max_processes=args.max_processes,
        max_message=args.max_message)
    try:
        grader = Grader(options)
    except (ChapterError, SandboxUnavailable) as error:
        _errors([str(error)])
        return 2
    for warning in (w for c in grader.chapters for w in c.warnings):
        print(tr("warning: {message}", message=warning), file=sys.stderr)
    paths = find_submissions(args.submissions)
    if not paths:
        _errors([tr("no notebooks found in {paths}",
                    paths=", ".join(clean(str(p)) for p in args.submissions))])
        return 2
    if args.shard:
        found, paths = len(paths), select(paths, args.shard)
        print(tr("shard {shard}: {count} of {found} notebooks", shard=args.shard,
                 count=len(paths), found=found), file=sys.stderr)

    def progress(done: int, total: int, result: SubmissionResult) -> None:
        print(f"[{done}/{total}] {clean(result.path, 200)}: {result.score}/{result.max_score} "
              f"({result.seconds:.1f} s)", file=sys.stderr, flush=True)

    started = time.monotonic()
    try:
        results = grader.grade_all(paths, None if args.quiet else progress)
    except KeyboardInterrupt:
        print(tr("interrupted: no report written"), file=sys.stderr)
        return 130
    elapsed = time.monotonic() - started
    sandboxed = options.sandbox
    warning = None if sandboxed else NO_SANDBOX_WARNING
    print(format_table(results, grader.chapters, shutil.get_terminal_size((120, 24)).columns,
                       warning=warning))
    if jobs == 1:
        print(tr("graded in {seconds:.1f} s with {jobs} job", seconds=elapsed, jobs=jobs))
    else:
        print(tr("graded in {seconds:.1f} s with {jobs} jobs", seconds=elapsed, jobs=jobs))
    meta = ({"warning": warning} if warning else {}) | {
        "graded_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(), "seconds": round(elapsed, 1), "jobs": jobs,
        "limits": vars(limits) | {"grace": limits.grace},
        "hidden_seed": grader.seed,
        "sandbox": sandboxed, "chapters_digest": chapters_digest(grader.chapters)}
    if args.shard:
        meta["shard"] = args.shard.to_dict()
    refused = [write_output(args.csv, lambda p: write_csv(results, grader.chapters, p)),
               write_output(args.json, lambda p: write_json(results, grader.chapters, meta, p))]
    if args.logs:
        refused += _write_logs(args.logs, results)
    problems = [line for line in refused if line]
    _errors(problems)
    if problems:
        return 2
    return 0 if all(result.passed for result in results) else 1


def _write_logs(folder: Path, results: Sequence[SubmissionResult]) -> list[str | None]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        check_output_folder(folder)
    except OSError as error:
        return [f"--logs {clean(str(folder))}: {clean(error.strerror or error)}"]
    except ReportPathError as error:
        return [f"--logs {error}"]
    return [write_output(folder / _log_name(index, result),
                         lambda p, result=result: write_log(result, p))
            for index, result in enumerate(results, start=1)]


if __name__ == "__main__":
    sys.exit(main())
