"""The package's layering, as the README's "How the code is laid out" describes it.

Every ``import`` in ``cnn_course/`` (function-level ones included) is read with ``ast`` and
checked against the layer rules below, so that a new module cannot quietly tie the layers
together.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cnn_course"

SHARED = {"arith", "config", "data", "device", "figure_translation", "images", "messages",
          "models", "plots", "summary", "timing", "training"}
SUB_PACKAGES = {"lessons", "reference", "checks", "widgets", "tools", "grading"}

#: layer -> the layers its modules may import (every layer may import the shared library)
ALLOWED = {
    "shared": set(),
    "lessons": {"lessons"},
    "reference": {"lessons", "reference"},
    "checks": {"lessons", "checks"},      # never the answers in reference
    "widgets": {"lessons", "reference", "widgets"},
    "tools": {"checks", "tools", "widgets"},   # widgets: the explorers' messages, to check
    "grading": SUB_PACKAGES,               # the grader and its command, grade.py
}


def layer_of(module: str) -> str | None:
    """The layer of a dotted name inside the package (None for the package itself)."""
    parts = module.split(".")
    if parts[0] != "cnn_course" or len(parts) == 1:
        return None
    if parts[1] in SUB_PACKAGES:
        return parts[1]
    if parts[1] == "grade":
        return "grading"
    if parts[1] in SHARED:
        return "shared"
    return parts[1]  # e.g. _moved: not a layer, checked on its own


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) for every import of the package in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "cnn_course":  # from cnn_course import data, grade, ...
                found += [(node.lineno, f"cnn_course.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "cnn_course"]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_top_level_module_is_shared_or_named():
    """The top level holds the shared library, the grading command and the package's own
    machinery; chapter helpers live in lessons/ (one module per chapter slug)."""
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top - {"__init__", "_moved", "grade"} <= SHARED, top - SHARED
    slugs = {p.stem for p in (PACKAGE / "checks").glob("*.py")} - {"__init__", "core"}
    assert slugs == {p.stem for p in (PACKAGE / "reference").glob("*.py")} - {"__init__"}
    lessons = {p.stem for p in (PACKAGE / "lessons").glob("*.py")} - {"__init__"}
    assert lessons <= slugs | {"intro", "overview"}, lessons - slugs


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_follow_the_layers(path):
    own = layer_of(module_name(path)) or "shared"
    if own == "_moved":
        return  # names old paths only as strings
    allowed = ALLOWED[own] | {"shared"}
    wrong = [f"line {line}: {name} ({layer_of(name)})" for line, name in imported_names(path)
             if layer_of(name) not in allowed | {None, "_moved"}]
    assert not wrong, f"{module_name(path)} ({own}) may import only {sorted(allowed)}: {wrong}"


def test_nothing_outside_grading_imports_it():
    for path in MODULES:
        if layer_of(module_name(path)) == "grading":
            continue
        names = [name for _, name in imported_names(path) if layer_of(name) == "grading"]
        assert not names, f"{module_name(path)} imports {names}"
