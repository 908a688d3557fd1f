"""Merge the JSON reports of shards into one table, CSV and JSON.

    python -m cnn_course.grade merge shard-*.json --csv grades.csv --json grades.json

(or ``python -m cnn_course.grading.merge ...``, which works even where a file or folder named
``merge`` exists). A report is untrusted input: it is read only if it is a regular file of at
most :data:`MAX_REPORT_BYTES`, every field's type is checked and every text cleaned. Reports
are refused, with the reason, when they disagree on a chapter, grade one submission twice,
lack a shard, or were graded with different hidden seeds or sandbox settings.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cnn_course.grading.chapters import Chapter, ExerciseSpec
from cnn_course.grading.report import (
    NO_SANDBOX_WARNING,
    format_table,
    output_problems,
    write_csv,
    write_json,
    write_output,
)
from cnn_course.grading.results import (
    MAX_ITEMS,
    NAME_LIMIT,
    TEXT_LIMIT,
    ResultFormatError,
    SubmissionResult,
)
from cnn_course.grading.safe_text import clean
from cnn_course.messages import ENGLISH, LANGUAGES, N_, apply_language_option, tr, translated

MAX_REPORT_BYTES = 256 << 20
_META_DEPTH = 6


class MergeError(Exception):
    """The reports cannot be merged; the message says why, in one line."""


@dataclass
class Report:
    """One shard's report, checked."""

    name: str                      # the file, for messages
    meta: dict                     # everything but the chapters and the submissions, cleaned
    chapters: list[Chapter]
    results: list[SubmissionResult]

    @property
    def seed(self) -> object:
        return self.meta.get("hidden_seed")

    @property
    def shard(self) -> tuple[int, int] | None:
        shard = self.meta.get("shard")
        return None if shard is None else (shard["index"], shard["count"])


# ---- reading one report ---------------------------------------------------------------------

