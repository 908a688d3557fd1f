"""Exercise checkers, one module per chapter; :mod:`cnn_course.checks.core` is shared."""

from cnn_course.checks.core import CheckResult, has_passed, solved_or_reference

__all__ = ["CheckResult", "has_passed", "solved_or_reference"]
