"""Point an instructor at code that tampers with checking, without changing any score.

The grader's checks do not depend on what a notebook does to the course's checkers, but code
that tries (patching a checker or torch, printing its own ✅ lines, reaching into Python's
internals) is worth a human look, and the last kind can defeat any in-process check. Each
flag names the cell and what it does.
"""

from __future__ import annotations

import ast

from cnn_course.checks.core import PASS_MARK
from cnn_course.grading.chapters import Chapter
from cnn_course.grading.notebook import Cell

# Names whose use, in a course notebook, only makes sense for reaching into the machinery.
_SUSPICIOUS_ATTRIBUTES = {
    ("sys", "modules"): "touches sys.modules",
    ("sys", "_getframe"): "inspects the call stack",
    ("sys", "settrace"): "installs a trace hook",
    ("sys", "setprofile"): "installs a profile hook",
    ("sys", "addaudithook"): "installs an audit hook",
    ("inspect", "currentframe"): "inspects the call stack",
    ("gc", "get_objects"): "searches all live objects",
    ("gc", "get_referrers"): "searches all live objects",
    ("os", "write"): "writes to raw file descriptors",
    ("os", "_exit"): "ends the Python process",
    ("os", "kill"): "sends signals to processes",
    ("signal", "signal"): "changes signal handlers",
    ("signal", "alarm"): "changes the alarm timer",
    ("signal", "setitimer"): "changes the alarm timer",
    ("importlib", "reload"): "reloads a module",
}
_SUSPICIOUS_MODULES = {"ctypes": "imports ctypes", "builtins": "imports builtins",
                       "cnn_course.grade": "imports the grader",
                       "cnn_course.grading": "imports the grader"}
# Imports whose objects a notebook has no reason to change (matplotlib's settings, say, are
# fine to change).
_GUARDED_ORIGINS = ("cnn_course", "torch", "numpy", "builtins", "sys", "math", "importlib")


def _parse(source: str) -> ast.AST | None:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return None


def _root(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _imported_names(trees: list[ast.AST]) -> set[str]:
    """Local names bound to the course package, torch, NumPy or Python's own modules."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    if alias.name.startswith(_GUARDED_ORIGINS):
                        names.add(local)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    _GUARDED_ORIGINS):
                names.update(alias.asname or alias.name for alias in node.names)
    return names


def _cell_flags(tree: ast.AST, imported: set[str], checks: set[str]) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            if isinstance(target, (ast.Attribute, ast.Subscript)) and _root(target) in imported:
                found.append(f"changes {ast.unparse(target)}")
            elif isinstance(target, ast.Name) and target.id in checks:
                found.append(f"redefines {target.id}")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in checks:
            found.append(f"redefines {node.name}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("setattr", "delattr") and node.args \
                and _root(node.args[0]) in imported:
            found.append(f"calls {node.func.id} on {ast.unparse(node.args[0])}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            what = _SUSPICIOUS_ATTRIBUTES.get((node.value.id, node.attr))
            if what:
                found.append(what)
            elif node.attr == "__code__":
                found.append("reads or replaces a function's __code__")
        elif isinstance(node, ast.Name) and node.id == "__builtins__":
            found.append("touches __builtins__")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) \
                else [node.module or ""]
            for module in modules:
                for prefix, what in _SUSPICIOUS_MODULES.items():
                    if module == prefix or module.startswith(prefix + "."):
                        found.append(what)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and PASS_MARK in node.value:
            found.append(f"prints its own {PASS_MARK} line")
    return list(dict.fromkeys(found))


def scan(cells: list[Cell], chapter: Chapter | None) -> list[str]:
    """One line per cell with something worth a look: ``"cell 9: changes F.conv2d"``."""
    parsed = [(cell, _parse(cell.source)) for cell in cells if cell.is_code]
    trees = [tree for _, tree in parsed if tree is not None]
    imported = _imported_names(trees)
    exercise_names = {e.name for e in chapter.exercises} if chapter else set()
    checks = {f"check_{name}" for name in exercise_names} | {"run_check", "run_cases", "report"}
    flags = []
    for cell, tree in parsed:
        if tree is not None:
            found = _cell_flags(tree, imported, checks)
            if found:
                flags.append(f"cell {cell.index}: {'; '.join(found)}")
    return flags
