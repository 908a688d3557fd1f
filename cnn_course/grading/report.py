"""The grading report: a table for people, CSV for a spreadsheet, JSON for everything.

Every text is cleaned (:mod:`~cnn_course.grading.safe_text`) once more on its way out, and a
CSV cell that a spreadsheet would read as a formula gets a leading ``'``. Files are written
whole or not at all (:func:`write_atomically`), and never through a symbolic link, into a
FIFO or over a folder: :func:`check_output_path` refuses such a path with a
:class:`ReportPathError`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from cnn_course.grading.chapters import Chapter
from cnn_course.grading.results import SubmissionResult
from cnn_course.grading.safe_text import clean, clean_tree
from cnn_course.messages import N_, tr, translated
from cnn_course.summary import pad

NO_SANDBOX_WARNING = N_("WARNING: graded WITHOUT the sandbox: a notebook could have changed "
                        "other notebooks' grades or files; use only for trusted notebooks")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
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
                 width: int = 120, warning: str | None = None) -> str:
    """One table per chapter (a column per exercise, a total and one reason), then the
    details of every submission that lost points or has flags; ``warning`` comes first."""
    lines: list[str] = [clean(translated(warning)), ""] if warning else []
    name_width = min(_NAME_WIDTH, max([len(r.path) for r in results] + [10]))
    groups = [(c, [r for r in results if r.chapter == c.id]) for c in
              _chapters_in(results, chapters)]
    ungrouped = [r for r in results if r.chapter is None]
    for chapter, members in groups:
        lines.append(tr("{chapter}: {title} ({count} exercises, 1 point each when its visible "
                        "and hidden cases pass)", chapter=chapter.id, title=chapter.title,
                        count=chapter.max_score))
        lines.append("  " + "  ".join(f"e{i} {e.name}" for i, e in
                                      enumerate(chapter.exercises, start=1)))
        columns = [f"e{i}" for i in range(1, len(chapter.exercises) + 1)]
        head = (f"{pad(tr('submission'), name_width)}  "
                f"{' '.join(f'{c:>3}' for c in columns)}  {pad(tr('score'), 5)}  ")
        lines.append(head + tr("reason"))
        for result in members:
            scores = {e.key: e.score for e in result.exercises}
            cells = " ".join(f"{scores.get(e.key, '-'):>3}" for e in chapter.exercises)
            row = (f"{_short(result.path, name_width):<{name_width}}  {cells}  "
                   f"{f'{result.score}/{result.max_score}':>5}  ")
            lines.append(row + _clip(result.reason, max(20, width - len(row))))
        lines.append("")
    if ungrouped:
        lines.append(tr("not graded: unreadable, or no chapter recognised"))
        for result in ungrouped:
            row = f"{_short(result.path, name_width):<{name_width}}  "
            lines.append(row + _clip(result.reason, max(20, width - len(row))))
        lines.append("")
    details = [r for r in results if (not r.passed or r.flags or r.problems or r.notes)]
    if details:
        lines.append(tr("details"))
        for result in details:
            lines.append(f"  {result.path} ({result.score}/{result.max_score}, "
                         f"{result.seconds:.1f} s)")
            if result.fatal:
                lines.append(f"    {result.fatal}")
            for text in result.problems:
                lines.append("    " + tr("problem: {text}", text=text))
            for exercise in result.exercises:
                if not exercise.score:
                    lines.append(f"    {exercise.name}: {exercise.reason}")
            for text in result.notes:
                lines.append("    " + tr("note: {text}", text=text))
            for text in result.flags:
                lines.append("    " + tr("flag: {text}", text=text))
        lines.append("")
    full = sum(r.passed for r in results)
    if len(results) == 1:
        lines.append(tr("{count} submission: {full} with full marks, {others} without",
                        count=len(results), full=full, others=len(results) - full))
    else:
        lines.append(tr("{count} submissions: {full} with full marks, {others} without",
                        count=len(results), full=full, others=len(results) - full))
    return clean("\n".join(lines), lines=True)


def csv_text(results: Sequence[SubmissionResult], chapters: Sequence[Chapter]) -> str:
    """One row per submission; one column per exercise, named ``module.exercise``."""
    keys = [e.key for c in _chapters_in(results, chapters) for e in c.exercises]
    keys = list(dict.fromkeys(keys))
    file = io.StringIO(newline="")
    writer = csv.writer(file)
    writer.writerow(["submission", "chapter", "status", "score", "max_score", "passed",
                     "reason", "flags", "seconds", *map(_cell, keys)])
    for result in results:
        scores = {e.key: e.score for e in result.exercises}
        writer.writerow([_cell(result.path), _cell(result.chapter or ""), _cell(result.status),
                         result.score, result.max_score, int(result.passed),
                         _cell(result.reason), _cell(" | ".join(result.flags)),
                         f"{result.seconds:.1f}", *(scores.get(key, "") for key in keys)])
    return file.getvalue()


def _cell(text: str) -> str:
    """One line of clean text that no spreadsheet reads as a formula."""
    text = clean(text)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def write_csv(results: Sequence[SubmissionResult], chapters: Sequence[Chapter],
              path: Path) -> None:
    """:func:`csv_text`, written with :func:`write_atomically`."""
    write_atomically(path, csv_text(results, chapters).encode("utf-8"))


def to_json(results: Sequence[SubmissionResult], chapters: Sequence[Chapter],
            meta: dict) -> dict:
    """``meta`` (a ``"warning"`` in it first), the chapters graded, every submission."""
    head = {"warning": meta["warning"]} if meta.get("warning") else {}
    report = {**head, **meta,
              "chapters": [{"id": c.id, "title": c.title, "max_score": c.max_score,
                            "exercises": [e.key for e in c.exercises]}
                           for c in _chapters_in(results, chapters)],
              "submissions": [r.to_dict() for r in results]}
    return clean_tree(report)  # type: ignore[return-value]


def write_json(results: Sequence[SubmissionResult], chapters: Sequence[Chapter], meta: dict,
               path: Path) -> None:
    """:func:`to_json`, indented, written with :func:`write_atomically`."""
    text = json.dumps(to_json(results, chapters, meta), indent=2, ensure_ascii=False)
    write_atomically(path, (text + "\n").encode("utf-8"))


def write_log(result: SubmissionResult, path: Path) -> None:
    """What the notebook printed, its escape sequences made harmless."""
    text = clean(result.log.decode("utf-8", "replace"), lines=True)
    write_atomically(path, text.encode("utf-8"))


# ---- writing files safely -----------------------------------------------------------------

class ReportPathError(Exception):
    """An output path that the grader refuses to write; the message is one line."""


_KINDS = ((stat.S_ISLNK, N_("a symbolic link")), (stat.S_ISDIR, N_("a folder")),
          (stat.S_ISFIFO, N_("a FIFO")), (stat.S_ISSOCK, N_("a socket")),
          (stat.S_ISCHR, N_("a character device")), (stat.S_ISBLK, N_("a block device")))


def _kind(mode: int) -> str:
    return translated(next((name for test, name in _KINDS if test(mode)),
                           N_("not a regular file")))


def check_output_path(path: Path) -> None:
    """Raise :class:`ReportPathError` unless ``path`` is a regular file (not a link to one)
    or nothing, in an existing folder. Follows no link, opens nothing."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        folder = path.parent
        if not folder.is_dir():
            raise ReportPathError(tr("{path}: its folder {folder} does not exist",
                                     path=clean(str(path)), folder=clean(str(folder)))) from None
        return
    except OSError as error:
        raise ReportPathError(f"{clean(str(path))}: {clean(error.strerror or error)}") from None
    if not stat.S_ISREG(mode):
        raise ReportPathError(tr("{path}: refusing to write: it is {kind}, not a regular file",
                                 path=clean(str(path)), kind=_kind(mode)))


