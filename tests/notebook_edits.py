"""Build submissions for the grader's tests by editing the course's real notebooks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "01_convolution.ipynb"
LEARNER = ROOT / "notebooks" / "01_convolution.ipynb"
LEARNER_4 = ROOT / "notebooks" / "04_fully_connected.ipynb"
EXERCISES = ["conv2d_loops", "conv_output_size", "conv_params", "conv2d_im2col",
             "vertical_edge_kernel"]


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def index_of(notebook: nbformat.NotebookNode, text: str) -> int:
    """The index of the first code cell whose source contains ``text``."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and text in cell.source:
            return index
    raise LookupError(text)


def set_function(notebook: nbformat.NotebookNode, name: str, source: str) -> None:
    notebook.cells[index_of(notebook, f"def {name}(")].source = textwrap.dedent(source).strip()


def solve(notebook: nbformat.NotebookNode, *names: str) -> None:
    """Copy the official answers of ``names`` into a learner notebook."""
    solution = read(SOLUTION)
    for name in names:
        answer = solution.cells[index_of(solution, f"def {name}(")].source
        answer = "\n".join(line for line in answer.splitlines() if "### " not in line)
        notebook.cells[index_of(notebook, f"def {name}(")].source = answer


def insert(notebook: nbformat.NotebookNode, before: str, source: str) -> int:
    index = index_of(notebook, before)
    notebook.cells.insert(index, nbformat.v4.new_code_cell(textwrap.dedent(source).strip()))
    return index


def write(folder: Path, name: str, notebook: nbformat.NotebookNode) -> Path:
    path = folder / name
    nbformat.write(notebook, path)
    return path
