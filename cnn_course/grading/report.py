"""The grading report: a table for people, CSV for a spreadsheet, JSON for everything."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from cnn_course.grading.chapters import Chapter
from cnn_course.grading.results import SubmissionResult

_NAME_WIDTH = 36


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _chapters_in(results: Sequence[SubmissionResult], chapters: Sequence[Chapter]
                 ) -> list[Chapter]:
    used = {r.chapter for r in results}
    return [c for c in chapters if c.id in used]


def format_table(results: Sequence[SubmissionResult], chapters: Sequence[Chapter],
                 width: int = 120) -> str:
    """One table per chapter (a column per exercise, a total and one reason), then the
    details of every submission that lost points or has flags."""
    lines: list[str] = []
    name_width = min(_NAME_WIDTH, max([len(r.path) for r in results] + [10]))
    groups = [(c, [r for r in results if r.chapter == c.id]) for c in
              _chapters_in(results, chapters)]
    ungrouped = [r for r in results if r.chapter is None]
    for chapter, members in groups:
        lines.append(f"{chapter.id}: {chapter.title} ({chapter.max_score} exercises, 1 point "
                     "each when its visible and hidden cases pass)")
        lines.append("  " + "  ".join(f"e{i} {e.name}" for i, e in
                                      enumerate(chapter.exercises, start=1)))
        columns = [f"e{i}" for i in range(1, len(chapter.exercises) + 1)]
        head = f"{'submission':<{name_width}}  {' '.join(f'{c:>3}' for c in columns)}  score  "
        lines.append(head + "reason")
        for result in members:
            scores = {e.key: e.score for e in result.exercises}
            cells = " ".join(f"{scores.get(e.key, '-'):>3}" for e in chapter.exercises)
            row = (f"{_short(result.path, name_width):<{name_width}}  {cells}  "
                   f"{f'{result.score}/{result.max_score}':>5}  ")
            lines.append(row + _clip(result.reason, max(20, width - len(row))))
        lines.append("")
    if ungrouped:
        lines.append("not graded: unreadable, or no chapter recognised")
        for result in ungrouped:
            row = f"{_short(result.path, name_width):<{name_width}}  "
            lines.append(row + _clip(result.reason, max(20, width - len(row))))
        lines.append("")
    details = [r for r in results if (not r.passed or r.flags or r.problems or r.notes)]
    if details:
        lines.append("details")
        for result in details:
            lines.append(f"  {result.path} ({result.score}/{result.max_score}, "
                         f"{result.seconds:.1f} s)")
            if result.fatal:
                lines.append(f"    {result.fatal}")
            for text in result.problems:
                lines.append(f"    problem: {text}")
            for exercise in result.exercises:
                if not exercise.score:
                    lines.append(f"    {exercise.name}: {exercise.reason}")
            for text in result.notes:
                lines.append(f"    note: {text}")
            for text in result.flags:
                lines.append(f"    flag: {text}")
        lines.append("")
    full = sum(r.passed for r in results)
    lines.append(f"{len(results)} submission{'s' * (len(results) != 1)}: {full} with full "
                 f"marks, {len(results) - full} without")
    return "\n".join(lines)


def write_csv(results: Sequence[SubmissionResult], chapters: Sequence[Chapter],
              path: Path) -> None:
    """One row per submission; one column per exercise, named ``module.exercise``."""
    keys = [e.key for c in _chapters_in(results, chapters) for e in c.exercises]
    keys = list(dict.fromkeys(keys))
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["submission", "chapter", "status", "score", "max_score", "passed",
                         "reason", "flags", "seconds", *keys])
        for result in results:
            scores = {e.key: e.score for e in result.exercises}
            writer.writerow([result.path, result.chapter or "", result.status, result.score,
                             result.max_score, int(result.passed), result.reason,
                             " | ".join(result.flags), f"{result.seconds:.1f}",
                             *(scores.get(key, "") for key in keys)])


def to_json(results: Sequence[SubmissionResult], chapters: Sequence[Chapter],
            meta: dict) -> dict:
    return {**meta,
            "chapters": [{"id": c.id, "title": c.title, "max_score": c.max_score,
                          "exercises": [e.key for e in c.exercises]}
                         for c in _chapters_in(results, chapters)],
            "submissions": [r.to_dict() for r in results]}


def write_json(results: Sequence[SubmissionResult], chapters: Sequence[Chapter], meta: dict,
               path: Path) -> None:
    Path(path).write_text(json.dumps(to_json(results, chapters, meta), indent=2,
                                     ensure_ascii=False) + "\n", encoding="utf-8")
