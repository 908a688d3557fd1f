"""Point the launch buttons of the explanation pages at their exercise notebooks.

The book's theme gives every executable page Colab and Binder buttons that open the page's own
source. For a MyST Markdown page (``book/08_cifar10.md``) that is a ``.md`` file, which Colab
cannot open. On such a page the buttons now open the chapter's exercise notebook
(``notebooks/08_cifar10.ipynb``); a Markdown page without one (the landing page, the glossary)
gets no launch buttons at all.
"""

from __future__ import annotations

from pathlib import Path

EXERCISES = "notebooks"


def _exercise_notebook(srcdir: Path, pagename: str) -> str | None:
    """``notebooks/<name>.ipynb`` for the page ``book/<name>`` if that notebook exists."""
    relative = f"{EXERCISES}/{Path(pagename).name}.ipynb"
    return relative if (srcdir / relative).exists() else None


def _relink(app, pagename, templatename, context, doctree) -> None:
    if context.get("page_source_suffix") != ".md":
        return
    buttons = context.get("header_buttons") or []
    launch = [b for b in buttons if b.get("label") == "launch-buttons"]
    if not launch:
        return
    notebook = _exercise_notebook(Path(app.srcdir), pagename)
    if notebook is None:
        for group in launch:
            buttons.remove(group)
        return
    source = f"{pagename}.md"
    for group in launch:
        group["tooltip"] = "Launch this chapter's exercise notebook"
        for button in group.get("buttons", []):
            if "url" in button:
                button["url"] = button["url"].replace(source, notebook)


def setup(app):
    # After sphinx-book-theme adds its buttons (priority 501).
    app.connect("html-page-context", _relink, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
