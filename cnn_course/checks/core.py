"""The machinery every exercise checker shares.

A checker runs a learner's function on a list of :class:`Case` objects and turns the first
failure into one readable verdict line. Nothing a learner writes can make a checker show a
traceback from inside this package: wrong answers, exceptions and odd return types all end as
a :class:`CheckResult`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import sys
import sysconfig
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import torch
from torch.overrides import TorchFunctionMode

from cnn_course.messages import N_, tr, translated

PASS_MARK = "✅"
FAIL_MARK = "❌"

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_results: dict[str, bool] = {}


class OpCounter(TorchFunctionMode):
    """Counts the PyTorch functions and tensor methods called while it is active: a loop over
    a size calls PyTorch once per pass, so the count grows with that size."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


class CaseFailed(Exception):
    """Raised by a case when the learner's answer is wrong; the message says how.

    ``diagnosed=True`` means the message already names the mistake, so the exercise's general
    hint is left off.
    """

    def __init__(self, message: str, diagnosed: bool = False) -> None:
        super().__init__(message)
        self.diagnosed = diagnosed


class MethodViolation(CaseFailed):
    """Raised when the learner's code works in a way the exercise rules out (calls PyTorch's
    built-in convolution, loops over images, calls autograd...). Such checks watch the code
    as it runs, so a grader can only observe them best-effort, and reports them apart from
    the correctness of the results."""

    def __init__(self, message: str) -> None:
        super().__init__(message, diagnosed=True)


# ---- the seed of the hidden cases ------------------------------------------------------------
# Learners see the visible cases' fixed inputs. The hidden cases' inputs come from a seed that
# a grader chooses per run (``hidden_seed``), so that nobody can compute them in advance.

DEFAULT_HIDDEN_SEED = 0
_hidden_seed: ContextVar[int] = ContextVar("hidden_seed", default=DEFAULT_HIDDEN_SEED)


@contextlib.contextmanager
def hidden_seed(seed: int) -> Iterator[None]:
    """Draw the hidden cases' inputs from ``seed`` inside this block."""
    token = _hidden_seed.set(int(seed))
    try:
        yield
    finally:
        _hidden_seed.reset(token)


def case_seed(visible: int, hidden: bool, salt: object = "") -> int:
    """The seed of a set of cases: ``visible`` for the visible cases; for the hidden ones a
    63-bit number derived from the grader's hidden seed, ``visible`` and ``salt`` (so that
    different exercises and case groups get unrelated inputs)."""
    if not hidden:
        return visible
    text = f"{_hidden_seed.get()}:{visible}:{salt}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1


# ---- observation points for graders ----------------------------------------------------------
# A grader runs a learner's code in a sandbox and judges the results outside it. It records
# every call of the learner's function (and every ``observed`` unit) inside the sandbox, and
# replays the recorded results when it runs the same checker outside. A checker that computes
# something from the learner's code other than by calling the function directly (autograd
# through its output, say) wraps that computation in ``observed`` and judges its result.

T = TypeVar("T")


class Observer(Protocol):
    def unit(self, compute: Callable[[], T]) -> T: ...


_observer: ContextVar[Observer | None] = ContextVar("observer", default=None)


def observed(compute: Callable[[], T]) -> T:
    """Run ``compute`` (which calls the learner's code) and return its result; under a
    grader, the result is recorded in the sandbox and replayed by the judge."""
    observer = _observer.get()
    return compute() if observer is None else observer.unit(compute)


@contextlib.contextmanager
def observing(observer: Observer | None) -> Iterator[None]:
    """Route ``observed`` units through ``observer`` inside this block."""
    token = _observer.set(observer)
    try:
        yield
    finally:
        _observer.reset(token)


@dataclass(frozen=True)
class Case:
    """One test case: a short description a learner can read and a function that runs it."""

    description: str
    run: Callable[[], None]


@dataclass(frozen=True)
class CheckResult:
    exercise: str
    passed: bool
    message: str
    cases_run: int = 0
    method: bool = False   # failed a check of how the code works (MethodViolation)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = PASS_MARK if self.passed else FAIL_MARK
        return f"{mark} {self.exercise}: {self.message}"


