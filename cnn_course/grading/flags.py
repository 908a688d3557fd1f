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
from cnn_course.messages import N_, tr, translated

# Names whose use, in a course notebook, only makes sense for reaching into the machinery.
_SUSPICIOUS_ATTRIBUTES = {
    ("sys", "modules"): N_("touches sys.modules"),
    ("sys", "settrace"): N_("installs a trace hook"),
    ("sys", "setprofile"): N_("installs a profile hook"),
    ("sys", "addaudithook"): N_("installs an audit hook"),
    ("inspect", "stack"): N_("inspects the call stack"),
    ("inspect", "trace"): N_("inspects the call stack"),
    ("inspect", "getouterframes"): N_("inspects the call stack"),
    ("inspect", "getinnerframes"): N_("inspects the call stack"),
    ("gc", "callbacks"): N_("runs code at garbage collection (gc.callbacks)"),
    ("os", "write"): N_("writes to raw file descriptors"),
    ("os", "writev"): N_("writes to raw file descriptors"),
    ("os", "pwrite"): N_("writes to raw file descriptors"),
    ("os", "fdopen"): N_("writes to raw file descriptors"),
    ("os", "dup"): N_("writes to raw file descriptors"),
    ("os", "dup2"): N_("writes to raw file descriptors"),
    ("os", "_exit"): N_("ends the Python process"),
    ("os", "kill"): N_("sends signals to processes"),
    ("signal", "signal"): N_("changes signal handlers"),
    ("signal", "alarm"): N_("changes the alarm timer"),
    ("signal", "setitimer"): N_("changes the alarm timer"),
    ("importlib", "reload"): N_("reloads a module"),
}
# Attribute names that only serve to reach into the machinery, on whatever object (and the
# same names in strings, as in getattr(frame, "f_back")).
_SUSPICIOUS_NAMES = {
    **dict.fromkeys(("_getframe", "currentframe", "_current_frames", "f_back", "f_globals",
                     "f_locals", "f_builtins", "f_trace", "tb_frame", "gi_frame", "cr_frame",
                     "ag_frame"), N_("inspects the call stack")),
    **dict.fromkeys(("get_objects", "get_referrers", "get_referents"),
                    N_("searches all live objects")),
    "__code__": N_("reads or replaces a function's __code__"),
    **dict.fromkeys(("__globals__", "__closure__", "cell_contents"),
                    N_("reads or changes a function's globals or closure")),
    "__subclasses__": N_("searches all subclasses of a class"),
    **dict.fromkeys(("meta_path", "path_hooks", "path_importer_cache"),
                    N_("changes how modules are imported (sys.meta_path)")),
    **dict.fromkeys(("TorchFunctionMode", "BaseTorchFunctionMode", "TorchDispatchMode",
                     "_push_on_torch_function_stack", "_push_on_torch_dispatch_stack",
                     "_set_dispatch_mode", "_push_mode"),
                    N_("installs a PyTorch function or dispatch mode")),
    **dict.fromkeys(("register_module_forward_hook", "register_module_forward_pre_hook",
                     "register_module_backward_hook", "register_module_full_backward_hook",
                     "register_module_full_backward_pre_hook",
                     "register_module_buffer_registration_hook",
                     "register_module_module_registration_hook",
                     "register_module_parameter_registration_hook"),
                    N_("installs a global PyTorch module hook")),
    **dict.fromkeys(("saved_tensors_hooks", "_push_saved_tensors_default_hooks"),
                    N_("installs saved-tensor hooks")),
    "__torch_function__": N_("changes how PyTorch treats its objects (__torch_function__)"),
    "__torch_dispatch__": N_("changes how PyTorch treats its objects (__torch_dispatch__)"),
}
_SUSPICIOUS_CALLS = {"exec": N_("runs code built from a string (exec)"),
                     "eval": N_("runs code built from a string (eval)"),
                     "compile": N_("runs code built from a string (compile)"),
                     "__import__": N_("imports a module by name (__import__)")}
_SUSPICIOUS_MODULES = {"ctypes": N_("imports ctypes"), "builtins": N_("imports builtins"),
                       "cnn_course.grade": N_("imports the grader"),
                       "cnn_course.grading": N_("imports the grader"),
                       "__main__": N_("imports __main__"),
                       "threading": N_("imports threading (a thread can run during the "
                                       "checks)"),
                       "_thread": N_("imports _thread (a thread can run during the checks)"),
                       "torch.library": N_("registers PyTorch kernels (torch.library)")}
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
                found.append(tr("changes {target}", target=ast.unparse(target)))
            elif isinstance(target, ast.Name) and target.id in checks:
                found.append(tr("redefines {name}", name=target.id))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in checks:
            found.append(tr("redefines {name}", name=node.name))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("setattr", "delattr") and node.args \
                and _root(node.args[0]) in imported:
            found.append(tr("calls {function} on {target}", function=node.func.id,
                            target=ast.unparse(node.args[0])))
        elif isinstance(node, ast.Attribute):
            what = _SUSPICIOUS_NAMES.get(node.attr)
            if isinstance(node.value, ast.Name):
                what = _SUSPICIOUS_ATTRIBUTES.get((node.value.id, node.attr), what)
            if what:
                found.append(translated(what))
        elif isinstance(node, ast.Name) and node.id == "__builtins__":
            found.append(tr("touches __builtins__"))
        elif isinstance(node, ast.Name) and node.id in _SUSPICIOUS_NAMES:
            found.append(translated(_SUSPICIOUS_NAMES[node.id]))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) \
                else [node.module or ""]
            for module in modules:
                for prefix, what in _SUSPICIOUS_MODULES.items():
                    if module == prefix or module.startswith(prefix + "."):
                        found.append(translated(what))
            if isinstance(node, ast.ImportFrom):
                found.extend(translated(_SUSPICIOUS_NAMES[a.name]) for a in node.names
                             if a.name in _SUSPICIOUS_NAMES)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if PASS_MARK in node.value:
                found.append(tr("prints its own {mark} line", mark=PASS_MARK))
            elif node.value in _SUSPICIOUS_NAMES:
                found.append(translated(_SUSPICIOUS_NAMES[node.value]))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in _SUSPICIOUS_CALLS:
            found.append(translated(_SUSPICIOUS_CALLS[node.func.id]))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and node.name in _SUSPICIOUS_NAMES:
            found.append(translated(_SUSPICIOUS_NAMES[node.name]))
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
                flags.append(tr("cell {index}: {found}", index=cell.index,
                                found=tr("; ").join(found)))
    return flags
