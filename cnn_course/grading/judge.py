"""Decide an exercise outside the sandbox, from what the sandbox observed.

The judge runs the course's own checker for the exercise, in the grader's process, with the
same hidden seed the sandbox used, and with a :class:`~cnn_course.grading.recording.Replayer`
in place of the learner's answer. The checker computes every expected value itself; the
learner's outputs come from the records. No learner code runs here, and neither the
reference answers nor the expected values of the hidden cases ever entered the sandbox.

Judging is serialized by a lock: checkers seed PyTorch's global random generator.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass

import torch

from cnn_course.checks import core
from cnn_course.grading.protocol import BadObservation, Budget
from cnn_course.grading.recording import Replayer
from cnn_course.messages import tr

_lock = threading.Lock()


@dataclass(frozen=True)
class Verdict:
    """The judge's decision on one set of cases (visible or hidden)."""

    passed: bool
    message: str
    method: str | None = None   # a best-effort method check that failed, when one did


def judge(module: str, name: str, observation: dict, seed: int, budget: Budget,
          threads: int = 1, time_limit: float | None = None) -> Verdict:
    """Judge one set of cases of exercise ``module.name`` from the sandbox's ``observation``
    (an ``observations`` event: its records, and whether the sandbox stopped early).

    ``threads`` is the number of PyTorch threads the sandbox used: the judge computes with as
    many, so that its expected values round as the sandbox's did (a training step with Adam
    turns rounding noise in a zero gradient into a full step)."""
    hidden = observation.get("hidden") is True
    method = observation.get("method")
    method = method[:300] if isinstance(method, str) and method else None
    if observation.get("problem"):
        return Verdict(False, tr("could not be judged: {problem}",
                                 problem=str(observation["problem"])[:300]))
    try:
        replayer = Replayer(observation.get("records"), budget)
    except BadObservation as error:
        return Verdict(False, tr("could not be judged: {problem}", problem=error))
    checker = importlib.import_module(f"cnn_course.checks.{module}")
    with _lock, core.hidden_seed(seed), core.observing(replayer), \
            _clean_torch(threads):
        try:
            result = checker.run_check(name, replayer.function, hidden)
        except BadObservation as error:
            return Verdict(False, tr("the sandbox's observations are not valid: {error}",
                                     error=error))
        except Exception as error:  # noqa: BLE001 - odd data must not stop the other grades
            return Verdict(False, tr("could not be judged: {error_type}: {error}",
                                     error_type=type(error).__name__, error=str(error)[:200]))
    message = result.message
    if not result.passed and observation.get("timed_out") and replayer.used >= len(
            replayer.records):
        message = (tr("did not finish within the check's time limit") if time_limit is None
                   else tr("did not finish within {seconds:g} s", seconds=time_limit))
    if result.passed and method:
        return Verdict(False, tr("method check: {method}", method=method), method)
    return Verdict(result.passed, message, message if result.method else None)


class _clean_torch:
    """PyTorch's global settings as the checkers expect them, put back afterwards."""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def __enter__(self) -> None:
        self.state = (torch.get_rng_state(), torch.get_default_dtype(),
                      torch.is_grad_enabled(), torch.get_num_threads())
        torch.manual_seed(0)
        torch.set_default_dtype(torch.float32)
        torch.set_grad_enabled(True)
        torch.set_num_threads(self.threads)

    def __exit__(self, *exc: object) -> None:
        rng, dtype, grad, threads = self.state
        torch.set_rng_state(rng)
        torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad)
        torch.set_num_threads(threads)
