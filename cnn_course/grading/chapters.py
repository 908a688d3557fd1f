"""What each chapter's exercises are, read from the official solution notebooks.

A solution notebook ``solutions/NN_name.ipynb`` imports its checkers from
``cnn_course.checks.<module>`` and calls ``check_<name>(<expression>)`` in each cell tagged
``check``. That is all the grader needs: the exercise is ``<name>`` of checker module
``<module>``, and ``<expression>`` (usually the learner's function's name) is evaluated in the
learner's notebook after its cells ran. A new chapter is graded as soon as its solution
notebook exists; the grader needs no list of its own.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from cnn_course.messages import tr
from cnn_course.tools.authoring import learner_version
from cnn_course.tools.notebook_format import BEGIN, CHECK_TAG

CHECKS_PACKAGE = "cnn_course.checks"
_CHECK_PREFIX = "check_"
_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.MULTILINE)


class ChapterError(ValueError):
    """The solution notebooks cannot be read as chapters; the message says why."""


@dataclass(frozen=True)
class ExerciseSpec:
    """One graded exercise: checker ``module`` (``"conv"``), exercise ``name``, and the
    ``expression`` that gives the learner's answer (``"conv2d_loops"``)."""

    module: str
    name: str
    expression: str

    @property
    def key(self) -> str:
        """Unique across chapters: ``"conv.conv2d_loops"``."""
        return f"{self.module}.{self.name}"

    @property
    def names(self) -> tuple[str, ...]:
        """The names the expression reads, e.g. the learner's function."""
        try:
            tree = ast.parse(self.expression, mode="eval")
        except SyntaxError:
            return ()
        return tuple(dict.fromkeys(node.id for node in ast.walk(tree)
                                   if isinstance(node, ast.Name)))


@dataclass(frozen=True)
class Chapter:
    """A chapter as the grader sees it."""

    id: str                                # the solution notebook's stem: "01_convolution"
    title: str
    exercises: tuple[ExerciseSpec, ...]
    fingerprint: frozenset[str] = field(repr=False)   # normalized learner-notebook cells
    preload: tuple[str, ...] = ()          # modules the notebook imports, warmed up first
    warnings: tuple[str, ...] = ()

    @property
    def max_score(self) -> int:
        return len(self.exercises)


def normalize(source: str) -> str:
    """A cell's source without trailing spaces or blank lines at either end."""
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def defined_names(source: str) -> set[str]:
    """Names a cell defines with ``def`` or ``class`` (found by pattern, so that cells with
    syntax errors or IPython magics still count)."""
    return set(_DEF.findall(source))