def read_report(path: Path) -> Report:
    """Read and check one JSON report; :class:`MergeError` says what is wrong with it."""
    name = clean(str(path), 300)
    try:
        data = json.loads(_read(Path(path)).decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise MergeError(tr("{name}: not a JSON report: {error}", name=name,
                            error=clean(error, 200))) from None
    except OSError as error:
        raise MergeError(tr("{name}: cannot be read: {error}", name=name,
                            error=clean(error.strerror or error))) from None
    try:
        return _report(name, data)
    except ResultFormatError as error:
        raise MergeError(f"{name}: {error}") from None


def _read(path: Path) -> bytes:
    """The bytes of a regular file (a FIFO or a device is refused, without blocking)."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                         | getattr(os, "O_CLOEXEC", 0))
    with open(descriptor, "rb") as file:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(tr("not a regular file"))
        data = file.read(MAX_REPORT_BYTES + 1)
    if len(data) > MAX_REPORT_BYTES:
        raise ValueError(tr("larger than {size} MiB", size=MAX_REPORT_BYTES >> 20))
    return data


def _report(name: str, data: object) -> Report:
    if not isinstance(data, dict):
        raise ResultFormatError(tr("expected a JSON object with chapters and submissions"))
    chapters, submissions = data.get("chapters"), data.get("submissions")
    if not isinstance(chapters, list) or not isinstance(submissions, list):
        raise ResultFormatError(tr("expected lists 'chapters' and 'submissions'"))
    if len(chapters) > MAX_ITEMS or len(submissions) > 10 * MAX_ITEMS:
        raise ResultFormatError(tr("too many chapters or submissions"))
    meta = {clean(k, NAME_LIMIT): _meta_value(v) for k, v in list(data.items())[:200]
            if k not in ("chapters", "submissions")}
    _check_meta(meta)
    parsed = [_chapter(c, f"chapters[{i}]") for i, c in enumerate(chapters)]
    results = [SubmissionResult.from_dict(s, f"submissions[{i}]")
               for i, s in enumerate(submissions)]
    known = {c.id for c in parsed}
    for i, result in enumerate(results):
        if result.chapter is not None and result.chapter not in known:
            raise ResultFormatError(tr("submissions[{index}].chapter: {chapter!r} is not among "
                                       "the report's chapters", index=i,
                                       chapter=result.chapter))
    return Report(name, meta, parsed, results)


def _meta_value(value: object, depth: int = 0) -> object:
    """A bounded, cleaned copy of a metadata value (deeper or odder values become null)."""
    if isinstance(value, str):
        return clean(value, TEXT_LIMIT)
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if depth >= _META_DEPTH:
        return None
    if isinstance(value, list):
        return [_meta_value(item, depth + 1) for item in value[:1000]]
    if isinstance(value, dict):
        return {clean(k, NAME_LIMIT): _meta_value(v, depth + 1)
                for k, v in list(value.items())[:1000]}
    return None


def _check_meta(meta: dict) -> None:
    seed, sandbox, shard = meta.get("hidden_seed"), meta.get("sandbox"), meta.get("shard")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ResultFormatError(tr("hidden_seed: expected an integer or null"))
    if sandbox is not None and not isinstance(sandbox, bool):
        raise ResultFormatError(tr("sandbox: expected true, false or null"))
    seconds = meta.get("seconds", 0)
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not (
            0 <= seconds < float("inf")):
        raise ResultFormatError(tr("seconds: expected a number of seconds"))
    if shard is not None:
        index, count = (shard.get(k) if isinstance(shard, dict) else None
                        for k in ("index", "count"))
        if not (type(index) is int and type(count) is int and 1 <= index <= count):
            raise ResultFormatError(tr('shard: expected {{"index": K, "count": N}}, '
                                       "1 <= K <= N"))


def _chapter(data: object, where: str) -> Chapter:
    if not isinstance(data, dict):
        raise ResultFormatError(tr("{where}: expected an object", where=where))
    chapter_id, title = data.get("id"), data.get("title")
    keys, max_score = data.get("exercises"), data.get("max_score")
    if not (isinstance(chapter_id, str) and isinstance(title, str) and isinstance(keys, list)
            and len(keys) <= MAX_ITEMS
            and all(isinstance(k, str) and "." in k.strip(".") for k in keys)):
        raise ResultFormatError(tr("{where}: expected an id, a title and exercises named "
                                   "module.exercise", where=where))
    if max_score != len(keys) or type(max_score) is not int:
        raise ResultFormatError(tr("{where}.max_score: not the number of its exercises",
                                   where=where))
    exercises = tuple(ExerciseSpec(*key.rpartition(".")[::2], expression="")
                      for key in (clean(k, 2 * NAME_LIMIT) for k in keys))
    return Chapter(clean(chapter_id, NAME_LIMIT), clean(title, TEXT_LIMIT), exercises,
                   fingerprint=frozenset())


# ---- merging ------------------------------------------------------------------------------

def merge_reports(reports: Sequence[Report]) -> tuple[dict, list[Chapter],
                                                      list[SubmissionResult]]:
    """The merged metadata, chapters and submissions (in path order); :class:`MergeError`
    if the reports do not belong together."""
    if not reports:
        raise MergeError(tr("no reports to merge"))
    first = reports[0]
    for key, what in (("hidden_seed", N_("hidden seeds")), ("sandbox", N_("sandbox settings")),
                      ("chapters_digest", N_("solution notebooks"))):
        odd = [r.name for r in reports if r.meta.get(key) != first.meta.get(key)]
        if odd:
            raise MergeError(tr("the reports were graded with different {what}: {names} differ "
                                "from {first}", what=translated(what), names=_names(odd),
                                first=first.name))
    _check_shards(reports)
    chapters = _merged_chapters(reports)
    results = [result for report in reports for result in report.results]
    seen: dict[str, str] = {}
    twice = []
    for report in reports:
        for result in report.results:
            if result.path in seen:
                twice.append(tr("{path} ({first} and {second})", path=result.path,
                                first=seen[result.path], second=report.name))
            seen.setdefault(result.path, report.name)
    if len(twice) == 1:
        raise MergeError(tr("{count} submission graded twice: {names}", count=len(twice),
                            names=_names(twice)))
    if twice:
        raise MergeError(tr("{count} submissions graded twice: {names}", count=len(twice),
                            names=_names(twice)))
    sandbox = first.meta.get("sandbox")
    meta = {"warning": NO_SANDBOX_WARNING} if sandbox is False else {}
    meta |= {"merged_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
             "hidden_seed": first.seed, "sandbox": sandbox,
             "seconds": round(sum(r.meta.get("seconds", 0) for r in reports), 1)}
    if first.meta.get("chapters_digest") is not None:
        meta["chapters_digest"] = first.meta["chapters_digest"]
    meta["shards"] = [{"report": r.name, **r.meta} for r in
                      sorted(reports, key=lambda r: r.shard or (0, 0))]
    return meta, chapters, sorted(results, key=lambda r: Path(r.path))


def _names(names: Sequence[str], most: int = 5) -> str:
    more = tr(" and {count} more", count=len(names) - most) if len(names) > most else ""
    return ", ".join(names[:most]) + more


def _check_shards(reports: Sequence[Report]) -> None:
    sharded = [r for r in reports if r.shard]
    if not sharded:
        return
    if len(sharded) != len(reports):
        raise MergeError(tr("some reports are shards and some are not: {names} are not",
                            names=_names([r.name for r in reports if not r.shard])))
    counts = {r.shard[1] for r in sharded if r.shard}
    if len(counts) > 1:
        raise MergeError(tr("the reports split the submissions into different numbers of "
                            "shards: {counts}", counts=", ".join(map(str, sorted(counts)))))
    count = counts.pop()
    indices = [r.shard[0] for r in sharded if r.shard]
    repeated = sorted({i for i in indices if indices.count(i) > 1})
    if repeated:
        raise MergeError(tr("shard {shards} of {count} given twice",
                            shards=", ".join(map(str, repeated)), count=count))
    missing = sorted(set(range(1, count + 1)) - set(indices))
    if len(missing) == 1:
        raise MergeError(tr("missing shard {shards} of {count}",
                            shards=_names([str(i) for i in missing], 20), count=count))
    if missing:
        raise MergeError(tr("missing shards {shards} of {count}",
                            shards=_names([str(i) for i in missing], 20), count=count))


def _merged_chapters(reports: Sequence[Report]) -> list[Chapter]:
    chapters: dict[str, tuple[Chapter, str]] = {}
    for report in reports:
        for chapter in report.chapters:
            known = chapters.setdefault(chapter.id, (chapter, report.name))
            if (known[0].title, known[0].exercises) != (chapter.title, chapter.exercises):
                raise MergeError(tr("the reports disagree on chapter {chapter}: {first} and "
                                    "{second} list different exercises or titles",
                                    chapter=chapter.id, first=known[1], second=report.name))
    return [chapters[key][0] for key in sorted(chapters)]


# ---- the command --------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnn_course.grade merge",
        description=tr("Merge the JSON reports of shards (--shard K/N) into one table, CSV and "
                       "JSON. Exit status 0 only if every notebook has full marks, 2 if the "
                       "reports cannot be merged or an output cannot be written."))
    parser.add_argument("reports", nargs="+", type=Path, help=tr("the shards' JSON reports"))
    parser.add_argument("--csv", type=Path, help=tr("write one row per notebook to this file"))
    parser.add_argument("--json", type=Path, help=tr("write the merged report to this file"))
    parser.add_argument("--language", choices=(ENGLISH, *LANGUAGES),
                        help=tr("the language of the table, the reasons and the messages "
                                "(default: $CNN_COURSE_LANG, else English)"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    apply_language_option(argv)
    args = _parser().parse_args(argv)
    outputs = {"--csv": args.csv, "--json": args.json}
    problems = output_problems(outputs)
    if problems:
        for problem in problems:
            print(tr("error: {message}", message=problem), file=sys.stderr)
        return 2
    try:
        meta, chapters, results = merge_reports([read_report(p) for p in args.reports])
    except MergeError as error:
        print(tr("error: {message}", message=error), file=sys.stderr)
        return 2
    width = shutil.get_terminal_size((120, 24)).columns
    print(format_table(results, chapters, width, warning=meta.get("warning")))
    if len(args.reports) == 1:
        print(tr("merged {count} report; graded in {seconds:.1f} s in all",
                 count=len(args.reports), seconds=meta["seconds"]))
    else:
        print(tr("merged {count} reports; graded in {seconds:.1f} s in all",
                 count=len(args.reports), seconds=meta["seconds"]))
    refused = [write_output(args.csv, lambda p: write_csv(results, chapters, p)),
               write_output(args.json, lambda p: write_json(results, chapters, meta, p))]
    for problem in filter(None, refused):
        print(tr("error: {message}", message=problem), file=sys.stderr)
    if any(refused):
        return 2
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
