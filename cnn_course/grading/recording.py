"""Record a checker's calls of the learner's code in the sandbox; replay them in the judge.

Inside the sandbox the grader runs an exercise's checker with the learner's answer wrapped by
a :class:`Recorder`. Every direct call of the answer, and every ``observed`` unit of the
checker (see :func:`cnn_course.checks.core.observed`), becomes one record of plain data: the
result (or the exception), the state of each argument afterwards, and PyTorch's global random
state when the call changed it.

Outside, the judge runs the same checker with the same seeds, with a :class:`Replayer` in the
answer's place: each call takes the next record, puts the recorded state into the judge's own
arguments and returns the recorded result. No learner code runs in the judge, so a record can
claim any output, but only correct outputs pass the judge's own comparisons.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from cnn_course.checks.core import CaseFailed
from cnn_course.grading.protocol import (
    BadObservation,
    Budget,
    apply_state,
    capture_state,
    decode,
    decode_exception,
    encode,
    encode_exception,
)
from cnn_course.messages import tr

CALL, UNIT = "call", "unit"


class Recorder:
    """Wraps the learner's answer in the sandbox and keeps what its calls produced."""

    def __init__(self, budget: Budget, passthrough: tuple[type[BaseException], ...] = ()) -> None:
        self.records: list[dict] = []
        self.budget = budget
        self.problem: str | None = None      # why recording stopped (too large, say)
        self._passthrough = passthrough       # exceptions of the grader's own (its alarm)
        self._depth = 0

    @property
    def busy(self) -> bool:
        """True while the learner's code (or an observed unit) runs."""
        return self._depth > 0

    def wrap(self, answer: Callable) -> Callable:
        """A callable that runs ``answer`` and records each call."""
        def recorded(*args: Any, **kwargs: Any) -> Any:
            return self._run(CALL, lambda: answer(*args, **kwargs), args, kwargs)
        return recorded

    def unit(self, compute: Callable[[], Any]) -> Any:
        """An ``observed`` unit of the checker (see :func:`cnn_course.checks.core.observed`)."""
        return self._run(UNIT, compute, (), {})

    def _run(self, kind: str, compute: Callable[[], Any], args: tuple, kwargs: dict) -> Any:
        if self._depth:   # inside a unit: the unit is the record
            return compute()
        self._depth += 1
        rng = torch.get_rng_state()
        try:
            result = compute()
        except self._passthrough:
            raise
        except BaseException as error:
            self._keep(kind, args, kwargs, rng, error=error)
            raise
        finally:
            self._depth -= 1
        self._keep(kind, args, kwargs, rng, result=result)
        return result

    def _keep(self, kind: str, args: tuple, kwargs: dict, rng_before: torch.Tensor, *,
              result: Any = None, error: BaseException | None = None) -> None:
        if self.problem:
            return
        try:
            record: dict[str, Any] = {"kind": kind}
            if error is not None:
                record["error"] = encode_exception(error)
            else:
                record["result"] = encode(result, self.budget)
            if args:
                record["args"] = [encode_state(a, self.budget) for a in args]
            if kwargs:
                record["kwargs"] = {str(k): encode_state(v, self.budget)
                                    for k, v in kwargs.items()}
            rng = torch.get_rng_state()
            if not torch.equal(rng, rng_before):
                record["rng"] = encode(rng, self.budget)
        except Exception as problem:  # noqa: BLE001 - a value that cannot be sent
            self.problem = tr("a result could not be recorded: {problem}",
                              problem=problem)[:300]
            return
        self.records.append(record)


def encode_state(value: Any, budget: Budget) -> Any:
    state = capture_state(value)
    return None if state is None else encode(state, budget)


class Replayer:
    """Stands in for the learner's answer in the judge, from the sandbox's records."""

    def __init__(self, records: list, budget: Budget) -> None:
        if not isinstance(records, list):
            raise BadObservation(tr("the records are not a list"))
        self.records = records
        self.budget = budget
        self.used = 0

    def function(self, *args: Any, **kwargs: Any) -> Any:
        return self._replay(CALL, args, kwargs)

    def unit(self, compute: Callable[[], Any]) -> Any:
        return self._replay(UNIT, (), {})

    def _replay(self, kind: str, args: tuple, kwargs: dict) -> Any:
        if self.used >= len(self.records):
            raise CaseFailed(tr("the sandbox recorded no result for this step: the function "
                                "was not called there (the notebook changed the checkers, or "
                                "the check stopped before this step)"), diagnosed=True)
        record = self.records[self.used]
        self.used += 1
        try:
            return self._apply(record, kind, args, kwargs)
        except BadObservation as error:
            raise CaseFailed(tr("the sandbox's record of this call is not valid: {error}",
                                error=error), diagnosed=True) from None

    def _apply(self, record: object, kind: str, args: tuple, kwargs: dict) -> Any:
        if not isinstance(record, dict) or record.get("kind") != kind:
            raise BadObservation(tr("record {number} is not the {kind} the check made here",
                                    number=self.used, kind=kind))
        for target, state in _pairs(record, args, kwargs):
            if state is not None:
                apply_state(target, decode(state, self.budget), self.budget)
        if record.get("rng") is not None:
            rng = decode(record["rng"], self.budget)
            if type(rng) is not torch.Tensor or rng.dtype != torch.uint8 \
                    or rng.shape != torch.get_rng_state().shape:
                raise BadObservation(tr("the recorded random state is not PyTorch's"))
            torch.set_rng_state(rng)
        if "error" in record:
            error = decode_exception(record["error"], self.budget)
        elif "result" in record:
            return decode(record["result"], self.budget)
        else:
            raise BadObservation(tr("record {number} has neither a result nor an error",
                                    number=self.used))
        raise error


def _pairs(record: dict, args: tuple, kwargs: dict) -> list[tuple[Any, Any]]:
    states = record.get("args") or []
    named = record.get("kwargs") or {}
    if not isinstance(states, list) or not isinstance(named, dict):
        raise BadObservation(tr("the arguments' states are malformed"))
    if len(states) > len(args) or any(key not in kwargs for key in named):
        raise BadObservation(tr("the record names arguments the check did not pass"))
    return list(zip(args, states, strict=False)) + [(kwargs[k], v) for k, v in named.items()]