def _checker_aliases(tree: ast.AST) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """Local names of imported ``check_*`` functions and of imported checker modules."""
    functions: dict[str, tuple[str, str]] = {}
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(CHECKS_PACKAGE + "."):
                module = node.module[len(CHECKS_PACKAGE) + 1:]
                for alias in node.names:
                    if alias.name.startswith(_CHECK_PREFIX):
                        functions[alias.asname or alias.name] = (module, alias.name)
            elif node.module == CHECKS_PACKAGE:
                for alias in node.names:
                    modules[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(CHECKS_PACKAGE + ".") and alias.asname:
                    modules[alias.asname] = alias.name[len(CHECKS_PACKAGE) + 1:]
    return functions, modules


def _parse(source: str) -> ast.AST | None:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None


def _imported_modules(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)
    return found


def _title(notebook: nbformat.NotebookNode, fallback: str) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def _only_calls(tree: ast.AST | None) -> bool:
    """True if a cell is nothing but function calls (the grader does not run check cells,
    so anything else in them, such as an assignment a later cell needs, would be lost)."""
    return tree is not None and all(isinstance(node, ast.Expr) and isinstance(node.value,
                                                                              ast.Call)
                                    for node in tree.body)


def read_chapter(path: Path) -> Chapter:
    """Read one solution notebook's exercises, in the order of its check cells."""
    try:
        return _read_chapter(path)
    except ChapterError:
        raise
    except Exception as error:  # noqa: BLE001 - unreadable JSON, bad markers, ...
        raise ChapterError(f"{path.name}: {type(error).__name__}: {error}") from None


def _read_chapter(path: Path) -> Chapter:
    notebook = nbformat.read(path, as_version=4)
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    trees = [(cell, _parse(cell.source)) for cell in cells]
    functions: dict[str, tuple[str, str]] = {}
    modules: dict[str, str] = {}
    preload: list[str] = []
    for cell, tree in trees:
        if tree is not None:
            more_functions, more_modules = _checker_aliases(tree)
            functions.update(more_functions)
            modules.update(more_modules)
            if CHECK_TAG not in cell.metadata.get("tags", []) and BEGIN not in cell.source:
                preload.extend(_imported_modules(tree))
    exercises: list[ExerciseSpec] = []
    warnings: list[str] = []
    for index, (cell, tree) in enumerate(trees):
        if CHECK_TAG not in cell.metadata.get("tags", []):
            continue
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)] if tree else []
        found = False
        for call in calls:
            target = None
            if isinstance(call.func, ast.Name) and call.func.id in functions:
                target = functions[call.func.id]
            elif (isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)
                  and call.func.value.id in modules
                  and call.func.attr.startswith(_CHECK_PREFIX)):
                target = (modules[call.func.value.id], call.func.attr)
            if target is None:
                continue
            if len(call.args) != 1 or call.keywords:
                warnings.append(tr("{file}: a check call in code cell {index} does not have "
                                   "the form check_<name>(<answer>); it is not graded",
                                   file=path.name, index=index))
                continue
            module, function = target
            expression = ast.get_source_segment(cell.source, call.args[0]) or ""
            spec = ExerciseSpec(module, function[len(_CHECK_PREFIX):], expression)
            if spec.key not in {e.key for e in exercises}:
                exercises.append(spec)
            found = True
        if not found:
            warnings.append(tr("{file}: check cell (code cell {index}) calls no "
                               "cnn_course.checks function; it is not graded", file=path.name,
                               index=index))
        elif not _only_calls(tree):
            warnings.append(tr("{file}: check cell (code cell {index}) does more than call "
                               "checkers; the grader skips check cells, so move the rest to "
                               "another cell", file=path.name, index=index))
    learner = learner_version(notebook, path.name)
    fingerprint = frozenset(normalize(cell.source) for cell in learner.cells
                            if cell.source.strip())
    return Chapter(path.stem, _title(notebook, path.stem), tuple(exercises), fingerprint,
                   tuple(dict.fromkeys(preload)), tuple(warnings))


def discover_chapters(solutions: Path) -> list[Chapter]:
    """Every chapter with a solution notebook in ``solutions``, in file-name order.

    Cells that several chapters share (the install cell, say) are left out of the
    fingerprints, which tell chapters apart.
    """
    paths = sorted(Path(solutions).glob("*.ipynb"))
    if not paths:
        raise ChapterError(tr("no solution notebooks (*.ipynb) in {folder}; pass --solutions "
                              "with the course's solutions/ folder", folder=solutions))
    chapters = [read_chapter(path) for path in paths]
    counts: dict[str, int] = {}
    for chapter in chapters:
        for source in chapter.fingerprint:
            counts[source] = counts.get(source, 0) + 1
    return [Chapter(c.id, c.title, c.exercises,
                    frozenset(s for s in c.fingerprint if counts[s] == 1), c.preload, c.warnings)
            for c in chapters]


def find_chapter(chapters: list[Chapter], wanted: str) -> Chapter:
    """The chapter named ``wanted``: its id (``01_convolution``) or number (``1``, ``01``)."""
    for chapter in chapters:
        if chapter.id == wanted:
            return chapter
    if wanted.isdigit():
        for chapter in chapters:
            number = chapter.id.split("_", 1)[0]
            if number.isdigit() and int(number) == int(wanted):
                return chapter
    names = ", ".join(c.id for c in chapters)
    raise ChapterError(tr("no chapter {wanted!r}; the chapters are: {names}", wanted=wanted,
                          names=names))


def similarity(chapter: Chapter, sources: list[str], defined: set[str]) -> float:
    """How much of ``chapter``'s learner notebook a submission contains, from 0 to 1:
    its distinctive cells, unchanged, and the names of its exercises' functions."""
    present = {normalize(source) for source in sources}
    names = {name for exercise in chapter.exercises for name in exercise.names}
    matched = len(chapter.fingerprint & present) + len(names & defined)
    total = len(chapter.fingerprint) + len(names)
    return matched / total if total else 0.0


def best_match(chapters: list[Chapter], sources: list[str]) -> tuple[Chapter | None, float]:
    """The chapter a submission's cells resemble most, and how much (0 when none)."""
    defined = set().union(*(defined_names(s) for s in sources)) if sources else set()
    scored = [(similarity(chapter, sources, defined), chapter) for chapter in chapters]
    score, chapter = max(scored, key=lambda pair: pair[0], default=(0.0, None))
    return (chapter, score) if score > 0 else (None, 0.0)