def check_output_folder(path: Path) -> None:
    """Raise :class:`ReportPathError` unless ``path`` is a real folder (not a link to one)
    or nothing."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise ReportPathError(f"{clean(str(path))}: {clean(error.strerror or error)}") from None
    if not stat.S_ISDIR(mode):
        raise ReportPathError(tr("{path}: refusing to write logs into it: it is {kind}, not a "
                                 "folder", path=clean(str(path)), kind=_kind(mode)))


def output_problems(files: dict[str, Path | None],
                    folders: dict[str, Path | None] | None = None) -> list[str]:
    """One line for each output that cannot be written (checked before grading starts):
    ``files`` and ``folders`` map an option (``"--csv"``) to its path or ``None``."""
    problems, seen = [], {}
    for option, path in files.items():
        if path is None:
            continue
        where = os.path.abspath(path)
        if where in seen:
            problems.append(tr("{option} and {other} name the same file: {path}",
                               option=option, other=seen[where], path=clean(str(path))))
        seen[where] = option
        try:
            check_output_path(path)
        except ReportPathError as error:
            problems.append(f"{option} {error}")
    for option, path in (folders or {}).items():
        try:
            if path is not None:
                check_output_folder(path)
        except ReportPathError as error:
            problems.append(f"{option} {error}")
    return problems


def write_output(path: Path | None, write: Callable[[Path], None]) -> str | None:
    """``write(path)`` unless ``path`` is ``None``; the one-line reason if it was refused
    or failed, else ``None``."""
    if path is None:
        return None
    try:
        write(path)
    except ReportPathError as error:
        return str(error)
    except OSError as error:
        return tr("{path}: could not be written: {error}", path=clean(str(path)),
                  error=clean(error.strerror or error))
    return None


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file next to ``path`` (``O_EXCL``, never through a link),
    flush it to disk, and rename it over ``path``: readers see the old file or the new one,
    never a part. :func:`check_output_path` first, and again just before the rename."""
    path = Path(path)
    check_output_path(path)
    temporary = path.parent / f".{path.name[:100]}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(temporary, flags, 0o666)
    try:
        with open(descriptor, "wb", closefd=True) as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        check_output_path(path)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable where the system allows it (not on Windows)."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