def _is_learner_file(filename: str) -> bool:
    """True for notebook cells and the learner's own files, false for libraries and us."""
    path = Path(filename).resolve()
    library_roots = {Path(p).resolve() for p in (sysconfig.get_paths()["purelib"],
                                                 sysconfig.get_paths()["stdlib"])}
    return not path.is_relative_to(_PACKAGE_DIR) and not any(
        path.is_relative_to(root) for root in library_roots)


def _where_in_learner_code(error: BaseException) -> str:
    """Name the innermost line of the traceback that is not inside this package (or, for an
    exception a grader rebuilt from its record, the place recorded with it)."""
    recorded = getattr(error, "__learner_where__", None)
    if isinstance(recorded, str):
        return f" ({recorded})" if recorded else ""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if _is_learner_file(f.filename)]
    if not frames:
        return ""
    frame = frames[-1]
    return tr(" (in {function}, line {line})", function=frame.name, line=frame.lineno)


def run_cases(exercise: str, cases: Iterable[Case], *, success: str, hint: str = "") -> CheckResult:
    """Run cases in order and stop at the first failure.

    ``success`` is the message for a pass; ``hint`` is appended to any failure caused by a
    wrong value (not to "not implemented yet"). Both, and each case's description, are English
    templates marked with ``N_``, shown in the learner's language.
    """
    count = 0
    try:
        for case in cases:
            count += 1
            try:
                case.run()
            except NotImplementedError:
                return CheckResult(exercise, False, tr(
                    "not solved yet: replace `raise NotImplementedError()` with your code, then "
                    "run this check again."), count)
            except CaseFailed as failure:
                tail = tr(" Hint: {hint}", hint=tr(hint)) \
                    if hint and not failure.diagnosed else ""
                return CheckResult(exercise, False,
                                   tr('case "{case}": {failure}.{hint}',
                                      case=translated(case.description), failure=failure,
                                      hint=tail),
                                   count, method=isinstance(failure, MethodViolation))
            except RecursionError:
                return CheckResult(exercise, False, tr(
                    'case "{case}": your code recursed without end (RecursionError).',
                    case=translated(case.description)), count)
            except Exception as error:  # the learner's own exception, reported as such
                return CheckResult(exercise, False, tr(
                    'case "{case}": your code raised {error_type}: {error}{where}.',
                    case=translated(case.description), error_type=type(error).__name__,
                    error=error, where=_where_in_learner_code(error)), count)
    except Exception as error:  # a case generator that itself failed on odd learner output
        return CheckResult(exercise, False, tr(
            "could not be checked: {error_type}: {error}{where}.",
            error_type=type(error).__name__, error=error, where=_where_in_learner_code(error)),
            count)
    return CheckResult(exercise, True, tr(success, n=count), count)


@dataclass(frozen=True)
class Exercise:
    """How to check one exercise: its cases (``cases(fn, hidden=...)``), pass message, hint."""

    cases: Callable[..., list[Case]]
    success: str
    hint: str = ""

    def run(self, name: str, fn: Callable, hidden: bool = False) -> CheckResult:
        return run_cases(name, self.cases(fn, hidden=hidden), success=self.success,
                         hint=self.hint)


class Exercises(dict[str, Exercise]):
    """One chapter's exercises by name. A checker module defines ``EXERCISES = Exercises(...)``
    and ``run_check = EXERCISES.run_check``; its ``check_<name>`` functions report that."""

    def run_check(self, exercise: str, fn: Callable, hidden: bool = False) -> CheckResult:
        """Run one exercise's cases without printing (used by tests and grading)."""
        return self[exercise].run(exercise, fn, hidden)


# ---- refusing PyTorch's ready-made answers ---------------------------------------------------

_MISSING = object()


@contextlib.contextmanager
def forbid(targets: Iterable[tuple[object, str]], message: str) -> Iterator[None]:
    """While the block runs, calling any ``owner.name`` in ``targets`` raises
    :class:`MethodViolation` with ``message``; afterwards each is put back as it was.

    ``owner`` is a module or a class. A name the owner does not have is skipped; a name it only
    inherits (``torch.Tensor.relu`` comes from a C base class) is set on the owner for the
    block and deleted again afterwards, so the inherited one shows through as before.
    """
    def refuse(*args: object, **kwargs: object) -> None:
        raise MethodViolation(message)

    saved: list[tuple[object, str, object]] = []
    try:
        for owner, name in targets:
            if not hasattr(owner, name):
                continue
            saved.append((owner, name, vars(owner).get(name, _MISSING)))
            setattr(owner, name, refuse)
        yield
    finally:
        for owner, name, original in reversed(saved):
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def report(result: CheckResult) -> None:
    """Print a verdict line and remember it, so later cells can fall back to a reference."""
    _results[result.exercise] = result.passed
    print(result, file=sys.stdout, flush=True)


