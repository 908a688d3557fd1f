"""Run a notebook in a fresh kernel and read what each cell printed (without saving it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat

from cnn_course.checks.core import FAIL_MARK, PASS_MARK
from cnn_course.tools.kernel_polling import install_short_polls
from cnn_course.tools.notebook_format import CHECK_TAG


@dataclass(frozen=True)
class CellRun:
    index: int
    tags: tuple[str, ...]
    source: str
    text: str            # everything the cell printed or displayed as text
    error: str | None    # "ExceptionName: message" if the cell raised

    @property
    def is_check(self) -> bool:
        return CHECK_TAG in self.tags

    @property
    def verdicts(self) -> list[str]:
        return [line for line in self.text.splitlines()
                if line.startswith((PASS_MARK, FAIL_MARK))]


def _cell_text(cell: nbformat.NotebookNode) -> tuple[str, str | None]:
    texts, error = [], None
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            texts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            texts.append(output.get("data", {}).get("text/plain", ""))
        elif output.output_type == "error":
            error = f"{output.ename}: {output.evalue}"
    return "".join(texts), error


def read_cells(notebook: nbformat.NotebookNode) -> list[CellRun]:
    runs = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        text, error = _cell_text(cell)
        runs.append(CellRun(index, tuple(cell.metadata.get("tags", [])), cell.source, text,
                            error))
    return runs


def run_notebook(path: Path, timeout: int = 600, kernel_name: str = "python3"
                 ) -> list[CellRun]:
    """Execute a copy of the notebook at ``path`` (the file is not changed); report each cell.

    Every cell runs even if an earlier one raised, so all problems show at once.
    """
    from nbclient import NotebookClient

    install_short_polls()
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name=kernel_name,
                            allow_errors=True,
                            resources={"metadata": {"path": str(Path(path).parent)}})
    client.execute()
    return read_cells(notebook)
