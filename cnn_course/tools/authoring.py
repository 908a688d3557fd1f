"""Generate the learner notebooks in ``notebooks/`` from the solved ones in ``solutions/``.

Each translation (``locales/<language>/notebooks/``) also gets its learner notebooks in
``notebooks/<language>/`` and its solution notebooks, to run (no outputs), in
``solutions/<language>/``: the same code cells, the markdown from the catalogs.

In a solution notebook, each answer is marked inside a function body::

    def relu(x):
        ### BEGIN SOLUTION
        return x.clamp(min=0)
        ### END SOLUTION

and becomes, in the learner's copy, ``# YOUR CODE HERE`` followed by
``raise NotImplementedError()`` at the same indentation. Outputs, execution counts and saved
widget state are cleared. Answers must sit inside a function so that a learner who has not
solved an exercise can still run the notebook: the stub only raises when called.

Usage::

    python -m cnn_course.tools.authoring generate   # write notebooks/ from solutions/
    python -m cnn_course.tools.authoring check      # exit 1 if notebooks/ is out of date, or if a
                                              # notebook installs from another repository
                                              # than _config.yml's repository: url
    python -m cnn_course.tools.authoring execute solutions/01_convolution.ipynb  # run and save it
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from cnn_course.tools.notebook_format import BEGIN, CHECK_TAG, END, MARKER, STUB


class AuthoringError(ValueError):
    """A solution notebook breaks the marker rules; the message names the cell."""


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace every answer region in ``source`` with the learner's stub."""
    out: list[str] = []
    indent: str | None = None
    for number, line in enumerate(source.splitlines(), start=1):
        match = MARKER.match(line)
        if match and match["kind"] == "BEGIN":
            if indent is not None:
                raise AuthoringError(f"{where}, line {number}: nested {BEGIN}")
            if not match["indent"]:
                raise AuthoringError(f"{where}, line {number}: {BEGIN} must be inside a "
                                     "function, so that the unsolved notebook still runs")
            indent = match["indent"]
            out.extend(indent + stub for stub in STUB)
        elif match and match["kind"] == "END":
            if indent is None:
                raise AuthoringError(f"{where}, line {number}: {END} without {BEGIN}")
            indent = None
        elif indent is None:
            out.append(line)
    if indent is not None:
        raise AuthoringError(f"{where}: {BEGIN} without {END}")
    return "\n".join(out)


def learner_version(solution: nbformat.NotebookNode, name: str = "notebook"
                    ) -> nbformat.NotebookNode:
    """The learner's notebook for a solved one."""
    notebook = nbformat.from_dict(solution)  # a deep copy
    notebook.metadata.pop("widgets", None)
    exercises_waiting = 0
    for index, cell in enumerate(notebook.cells):
        where = f"{name}, cell {index}"
        if cell.cell_type == "code":
            if BEGIN in cell.source:
                exercises_waiting += 1
                cell.source = strip_solutions(cell.source, where)
            if CHECK_TAG in cell.metadata.get("tags", []):
                exercises_waiting = 0
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    if exercises_waiting:
        raise AuthoringError(f"{name}: the last exercise has no cell tagged '{CHECK_TAG}' after it")
    return notebook


