"""What every chapter's checkers promise: the course's reference answer passes the visible and
the hidden cases, and an unsolved exercise is reported as not solved yet (not as wrong)."""

import importlib
import importlib.resources

import pytest

CHAPTERS = ["conv", "activations", "pooling", "fully_connected", "backprop", "optimizers",
            "lenet", "cifar"]


def _exercises() -> list[tuple[str, str]]:
    return [(chapter, exercise) for chapter in CHAPTERS
            for exercise in importlib.import_module(f"cnn_course.checks.{chapter}").EXERCISES]


def _modules(chapter: str):
    return (importlib.import_module(f"cnn_course.checks.{chapter}"),
            importlib.import_module(f"cnn_course.reference.{chapter}"))


def test_every_checker_module_is_covered():
    import cnn_course.checks as package

    modules = {path.stem for path in importlib.resources.files(package).iterdir()
               if path.suffix == ".py" and path.stem not in ("__init__", "core")}
    assert modules == set(CHAPTERS)


@pytest.mark.parametrize("chapter, exercise", _exercises())
def test_reference_answer_passes_visible_and_hidden_cases(chapter, exercise):
    checks, reference = _modules(chapter)
    for hidden in (False, True):
        result = checks.run_check(exercise, getattr(reference, exercise), hidden=hidden)
        assert result.passed, f"{chapter}.{exercise} (hidden={hidden}): {result.message}"


@pytest.mark.parametrize("chapter, exercise", _exercises())
def test_unsolved_stub_is_reported_as_not_solved(chapter, exercise):
    def stub(*args, **kwargs):
        raise NotImplementedError()
    checks, _ = _modules(chapter)
    result = checks.run_check(exercise, stub)
    assert not result.passed and "not solved yet" in result.message
