"""What grading one submission produces: a score per exercise, problems, flags, one reason."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

NOT_SOLVED = "not solved yet"


@dataclass(frozen=True)
class CaseSetResult:
    """The verdict of one set of cases (the visible ones, or the hidden ones)."""

    passed: bool
    message: str


@dataclass(frozen=True)
class ExerciseResult:
    """One exercise: 1 point when both its visible and its hidden cases pass, else 0."""

    module: str
    name: str
    visible: CaseSetResult | None = None
    hidden: CaseSetResult | None = None
    problem: str | None = None  # why it could not be checked at all (not defined, timed out)

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
            return "not checked"
        if not self.visible.passed:
            message = self.visible.message
            return NOT_SOLVED if message.startswith(NOT_SOLVED) else message
        if self.hidden is None:
            return "visible cases pass; hidden cases not checked"
        if not self.hidden.passed:
            return f"visible cases pass, hidden cases fail: {self.hidden.message}"
        return "passes visible and hidden cases"

    @property
    def short_reason(self) -> str:
        """The reason without the failing case's description and the hint, for one line."""
        if self.visible and self.visible.passed and self.hidden and not self.hidden.passed:
            return f"hidden cases fail: {_core(self.hidden.message)}"
        return _core(self.reason)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(key=self.key, score=self.score, max_score=1, reason=self.reason)
        return data


def _core(message: str) -> str:
    message = re.sub(r'^case "[^"]*": ', "", message)
    return re.sub(r"\.? Hint: .*$", "", message).rstrip(".")


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
            return f"all {self.max_score} exercises pass"
        if self.passed:
            reasons = [f"all {self.max_score} exercises pass"] + reasons
        more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
        return reasons[0] + more

    def to_dict(self) -> dict:
        return {"path": self.path, "chapter": self.chapter, "status": self.status,
                "score": self.score, "max_score": self.max_score, "passed": self.passed,
                "reason": self.reason, "problems": self.problems, "notes": self.notes,
                "flags": self.flags, "seconds": round(self.seconds, 2),
                "peak_memory": self.peak_memory,
                "exercises": [exercise.to_dict() for exercise in self.exercises]}
