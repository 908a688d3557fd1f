"""What every chapter's checkers promise: the course's reference answer passes the visible and
the hidden cases, an unsolved exercise is reported as not solved yet (not as wrong), and the
hidden cases hold shapes or arguments that the visible ones do not."""

import copy
import importlib
import importlib.resources

import pytest
import torch

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


# Exercises whose hidden cases may all repeat the visible descriptions, each with its reason.
# Empty: every exercise has hidden-only cases (even the ones whose answer is a fixed kernel or
# a fixed model use other images or batch sizes). Add an entry only for an exercise that can
# have no other shapes or arguments, and say why.
_NO_HIDDEN_ONLY_CASES: dict[tuple[str, str], str] = {}


def _descriptions(chapter: str, exercise: str, hidden: bool) -> list[str]:
    checks, reference = _modules(chapter)
    return [case.description
            for case in checks.EXERCISES[exercise].cases(getattr(reference, exercise),
                                                         hidden=hidden)]


def test_allow_list_names_real_exercises():
    assert set(_NO_HIDDEN_ONLY_CASES) <= set(_exercises())


@pytest.mark.parametrize("chapter, exercise", _exercises())
def test_hidden_cases_are_not_only_reseeded_visible_ones(chapter, exercise):
    """Hidden cases add shapes or arguments of their own, so that an answer fitted to the
    visible cases (a lookup of their results, code for their shapes only) can fail them."""
    visible = set(_descriptions(chapter, exercise, hidden=False))
    hidden_only = [d for d in _descriptions(chapter, exercise, hidden=True) if d not in visible]
    if (chapter, exercise) in _NO_HIDDEN_ONLY_CASES:
        assert not hidden_only, f"{chapter}.{exercise} has hidden-only cases now: drop it from "\
            "the allow-list"
    else:
        assert hidden_only, f"{chapter}.{exercise}: the hidden cases only re-seed the visible ones"


def _key(value: object) -> object:
    """A hashable fingerprint of a call's arguments (tensors by shape and values)."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), tuple(value.flatten().tolist()))
    if isinstance(value, list | tuple):
        return tuple(_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _key(v)) for k, v in value.items()))
    return repr(value)


def _lookup_of_visible_results(chapter: str, exercise: str):
    """An answer that memorised the reference's results on the visible cases and returns the
    first of them for any call it has not seen."""
    checks, reference = _modules(chapter)
    answer = getattr(reference, exercise)
    table: dict[object, object] = {}

    def recorder(*args, **kwargs):
        result = answer(*args, **kwargs)
        table[_key((args, kwargs))] = copy.deepcopy(result)
        return result

    assert checks.run_check(exercise, recorder).passed
    first = next(iter(table.values()))

    def memorised(*args, **kwargs):
        return copy.deepcopy(table.get(_key((args, kwargs)), first))
    return memorised


@pytest.mark.parametrize("chapter, exercise", [("lenet", "lenet_layer_table"),
                                               ("conv", "conv_params"),
                                               ("fully_connected", "one_hot")])
def test_lookup_of_the_visible_results_fails_a_hidden_only_case(chapter, exercise):
    checks, _ = _modules(chapter)
    memorised = _lookup_of_visible_results(chapter, exercise)
    assert checks.run_check(exercise, memorised).passed
    result = checks.run_check(exercise, memorised, hidden=True)
    assert not result.passed
    visible = set(_descriptions(chapter, exercise, hidden=False))
    failed_case = result.message.split('"')[1]
    assert failed_case not in visible, result.message
