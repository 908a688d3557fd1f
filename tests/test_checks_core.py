"""The shared checker machinery: ``forbid`` and ``Exercises.run_check``."""

import ast
import types
from pathlib import Path

import pytest
import torch

import cnn_course.checks
from cnn_course.checks.core import Case, CaseFailed, Exercise, Exercises, MethodViolation, forbid

CHECKS_DIR = Path(cnn_course.checks.__file__).parent
CHECKER_FILES = sorted(path for path in CHECKS_DIR.glob("*.py")
                       if path.name not in ("__init__.py", "core.py"))


def _module() -> types.ModuleType:
    module = types.ModuleType("patched")
    module.double = lambda x: 2 * x
    return module


class _Base:
    def inherited(self) -> str:
        return "base"


class _Child(_Base):
    def own(self) -> str:
        return "child"


# ---- forbid ---------------------------------------------------------------------------------

def test_forbid_refuses_while_active_and_restores_module_attributes():
    module = _module()
    original = module.double
    with forbid([(module, "double")], "no doubling"):
        with pytest.raises(MethodViolation, match="no doubling"):
            module.double(3)
    assert module.double is original and module.double(3) == 6


def test_forbid_restores_own_and_inherited_class_attributes():
    own = vars(_Child)["own"]
    with forbid([(_Child, "own"), (_Child, "inherited")], "refused"):
        with pytest.raises(MethodViolation):
            _Child().inherited()
        with pytest.raises(MethodViolation):
            _Child().own()
        assert _Base().inherited() == "base"   # the base class itself is untouched
    assert "inherited" not in vars(_Child)      # inherited again, not copied onto the class
    assert vars(_Child)["own"] is own
    assert _Child().inherited() == "base" and _Child().own() == "child"


def test_forbid_restores_attributes_torch_tensor_inherits():
    assert "relu" not in vars(torch.Tensor)
    with forbid([(torch.Tensor, "relu")], "refused"), pytest.raises(MethodViolation):
        torch.tensor([-1.0]).relu()
    assert "relu" not in vars(torch.Tensor)
    assert torch.tensor([-1.0]).relu().item() == 0.0


def test_forbid_skips_names_the_owner_lacks():
    module = _module()
    with forbid([(module, "missing"), (module, "double")], "refused"):
        assert not hasattr(module, "missing")
        with pytest.raises(MethodViolation):
            module.double(1)
    assert not hasattr(module, "missing")


def test_forbid_restores_after_an_exception_inside_the_block():
    module = _module()
    original = module.double
    with pytest.raises(ValueError), forbid([(module, "double"), (_Child, "inherited")],
                                           "refused"):
        raise ValueError("the learner's code failed")
    assert module.double is original
    assert "inherited" not in vars(_Child)


def test_nested_forbid_blocks_keep_their_own_messages_and_unwind():
    module = _module()
    module.halve = lambda x: x / 2
    double, halve = module.double, module.halve
    with forbid([(module, "double")], "outer"):
        with forbid([(module, "halve")], "inner"):
            with pytest.raises(MethodViolation, match="outer"):
                module.double(1)
            with pytest.raises(MethodViolation, match="inner"):
                module.halve(1)
        assert module.halve is halve
        with forbid([(module, "double")], "again"), pytest.raises(MethodViolation,
                                                                 match="again"):
            module.double(1)
        with pytest.raises(MethodViolation, match="outer"):
            module.double(1)
    assert module.double is double and module.halve is halve


# ---- Exercises.run_check --------------------------------------------------------------------

def _square_cases(fn, hidden=False):
    values = [1, 2, 3] + ([7] if hidden else [])

    def case(value):
        def run():
            if fn(value) != value * value:
                raise CaseFailed(f"got {fn(value)!r} for {value}")
        return Case(f"x = {value}", run)
    return [case(value) for value in values]


EXERCISES = Exercises({"square": Exercise(_square_cases, "all {n} cases right.",
                                          "multiply x by itself.")})


def test_run_check_passes_with_the_success_message_and_counts_hidden_cases():
    result = EXERCISES.run_check("square", lambda x: x * x)
    assert result.passed and result.exercise == "square"
    assert result.message == "all 3 cases right." and result.cases_run == 3
    assert EXERCISES.run_check("square", lambda x: x * x, hidden=True).cases_run == 4


def test_run_check_reports_the_first_failure_with_the_hint():
    result = EXERCISES.run_check("square", lambda x: x + x if x > 2 else x * x)
    assert not result.passed and result.cases_run == 3
    assert result.message == 'case "x = 3": got 6 for 3. Hint: multiply x by itself.'


def test_run_check_reports_method_violations_and_unknown_exercises():
    def refused(x):
        raise MethodViolation("used a built-in")
    result = EXERCISES.run_check("square", refused)
    assert not result.passed and result.method and "Hint" not in result.message
    with pytest.raises(KeyError):
        EXERCISES.run_check("cube", lambda x: x ** 3)


# ---- no checker brings its own copy back ----------------------------------------------------

@pytest.mark.parametrize("path", CHECKER_FILES, ids=lambda path: path.stem)
def test_checker_uses_the_shared_run_check_and_forbid(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = [node.name for node in ast.walk(tree)
                 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    assert "run_check" not in functions, "use run_check = EXERCISES.run_check"
    setattr_calls = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
                     and isinstance(node.func, ast.Name) and node.func.id == "setattr"]
    assert not setattr_calls, f"setattr on lines {setattr_calls}: use core.forbid"
    assigned = {target.id for node in tree.body if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    assert {"EXERCISES", "run_check"} <= assigned


@pytest.mark.parametrize("path", CHECKER_FILES, ids=lambda path: path.stem)
def test_checker_does_not_import_the_reference_answers(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names]
    assert not [name for name in imported if name and name.startswith("cnn_course.reference")]
