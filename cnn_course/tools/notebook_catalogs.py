"""Translations of the notebooks' markdown cells, one catalog per chapter, keyed by cell id.

``locales/<language>/notebooks/<chapter>.po`` holds an entry per markdown cell of
``solutions/<chapter>.ipynb``: the cell's id as context, its English source as the message,
and the translation. Code cells are never translated, so a translated notebook runs and is
checked exactly like the English one. The learner notebooks have the same markdown cells as
the solutions, so one catalog serves both.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ROOT / "locales"
SOLUTIONS = ROOT / "solutions"


def catalog_path(language: str, chapter: str, locales: Path = LOCALES) -> Path:
    return locales / language / "notebooks" / f"{chapter}.po"


def _markdown_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "markdown"]


def _entries(path: Path) -> dict:
    import polib

    if not path.exists():
        return {}
    return {entry.msgctxt: entry for entry in polib.pofile(str(path)) if not entry.obsolete}


def update(language: str, solutions: Path = SOLUTIONS, locales: Path = LOCALES) -> list[Path]:
    """Bring each chapter's catalog up to date with its solution notebook: new cells are added
    untranslated, a cell whose English changed keeps its old translation marked fuzzy, and
    cells that are gone are dropped. Returns the catalogs written."""
    import polib

    written = []
    for notebook_path in sorted(solutions.glob("*.ipynb")):
        path = catalog_path(language, notebook_path.stem, locales)
        old = _entries(path)
        catalog = polib.POFile(wrapwidth=0)
        catalog.metadata = {"Content-Type": "text/plain; charset=utf-8", "Language": language}
        for cell in _markdown_cells(nbformat.read(notebook_path, as_version=4)):
            entry = polib.POEntry(msgctxt=cell.id, msgid=cell.source, msgstr="")
            before = old.get(cell.id)
            if before is not None:
                entry.msgstr = before.msgstr
                entry.flags = list(before.flags)
                if before.msgid != cell.source and before.msgstr:
                    entry.previous_msgid = before.msgid
                    entry.flags = sorted(set(entry.flags) | {"fuzzy"})
            catalog.append(entry)
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog.save(str(path))
        written.append(path)
    return written


def problems(language: str, solutions: Path = SOLUTIONS, locales: Path = LOCALES) -> list:
    """Every markdown cell without a current, well-formed translation (as translations.Problem)."""
    from cnn_course.tools.translations import entry_problems

    found = []
    for notebook_path in sorted(solutions.glob("*.ipynb")):
        page = f"notebooks/{notebook_path.stem}"
        entries = _entries(catalog_path(language, notebook_path.stem, locales))
        for cell in _markdown_cells(nbformat.read(notebook_path, as_version=4)):
            found += entry_problems(page, cell.source, entries.get(cell.id), f"cell {cell.id}")
    return found


def translated(notebook, chapter: str, language: str, locales: Path = LOCALES):
    """A copy of ``notebook`` whose markdown cells are in ``language`` (cells without a
    current translation stay in English); its metadata records the language."""
    copy = nbformat.from_dict(notebook)
    entries = _entries(catalog_path(language, chapter, locales))
    for cell in _markdown_cells(copy):
        entry = entries.get(cell.id)
        if entry is not None and entry.msgid == cell.source and entry.msgstr \
                and "fuzzy" not in entry.flags:
            cell.source = entry.msgstr
    copy.metadata["language"] = language
    return copy