@functools.cache
def _success_templates() -> dict[str, str]:
    """Every exercise's pass message template, by exercise name, from every checker module."""
    import importlib
    import pkgutil

    import cnn_course.checks as package

    templates = {}
    for module in pkgutil.iter_modules(package.__path__):
        if module.name != "core":
            exercises = getattr(importlib.import_module(f"{package.__name__}.{module.name}"),
                                "EXERCISES", {})
            templates.update({name: exercise.success for name, exercise in exercises.items()})
    return templates


def translated_verdicts(text: str) -> str:
    """``text`` printed by checks in English (a notebook's saved output) with each passing
    verdict line in the current language; every other line as it is."""
    successes = _success_templates()
    lines = []
    for line in text.split("\n"):
        name, _, message = line.removeprefix(f"{PASS_MARK} ").partition(": ")
        if line.startswith(PASS_MARK) and name in successes:
            pattern = re.escape(successes[name]).replace(r"\{n\}", r"(?P<n>\d+)")
            match = re.fullmatch(pattern, message)
            if match:
                line = str(CheckResult(name, True, tr(successes[name], **match.groupdict())))
        lines.append(line)
    return "\n".join(lines)


def has_passed(exercise: str) -> bool:
    return _results.get(exercise, False)


def solved_or_reference(exercise: str, learner_fn: Callable, reference_fn: Callable) -> Callable:
    """Return the learner's function if its check passed, else the course's reference.

    This lets a learner who skipped an exercise run the rest of the notebook.
    """
    if has_passed(exercise):
        return learner_fn
    print(tr("Note: {exercise} has not passed its check yet, so the cells below use the "
             "course's reference implementation instead.", exercise=exercise))
    return reference_fn


# ---- comparisons used by cases --------------------------------------------------------------

def as_tensor(value: object, what: str) -> torch.Tensor:
    """Reject anything that is not a tensor with a message a learner understands."""
    # Exact types only: a Tensor subclass could override comparisons and fake a pass.
    if type(value) not in (torch.Tensor, torch.nn.Parameter):
        raise CaseFailed(tr("{what} should be a torch.Tensor, but it is a {type_name}",
                            what=translated(what), type_name=type(value).__name__),
                         diagnosed=True)
    return value


def expect_shape(got: torch.Tensor, expected: tuple[int, ...], what: str = N_("the output")
                 ) -> None:
    """``what`` names the value in English (marked with ``N_``); it is shown translated."""
    if tuple(got.shape) != tuple(expected):
        raise CaseFailed(tr("{what} has shape {got}, expected {expected}", what=translated(what),
                            got=tuple(got.shape), expected=tuple(expected)))


def expect_close(got: object, expected: torch.Tensor, what: str = N_("the output"), *,
                 atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """Compare a learner's tensor with the expected one and name the first wrong element."""
    got = as_tensor(got, what)
    expect_shape(got, tuple(expected.shape), what)
    got = got.detach().to(device="cpu", dtype=torch.float64)
    expected = expected.detach().to(device="cpu", dtype=torch.float64)
    if torch.isnan(got).any() and not torch.isnan(expected).any():
        raise CaseFailed(tr("{what} contains NaN", what=translated(what)))
    bad = ~torch.isclose(got, expected, atol=atol, rtol=rtol, equal_nan=True)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        where = f"[{', '.join(map(str, index))}]" if index else ""
        raise CaseFailed(tr("{what}{where} is {got:.6g}, expected {expected:.6g} ({wrong} of "
                            "{total} values differ)", what=translated(what), where=where,
                            got=got[index].item(), expected=expected[index].item(),
                            wrong=int(bad.sum()), total=bad.numel()))


def expect_equal(got: object, expected: object, what: str) -> None:
    if got != expected:
        raise CaseFailed(tr("{what} is {got!r}, expected {expected!r}", what=translated(what),
                            got=got, expected=expected))
