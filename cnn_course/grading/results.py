"""What grading one submission produces: a score per exercise, problems, flags, one reason.

Every text a result holds may come from the submission (its file name, what its code raised or
printed), so it is cleaned (:func:`~cnn_course.grading.safe_text.clean`) as it is stored: when
a result is created, when a text field is set, when a text is added to a list. ``from_dict``
builds results back from a JSON report, which it treats as untrusted: types checked, sizes
bounded, texts cleaned; it raises :class:`ResultFormatError` saying where a report is wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from cnn_course.grading.safe_text import clean
from cnn_course.messages import ENGLISH, N_, current_language, tr, translated, using_language

NOT_SOLVED = N_("not solved yet")
PATH_LIMIT = 500      # characters kept of a submission's path
NAME_LIMIT = 200      # of a chapter id, module, exercise name or status
TEXT_LIMIT = 4000     # of a reason, message, problem, note or flag
MAX_ITEMS = 10_000    # items in one list read back from JSON


class ResultFormatError(ValueError):
    """A dict read from a JSON report is not a result; the message says which field."""


class TextList(list):
    """A list of one-line texts, each cleaned as it is added."""

    def __init__(self, items: Iterable[object] = ()) -> None:
        super().__init__(_text(item) for item in items)

    def append(self, item: object) -> None:
        super().append(_text(item))

    def insert(self, index: Any, item: object) -> None:
        super().insert(index, _text(item))

    def extend(self, items: Iterable[object]) -> None:
        super().extend(_text(item) for item in items)

    def __iadd__(self, items: Iterable[object]) -> TextList:  # type: ignore[override]
        self.extend(items)
        return self

    def __setitem__(self, index: Any, item: Any) -> None:
        if isinstance(index, slice):
            super().__setitem__(index, [_text(i) for i in item])
        else:
            super().__setitem__(index, _text(item))


def _text(value: object, limit: int = TEXT_LIMIT) -> str:
    return clean(value, limit)


def _optional_text(value: object, limit: int = TEXT_LIMIT) -> str | None:
    return None if value is None else clean(value, limit)


@dataclass(frozen=True)
class CaseSetResult:
    """The verdict of one set of cases (the visible ones, or the hidden ones). ``method`` is
    true when they failed a method check (how the code works, watched in the sandbox and so
    best-effort) rather than on the outputs the judge compared."""

    passed: bool
    message: str
    method: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", _text(self.message))

    @classmethod
    def from_dict(cls, data: object, where: str = "cases") -> CaseSetResult | None:
        """``None`` for ``null``; raises :class:`ResultFormatError` for anything but the
        ``{"passed": bool, "message": str, "method": bool}`` that :func:`dataclasses.asdict`
        writes (``method`` may be missing)."""
        if data is None:
            return None
        data = _mapping(data, where)
        return cls(_take(data, "passed", bool, where), _take(data, "message", str, where),
                   _take(data, "method", bool, where, False))


@dataclass(frozen=True)
class ExerciseResult:
    """One exercise: 1 point when both its visible and its hidden cases pass, else 0."""

    module: str
    name: str
    visible: CaseSetResult | None = None
    hidden: CaseSetResult | None = None
    problem: str | None = None  # why it could not be checked at all (not defined, timed out)

    def __post_init__(self) -> None:
        object.__setattr__(self, "module", _text(self.module, NAME_LIMIT))
        object.__setattr__(self, "name", _text(self.name, NAME_LIMIT))
        object.__setattr__(self, "problem", _optional_text(self.problem))

    @classmethod
    def from_dict(cls, data: object, where: str = "exercise") -> ExerciseResult:
        """The exercise that :meth:`to_dict` wrote; its score and key must agree."""
        data = _mapping(data, where)
        result = cls(_take(data, "module", str, where), _take(data, "name", str, where),
                     CaseSetResult.from_dict(data.get("visible"), f"{where}.visible"),
                     CaseSetResult.from_dict(data.get("hidden"), f"{where}.hidden"),
                     _take(data, "problem", (str, type(None)), where, None))
        _agree(data, "score", result.score, where)
        _agree(data, "key", result.key, where)
        return result

    @property
    def key(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def score(self) -> int:
        return int(bool(self.visible and self.visible.passed and self.hidden
                        and self.hidden.passed))

    @property
    def reason(self) -> str:
        if self.problem:
            return self.problem
        if self.visible is None:
            return tr("not checked")
        if not self.visible.passed:
            message = self.visible.message
            not_solved = translated(NOT_SOLVED)
            return not_solved if message.startswith((NOT_SOLVED, not_solved)) else message
        if self.hidden is None:
            return tr("visible cases pass; hidden cases not checked")
        if not self.hidden.passed:
            return tr("visible cases pass, hidden cases fail: {message}",
                      message=self.hidden.message)
        return tr("passes visible and hidden cases")

    @property
    def short_reason(self) -> str:
        """The reason without the failing case's description and the hint, for one line."""
        if self.visible and self.visible.passed and self.hidden and not self.hidden.passed:
            return tr("hidden cases fail: {message}", message=_core(self.hidden.message))
        return _core(self.reason)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(key=self.key, score=self.score, max_score=1, reason=self.reason)
        return data


