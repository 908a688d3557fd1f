"""A link on every page to the same page in the other language.

The English site is built into ``_build/html`` and each translation into a folder of it
(``scripts/build-book.sh``; the folder, the language's name and its tag come from
``locales/<language>/site.yml``). The link goes at the top of the article, with the language's
own name as its text and ``lang``/``hreflang`` set, so that screen readers read it right.
"""

from __future__ import annotations

import functools
from html import escape
from pathlib import Path

import yaml

LOCALES = Path(__file__).resolve().parents[2] / "locales"
ENGLISH = {"folder": "", "name": "English", "tag": "en", "link_label": "This page in English"}


@functools.cache  # read once per build, not once per page
def sites() -> dict[str, dict]:
    """{Sphinx language: its site.yml} for English and every translation."""
    found = {"en": ENGLISH}
    for path in sorted(LOCALES.glob("*/site.yml")):
        found[path.parent.name] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return found


def other_language_links(pagename: str, language: str | None) -> str:
    """The HTML of the links from ``pagename`` (in ``language``) to its other languages."""
    all_sites = sites()
    here = language if language in all_sites else "en"
    folder = all_sites[here]["folder"]
    up = "../" * (pagename.count("/") + (folder.count("/") + 1 if folder else 0))
    links = []
    for name, site in all_sites.items():
        if name == here:
            continue
        there = f"{site['folder']}/" if site["folder"] else ""
        links.append(f'<a href="{escape(up + there + pagename)}.html" hreflang="{site["tag"]}" '
                     f'lang="{site["tag"]}" aria-label="{escape(site["link_label"])}">'
                     f'{escape(site["name"])}</a>')
    return ('<nav class="language-switch" style="text-align: right; font-size: 0.9em">'
            + " · ".join(links) + "</nav>")


def _add_links(app, pagename, templatename, context, doctree) -> None:
    if doctree is not None and "body" in context:
        context["body"] = other_language_links(pagename, app.config.language) + context["body"]


def setup(app):
    app.connect("html-page-context", _add_links)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
