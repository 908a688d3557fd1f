"""Run-size switches read from the environment.

``CNN_COURSE_QUICK=1`` asks notebooks for a shortened run (fewer epochs, a data subset). The
test suite sets it when it executes the *learner* notebooks, whose training cells only need to
prove they run; solution notebooks run at full size under nbval.
"""

from __future__ import annotations

import os


def quick_mode() -> bool:
    """True when a shortened run is asked for (``CNN_COURSE_QUICK=1``)."""
    return os.environ.get("CNN_COURSE_QUICK", "") == "1"


def pick(full: object, quick: object) -> object:
    """``quick`` in quick mode, else ``full``: ``epochs = pick(10, 1)``."""
    return quick if quick_mode() else full


def small_mode() -> bool:
    """True when a solution notebook too heavy for the test suite's budget should run a
    documented smaller configuration (``CNN_COURSE_SMALL=1``, set by ``scripts/test.sh``).
    Its stored outputs still show the full run."""
    return quick_mode() or os.environ.get("CNN_COURSE_SMALL", "") == "1"
