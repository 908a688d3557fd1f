"""Read a submitted notebook's cells without trusting, executing or changing anything.

Only the cells' sources and tags are kept; stored outputs are never looked at. Anything that
is not a readable notebook raises :class:`Unreadable` with a one-line reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cnn_course.messages import tr

MAX_BYTES = 64 << 20   # far above any notebook of the course, outputs included


class Unreadable(ValueError):
    """The file is not a notebook the grader can run; the message says why."""


@dataclass(frozen=True)
class Cell:
    index: int              # position in the notebook, counting markdown cells (as selfcheck)
    cell_type: str
    source: str
    tags: tuple[str, ...]

    @property
    def is_code(self) -> bool:
        return self.cell_type == "code"


def _source(value: object, index: int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    raise Unreadable(tr("not a Jupyter notebook: cell {index} has no text source", index=index))


def _v3_cells(data: dict) -> list[dict]:
    """Cells of an old (nbformat 3) notebook, converted by nbformat."""
    import nbformat

    try:
        notebook = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as error:  # noqa: BLE001 - any failure means unreadable
        raise Unreadable(tr("an old-format notebook that cannot be converted: {error}",
                            error=error)) from None
    return [dict(cell) for cell in notebook.cells]


def read_cells(path: Path) -> list[Cell]:
    """The cells of the notebook at ``path``; raises :class:`Unreadable`."""
    path = Path(path)
    if not path.exists():
        raise Unreadable(tr("no such file"))
    if not path.is_file():
        raise Unreadable(tr("not a file"))
    size = path.stat().st_size
    if size == 0:
        raise Unreadable(tr("the file is empty"))
    if size > MAX_BYTES:
        raise Unreadable(tr("the file is {size:.0f} MB, more than the {limit} MB any notebook "
                            "of the course needs", size=size / 2**20, limit=MAX_BYTES >> 20))
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Unreadable(tr("not a text file (it is not UTF-8)")) from None
    if not text.strip():
        raise Unreadable(tr("the file is empty (only blank space)"))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise Unreadable(tr("not valid JSON: {error} at line {line}, column {column} (was the "
                            "notebook saved completely?)", error=error.msg, line=error.lineno,
                            column=error.colno)) from None
    except RecursionError:
        raise Unreadable(tr("not valid JSON: nested too deeply")) from None
    if not isinstance(data, dict):
        raise Unreadable(tr("valid JSON, but not a Jupyter notebook (no cells)"))
    raw = data.get("cells")
    if raw is None and isinstance(data.get("worksheets"), list):
        raw = _v3_cells(data)
    if not isinstance(raw, list):
        raise Unreadable(tr("valid JSON, but not a Jupyter notebook (no cells)"))
    cells = []
    for index, cell in enumerate(raw):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            raise Unreadable(tr("not a Jupyter notebook: cell {index} has no cell type",
                                index=index))
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        tags = metadata.get("tags") if isinstance(metadata.get("tags"), list) else []
        cells.append(Cell(index, cell["cell_type"], _source(cell.get("source", ""), index),
                          tuple(tag for tag in tags if isinstance(tag, str))))
    if not any(cell.is_code and cell.source.strip() for cell in cells):
        raise Unreadable(tr("the notebook has no code"))
    return cells