def runnable_version(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A solution notebook without outputs, execution counts or saved widget state."""
    notebook = nbformat.from_dict(solution)
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    return notebook


def render(notebook: nbformat.NotebookNode) -> str:
    return nbformat.writes(notebook, version=4) + "\n"


def _pairs(root: Path) -> list[tuple[Path, Path]]:
    return [(path, root / "notebooks" / path.name)
            for path in sorted((root / "solutions").glob("*.ipynb"))]


def translations(root: Path) -> list[str]:
    """The languages with notebook catalogs (``locales/<language>/notebooks/``)."""
    return sorted(path.parent.name for path in (root / "locales").glob("*/notebooks"))


def _translated_learner(root: Path, solution: Path, language: str) -> Path:
    return root / "notebooks" / language / solution.name


def _translated_solution(root: Path, solution: Path, language: str) -> Path:
    return root / "solutions" / language / solution.name


def _learner_paths(root: Path) -> list[Path]:
    """Every notebook ``generate`` writes: learner notebooks, English and translated, and
    translated solution notebooks."""
    return [learner for solution, learner in _pairs(root)] + [
        make(root, solution, language)
        for make in (_translated_learner, _translated_solution)
        for solution, _ in _pairs(root) for language in translations(root)]


def _expected(root: Path) -> dict[Path, str]:
    """{learner notebook: its text}: the English ones in ``notebooks/``, and each translation's
    in ``notebooks/<language>/`` (markdown from its catalogs, code cells the same)."""
    from cnn_course.tools.notebook_catalogs import translated

    expected = {}
    for solution, learner in _pairs(root):
        notebook = nbformat.read(solution, as_version=4)
        expected[learner] = render(learner_version(notebook, solution.name))
        for language in translations(root):
            version = translated(notebook, solution.stem, language, root / "locales")
            for cell in version.cells:  # one folder deeper: relative links climb one more
                if cell.cell_type == "markdown":
                    cell.source = cell.source.replace("](../", "](../../")
            expected[_translated_learner(root, solution, language)] = render(
                learner_version(version, f"{language}/{solution.name}"))
            expected[_translated_solution(root, solution, language)] = render(
                runnable_version(version))
    return expected


def generate(root: Path) -> list[Path]:
    """Write every learner notebook; return the paths written."""
    written = []
    for learner, text in _expected(root).items():
        learner.parent.mkdir(parents=True, exist_ok=True)
        learner.write_text(text, encoding="utf-8")
        written.append(learner)
    return written


def out_of_date(root: Path) -> list[str]:
    """Problems that make ``notebooks/`` differ from what ``generate`` would write."""
    problems = []
    expected = _expected(root)
    for learner, text in expected.items():
        if not learner.exists():
            problems.append(f"{learner.relative_to(root)} is missing")
        elif learner.read_text(encoding="utf-8") != text:
            problems.append(f"{learner.relative_to(root)} differs from what generate writes "
                            "(edit solutions/ or locales/, never a generated notebook)")
    extras = sorted((root / "notebooks").rglob("*.ipynb")) + [
        path for language in translations(root)
        for path in sorted((root / "solutions" / language).glob("*.ipynb"))]
    for extra in extras:
        if extra not in expected and ".ipynb_checkpoints" not in extra.parts:
            problems.append(f"{extra.relative_to(root)} has no solution notebook")
    return problems


_GIT_URL = re.compile(r"git\+(?P<url>[a-z][a-z0-9+.-]*://[^\s\"'@#]+)")


def _normalized(url: str) -> str:
    url = url.strip().rstrip("/")
    return url[:-4] if url.endswith(".git") else url


def configured_repository(root: Path) -> str:
    """The course's repository, as ``_config.yml`` names it (``repository: url``)."""
    import yaml

    config_path = root / "_config.yml"
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        return _normalized(config["repository"]["url"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise AuthoringError(f"{config_path.name} names no repository (repository: url): "
                             f"{type(error).__name__}: {error}") from None


def repository_problems(root: Path) -> list[str]:
    """Notebooks whose install cell names another repository than ``_config.yml``.

    The install cell is the first code cell that runs ``pip install``; every ``git+`` URL in
    it must be the configured repository.
    """
    expected = configured_repository(root)
    notebooks = [path for path in [solution for solution, _ in _pairs(root)] + _learner_paths(root)
                 if path.exists()]
    problems = []
    for path in notebooks:
        where = path.relative_to(root)
        cells = nbformat.read(path, as_version=4).cells
        install = next((c for c in cells if c.cell_type == "code"
                        and "pip install" in c.source), None)
        urls = [_normalized(m["url"]) for m in _GIT_URL.finditer(install.source)] \
            if install is not None else []
        if not urls:
            problems.append(f"{where} has no install cell (pip install \"cnn_course @ "
                            f"git+{expected}\")")
        for url in urls:
            if url != expected:
                problems.append(f"{where} installs from {url}, but _config.yml names the "
                                f"repository {expected} (repository: url); make them the same")
    return problems


def execute(path: Path, timeout: int = 1200) -> None:
    """Run a solution notebook in a fresh kernel and save it with outputs and widget state."""
    from nbclient import NotebookClient

    from cnn_course.tools.kernel_polling import install_short_polls

    install_short_polls()
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(notebook, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn_course.tools.authoring",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["generate", "check", "execute"])
    parser.add_argument("notebooks", nargs="*", type=Path, help="for execute: solution notebooks")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="repository root (default: current folder)")
    args = parser.parse_args(argv)
    if args.command == "execute" and not args.notebooks:
        parser.error("execute needs the solution notebooks to run, e.g. "
                     "python -m cnn_course.tools.authoring execute solutions/01_convolution.ipynb")
    try:
        if args.command == "execute":
            for path in args.notebooks:
                execute(path)
                print(f"executed {path}")
            return 0
        if args.command == "generate":
            for path in generate(args.root):
                print(f"wrote {path.relative_to(args.root)}")
            return 0
        problems = out_of_date(args.root)
        wrong_repository = repository_problems(args.root)
    except AuthoringError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"out of date: {problem}", file=sys.stderr)
    if problems:
        print("run: python -m cnn_course.tools.authoring generate", file=sys.stderr)
    for problem in wrong_repository:
        print(f"wrong repository: {problem}", file=sys.stderr)
    if problems or wrong_repository:
        return 1
    languages = "".join(f", {language}" for language in translations(args.root))
    print(f"learner notebooks (English{languages}) and translated solution notebooks are up to "
          f"date with {len(_pairs(args.root))} solutions, and all install the repository named "
          "in _config.yml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