def _core(message: str) -> str:
    """A verdict without its case and hint: in English (a report graded in English may be
    merged in another language) and in the current language."""
    for language in dict.fromkeys((ENGLISH, current_language())):
        parts = _verdict_parts(language)
        if parts is None:
            continue
        prefix, between, end, hint = parts
        message = re.sub(f"^{re.escape(prefix)}[^{re.escape(between[0])}]*{re.escape(between)}",
                         "", message, count=1)
        message = re.sub(f"(?:{re.escape(end)})?{re.escape(hint)}.*$", "", message)
        message = message.rstrip(end) if end.strip() else message
    return message


def _verdict_parts(language: str) -> tuple[str, str, str, str] | None:
    """How checks.core's verdict ``case "{case}": {failure}.{hint}`` and its hint
    `` Hint: {hint}`` read in ``language``: the text before the case, between the case and
    the failure, between the failure and the hint, and before the hint's text; None when a
    translation does not split so."""
    with using_language(language):
        verdict = translated('case "{case}": {failure}.{hint}')
        hint = translated(" Hint: {hint}")
    pattern = re.fullmatch(r"(.*)\{case\}(.*)\{failure\}(.*)\{hint\}", verdict, re.S)
    if pattern is None or not pattern[1] or not pattern[2] or not hint.endswith("{hint}"):
        return None
    return pattern[1], pattern[2], pattern[3], hint.removesuffix("{hint}")


