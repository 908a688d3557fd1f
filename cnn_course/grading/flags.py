"""Point an instructor at code that tampers with checking, without changing any score.

Scores do not depend on what a notebook does to the course's checkers: the checkers that decide
run outside the sandbox. Code that tries anyway (patching a checker or torch, printing its own
✅ lines, reaching into Python's internals, signalling processes) is still worth a human look.
Each flag names the cell and what it does. The scan reads the code and never runs it.
"""

from __future__ import annotations

import ast

from cnn_course.checks.core import PASS_MARK
from cnn_course.grading.chapters import Chapter
from cnn_course.grading.notebook import Cell

# Names whose use, in a course notebook, only makes sense for reaching into the machinery.
_SUSPICIOUS_ATTRIBUTES = {
    ("sys", "modules"): "touches sys.modules",
    ("sys", "settrace"): "installs a trace hook",
    ("sys", "setprofile"): "installs a profile hook",
    ("sys", "addaudithook"): "installs an audit hook",
    ("inspect", "stack"): "inspects the call stack",
    ("inspect", "trace"): "inspects the call stack",
    ("inspect", "getouterframes"): "inspects the call stack",
    ("inspect", "getinnerframes"): "inspects the call stack",
    ("gc", "callbacks"): "runs code at garbage collection (gc.callbacks)",
    ("os", "write"): "writes to raw file descriptors",
    ("os", "writev"): "writes to raw file descriptors",
    ("os", "pwrite"): "writes to raw file descriptors",
    ("os", "fdopen"): "writes to raw file descriptors",
    ("os", "dup"): "writes to raw file descriptors",
    ("os", "dup2"): "writes to raw file descriptors",
    ("os", "_exit"): "ends the Python process",
    ("os", "kill"): "sends signals to processes",
    ("signal", "signal"): "changes signal handlers",
    ("signal", "alarm"): "changes the alarm timer",
    ("signal", "setitimer"): "changes the alarm timer",
    ("importlib", "reload"): "reloads a module",
}
# Attribute names that only serve to reach into the machinery, on whatever object (and the
# same names in strings, as in getattr(frame, "f_back")).
_SUSPICIOUS_NAMES = {
    **dict.fromkeys(("_getframe", "currentframe", "_current_frames", "f_back", "f_globals",
                     "f_locals", "f_builtins", "f_trace", "tb_frame", "gi_frame", "cr_frame",
                     "ag_frame"), "inspects the call stack"),
    **dict.fromkeys(("get_objects", "get_referrers", "get_referents"),
                    "searches all live objects"),
    "__code__": "reads or replaces a function's __code__",
    **dict.fromkeys(("__globals__", "__closure__", "cell_contents"),
                    "reads or changes a function's globals or closure"),
    "__subclasses__": "searches all subclasses of a class",
    **dict.fromkeys(("meta_path", "path_hooks", "path_importer_cache"),
                    "changes how modules are imported (sys.meta_path)"),
    **dict.fromkeys(("TorchFunctionMode", "BaseTorchFunctionMode", "TorchDispatchMode",
                     "_push_on_torch_function_stack", "_push_on_torch_dispatch_stack",
                     "_set_dispatch_mode", "_push_mode"),
                    "installs a PyTorch function or dispatch mode"),
    **dict.fromkeys(("register_module_forward_hook", "register_module_forward_pre_hook",
                     "register_module_backward_hook", "register_module_full_backward_hook",
                     "register_module_full_backward_pre_hook",
                     "register_module_buffer_registration_hook",
                     "register_module_module_registration_hook",
                     "register_module_parameter_registration_hook"),
                    "installs a global PyTorch module hook"),
    **dict.fromkeys(("saved_tensors_hooks", "_push_saved_tensors_default_hooks"),
                    "installs saved-tensor hooks"),
    "__torch_function__": "changes how PyTorch treats its objects (__torch_function__)",
    "__torch_dispatch__": "changes how PyTorch treats its objects (__torch_dispatch__)",
}
_SUSPICIOUS_CALLS = {"exec": "runs code built from a string (exec)",
                     "eval": "runs code built from a string (eval)",
                     "compile": "runs code built from a string (compile)",
                     "__import__": "imports a module by name (__import__)"}
_SUSPICIOUS_MODULES = {"ctypes": "imports ctypes", "builtins": "imports builtins",
                       "cnn_course.grade": "imports the grader",
                       "cnn_course.grading": "imports the grader",
                       "__main__": "imports __main__",
                       "threading": "imports threading (a thread can run during the checks)",
                       "_thread": "imports _thread (a thread can run during the checks)",
                       "torch.library": "registers PyTorch kernels (torch.library)"}
# Imports whose objects a notebook has no reason to change (matplotlib's settings, say, are
# fine to change).
_GUARDED_ORIGINS = ("cnn_course", "torch", "numpy", "builtins", "sys", "math", "importlib",
                    "json", "signal", "gc", "inspect", "functools", "copy", "types")


def _parse(source: str) -> ast.AST | None:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
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
        elif isinstance(node, ast.Attribute):
            what = _SUSPICIOUS_NAMES.get(node.attr)
            if isinstance(node.value, ast.Name):
                what = _SUSPICIOUS_ATTRIBUTES.get((node.value.id, node.attr), what)
            if what:
                found.append(what)
        elif isinstance(node, ast.Name) and node.id == "__builtins__":
            found.append("touches __builtins__")
        elif isinstance(node, ast.Name) and node.id in _SUSPICIOUS_NAMES:
            found.append(_SUSPICIOUS_NAMES[node.id])
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) \
                else [node.module or ""]
            for module in modules:
                for prefix, what in _SUSPICIOUS_MODULES.items():
                    if module == prefix or module.startswith(prefix + "."):
                        found.append(what)
            if isinstance(node, ast.ImportFrom):
                found.extend(_SUSPICIOUS_NAMES[a.name] for a in node.names
                             if a.name in _SUSPICIOUS_NAMES)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if PASS_MARK in node.value:
                found.append(f"prints its own {PASS_MARK} line")
            elif node.value in _SUSPICIOUS_NAMES:
                found.append(_SUSPICIOUS_NAMES[node.value])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in _SUSPICIOUS_CALLS:
            found.append(_SUSPICIOUS_CALLS[node.func.id])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and node.name in _SUSPICIOUS_NAMES:
            found.append(_SUSPICIOUS_NAMES[node.name])
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
            try:
                found = _cell_flags(tree, imported, checks)
            except (RecursionError, MemoryError):   # deeply nested code: nothing to flag
                found = []
            if found:
                flags.append(f"cell {cell.index}: {'; '.join(found)}")
    return flags
