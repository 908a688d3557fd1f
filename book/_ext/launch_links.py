"""Point the launch buttons of the explanation pages at their exercise notebooks.

The book's theme gives every executable page Colab and Binder buttons that open the page's own
source. For a MyST Markdown page (``book/08_cifar10.md``) that is a ``.md`` file, which Colab
cannot open. On such a page the buttons now open the chapter's exercise notebook
(``notebooks/08_cifar10.ipynb``); a Markdown page without one (the landing page, the glossary)
gets no launch buttons at all. On a translated site (Sphinx's ``language``, e.g. ``zh_CN``)
the buttons of the pages and of the exercise notebooks open the translated exercise notebook
(``notebooks/zh_CN/08_cifar10.ipynb``) where it exists, and those of a solution notebook the
translated solution notebook (``solutions/zh_CN/08_cifar10.ipynb``).
"""

from __future__ import annotations

from pathlib import Path

EXERCISES = "notebooks"
SOLUTIONS = "solutions"


def _exercise_notebook(srcdir: Path, pagename: str, language: str | None,
                       folder: str = EXERCISES) -> str | None:
    """``<folder>/<name>.ipynb`` (``notebooks/`` by default) for the page ``.../<name>`` if
    that notebook exists (in ``<folder>/<language>/`` on a translated site, where that one
    exists)."""
    name = f"{Path(pagename).name}.ipynb"
    candidates = [f"{folder}/{language}/{name}"] if language not in (None, "", "en") else []
    return next((relative for relative in candidates + [f"{folder}/{name}"]
                 if (srcdir / relative).exists()), None)


def _relink(app, pagename, templatename, context, doctree) -> None:
    buttons = context.get("header_buttons") or []
    launch = [b for b in buttons if b.get("label") == "launch-buttons"]
    if not launch:
        return
    language = app.config.language
    folder = pagename.split("/")[0]
    if context.get("page_source_suffix") == ".ipynb" and folder in (EXERCISES, SOLUTIONS):
        notebook = _exercise_notebook(Path(app.srcdir), pagename, language, folder)
        for group in launch:
            for button in group.get("buttons", []):
                if "url" in button and notebook:
                    button["url"] = button["url"].replace(f"{pagename}.ipynb", notebook)
        return
    if context.get("page_source_suffix") != ".md":
        return
    notebook = _exercise_notebook(Path(app.srcdir), pagename, language)
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