@dataclass
class SubmissionResult:
    """Everything the grader found out about one submitted notebook."""

    path: str
    chapter: str | None = None
    status: str = "graded"        # graded | unreadable | wrong chapter | unrecognised | error
    fatal: str | None = None      # the reason it could not be graded at all
    max_score: int = 0
    exercises: list[ExerciseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # severe first
    notes: list[str] = field(default_factory=list)      # cell errors and output, for feedback
    flags: list[str] = field(default_factory=list)      # code an instructor may want to read
    seconds: float = 0.0
    log: bytes = field(default=b"", repr=False)  # the first part of what the notebook printed
    peak_memory: dict[str, int] = field(default_factory=dict)  # address_space, resident

    def __setattr__(self, name: str, value: object) -> None:
        if name == "path":
            value = _text(value, PATH_LIMIT)
        elif name in ("chapter", "status"):
            value = _optional_text(value, NAME_LIMIT)
        elif name == "fatal":
            value = _optional_text(value)
        elif name in ("problems", "notes", "flags"):
            value = TextList(value)  # type: ignore[arg-type]
        super().__setattr__(name, value)

    @classmethod
    def from_dict(cls, data: object, where: str = "submission") -> SubmissionResult:
        """The submission that :meth:`to_dict` wrote (without its log); its score, maximum
        and verdict must agree with its exercises."""
        data = _mapping(data, where)
        exercises = _take(data, "exercises", list, where)
        peak = _take(data, "peak_memory", dict, where, {})
        if len(exercises) > MAX_ITEMS or len(peak) > 100:
            raise ResultFormatError(tr("{where}: too many exercises or peak memory figures",
                                        where=where))
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                   for v in peak.values()):
            raise ResultFormatError(tr("{where}.peak_memory: expected byte counts", where=where))
        status = _take(data, "status", str, where)
        if "fatal" in data:
            fatal = _take(data, "fatal", (str, type(None)), where)
        else:   # a report from before "fatal" was written: the reason, if it was not graded
            fatal = None if status == "graded" else _take(data, "reason", str, where)
        seconds = _take(data, "seconds", (int, float), where)
        max_score = _take(data, "max_score", int, where)
        if not (math.isfinite(seconds) and seconds >= 0 and 0 <= max_score <= MAX_ITEMS):
            raise ResultFormatError(tr("{where}: seconds or max_score out of range", where=where))
        result = cls(
            path=_take(data, "path", str, where), chapter=_take(data, "chapter",
                                                                (str, type(None)), where),
            status=status, fatal=fatal, max_score=max_score, seconds=float(seconds),
            exercises=[ExerciseResult.from_dict(e, f"{where}.exercises[{i}]")
                       for i, e in enumerate(exercises)],
            problems=_texts(data, "problems", where), notes=_texts(data, "notes", where),
            flags=_texts(data, "flags", where),
            peak_memory={clean(k, NAME_LIMIT): v for k, v in peak.items()})
        for name in ("score", "passed"):
            _agree(data, name, getattr(result, name), where)
        return result

    @property
    def score(self) -> int:
        return sum(exercise.score for exercise in self.exercises)

    @property
    def passed(self) -> bool:
        return self.fatal is None and self.max_score > 0 and self.score == self.max_score

    @property
    def reasons(self) -> list[str]:
        """Every reason for a lost point, the most telling first."""
        if self.fatal:
            return [self.fatal]
        failing = [f"{e.name}: {e.short_reason}" for e in self.exercises if not e.score]
        return self.problems + failing + self.notes

    @property
    def reason(self) -> str:
        """One line: why points were lost, or that none were."""
        if self.fatal:
            return self.fatal
        reasons = self.reasons
        if self.passed and not reasons:
            return tr("all {count} exercises pass", count=self.max_score)
        if self.passed:
            reasons = [tr("all {count} exercises pass", count=self.max_score)] + reasons
        more = tr(" (+{count} more)", count=len(reasons) - 1) if len(reasons) > 1 else ""
        return reasons[0] + more

    def to_dict(self) -> dict:
        return {"path": self.path, "chapter": self.chapter, "status": self.status,
                "score": self.score, "max_score": self.max_score, "passed": self.passed,
                "reason": self.reason, "fatal": self.fatal, "problems": list(self.problems),
                "notes": list(self.notes), "flags": list(self.flags),
                "seconds": round(self.seconds, 2),
                "peak_memory": self.peak_memory,
                "exercises": [exercise.to_dict() for exercise in self.exercises]}


# ---- reading untrusted dicts ------------------------------------------------------------

_MISSING: Any = object()


def _mapping(data: object, where: str) -> dict:
    if not isinstance(data, dict):
        raise ResultFormatError(tr("{where}: expected an object, got {kind}", where=where,
                                    kind=_kind(data)))
    return data


_KINDS = {dict: N_("an object"), list: N_("a list"), str: N_("a string"),
          bool: N_("a boolean"), int: N_("a number"), float: N_("a number"),
          type(None): N_("null")}


def _kind(value: object) -> str:
    kind = _KINDS.get(type(value))
    return translated(kind) if kind else type(value).__name__


def _take(data: dict, key: str, kinds: type | tuple[type, ...], where: str,
          default: Any = _MISSING) -> Any:
    """``data[key]`` if it is of ``kinds`` (a bool is not a number here)."""
    if key not in data:
        if default is _MISSING:
            raise ResultFormatError(tr("{where}.{key}: missing", where=where, key=key))
        return default
    value = data[key]
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = tr(" or ").join(dict.fromkeys(
            translated(_KINDS[kind]) if kind in _KINDS else kind.__name__ for kind in kinds))
        raise ResultFormatError(tr("{where}.{key}: expected {kinds}, got {kind}", where=where,
                                   key=key, kinds=names, kind=_kind(value)))
    return value


def _texts(data: dict, key: str, where: str) -> list[str]:
    items = _take(data, key, list, where, [])
    if len(items) > MAX_ITEMS or not all(isinstance(item, str) for item in items):
        raise ResultFormatError(tr("{where}.{key}: expected a list of strings", where=where,
                                   key=key))
    return items


def _agree(data: dict, key: str, value: object, where: str) -> None:
    if key in data and (data[key] != value or type(data[key]) is not type(value)):
        raise ResultFormatError(tr("{where}.{key}: {found} does not match the rest of it "
                                   "({expected!r})", where=where, key=key,
                                   found=clean(repr(data[key]), 60), expected=value))
