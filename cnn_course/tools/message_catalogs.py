"""Translations of the package's messages (``cnn_course/messages.py``), one catalog per module.

The English templates are read from the source: every ``tr("...")`` and ``N_("...")`` of the
Python code whose first argument is a string literal, and every ``t("...")`` and ``N_("...")``
of the explorers' JavaScript (``cnn_course/widgets/js``, catalogs ``widgets.js.<file>.po``).
``cnn_course/locales/<language>/<module>.po`` holds the templates of one module
(``checks.conv.po`` for ``cnn_course/checks/conv.py``), each with its translation. A template
is translated when some catalog of the language holds it with a non-empty translation that is
not fuzzy and uses the same ``{fields}`` as the English.
"""

from __future__ import annotations

import ast
import difflib
import string
from collections import Counter
from pathlib import Path

from cnn_course.messages import CATALOG_DIR
from cnn_course.widgets.frontend import JS, JS_MESSAGE, js_templates, js_unextractable

PACKAGE = Path(__file__).resolve().parents[1]
_MARKERS = ("tr", "N_", "figure_tr")


def domain_of(path: Path, package: Path = PACKAGE) -> str:
    """``checks.conv`` for ``cnn_course/checks/conv.py``."""
    return ".".join(path.relative_to(package).with_suffix("").parts)


def _marker_calls(tree: ast.AST) -> list[ast.Call]:
    """The calls of ``tr`` and ``N_`` in ``tree``, in source order."""
    calls = [node for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
             and node.func.id in _MARKERS and node.args]
    return sorted(calls, key=lambda call: (call.lineno, call.col_offset))


def extract(package: Path = PACKAGE) -> dict[str, dict[str, list[str]]]:
    """Each module's English templates with the lines they come from (``file:line``)."""
    templates: dict[str, dict[str, list[str]]] = {}
    for path in sorted(package.rglob("*.py")):
        if "locales" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for call in _marker_calls(tree):
            first = call.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                where = f"{path.relative_to(package.parent).as_posix()}:{call.lineno}"
                templates.setdefault(domain_of(path, package), {}) \
                    .setdefault(first.value, []).append(where)
    for path in sorted((package / JS.relative_to(PACKAGE)).glob("*.js")):
        source = path.read_text(encoding="utf-8")
        lines = _line_numbers(source, JS_MESSAGE)
        for template, line in zip(js_templates(source), lines, strict=False):
            where = f"{path.relative_to(package.parent).as_posix()}:{line}"
            templates.setdefault(domain_of(path, package), {})[template] = [where]
    return templates


def _line_numbers(source: str, pattern) -> list[int]:
    """The line of the first match of each distinct template, in the order of js_templates."""
    import json

    first: dict[str, int] = {}
    for match in pattern.finditer(source):
        first.setdefault(json.loads(match.group(1)), source.count("\n", 0, match.start()) + 1)
    return list(first.values())


def unextractable(package: Path = PACKAGE) -> list[tuple[str, str]]:
    """Calls of ``tr`` or ``N_`` whose template is built at run time (an f-string, a sum), so
    that no catalog can hold it, as (module, ``file:line``). Passing a name (a template marked
    elsewhere) is fine."""
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for call in _marker_calls(tree):
            first = call.args[0]
            if isinstance(first, ast.JoinedStr | ast.BinOp | ast.Call):
                found.append((domain_of(path, package),
                              f"{path.relative_to(package.parent).as_posix()}:{call.lineno}"))
    for path in sorted((package / JS.relative_to(PACKAGE)).glob("*.js")):
        source = path.read_text(encoding="utf-8")
        for offset in js_unextractable(source):
            line = source.count("\n", 0, offset) + 1
            found.append((domain_of(path, package),
                          f"{path.relative_to(package.parent).as_posix()}:{line}"))
    return found


def fields(template: str) -> Counter | None:
    """The ``{fields}`` of a format template with their specs, or None if it does not parse."""
    try:
        return Counter((name, spec, conversion)
                       for _, name, spec, conversion in string.Formatter().parse(template)
                       if name is not None)
    except ValueError:
        return None


def catalog_path(language: str, domain: str, catalogs: Path = CATALOG_DIR) -> Path:
    return catalogs / language / f"{domain}.po"


def _all_entries(language: str, catalogs: Path) -> dict:
    """Each English template's entry, from the first catalog that holds it; an entry that other
    catalogs translate differently carries their names in ``other_translations``."""
    import polib

    entries: dict = {}
    for path in sorted((catalogs / language).glob("*.po")):
        for entry in polib.pofile(str(path)):
            if entry.obsolete:
                continue
            first = entries.setdefault(entry.msgid, entry)
            if first is not entry and entry.msgstr and first.msgstr != entry.msgstr:
                first.other_translations = [*getattr(first, "other_translations", []),
                                            path.name]
    return entries


def _entry_problem(template: str, entry, differing: str = "fields") -> str | None:
    """Why ``entry`` (or None) is not a current translation of ``template``, or None."""
    if entry is None or not entry.msgstr.strip():
        return "not translated"
    if "fuzzy" in entry.flags:
        return "the English changed since it was translated (fuzzy)"
    if fields(entry.msgstr) != fields(template):
        return f"the translation's {differing} differ from the English"
    others = getattr(entry, "other_translations", [])
    if others:
        return f"translated differently in {', '.join(others)}: give it one translation"
    return None


def problems(language: str, package: Path = PACKAGE, catalogs: Path = CATALOG_DIR) -> list:
    """Every template without a current, well-formed translation, and every template built at
    run time."""
    from cnn_course.tools.translations import Problem

    found = [Problem(f"messages/{domain}", "tr(...)",
                     f"{where}: the template is built at run time, so no catalog can hold it; "
                     "write it as a literal with named fields")
             for domain, where in unextractable(package)]
    entries = _all_entries(language, catalogs)
    for domain, templates in extract(package).items():
        for template, places in templates.items():
            page = f"messages/{domain}"
            entry = entries.get(template)
            english_fields = fields(template)
            if english_fields is None:
                found.append(Problem(page, template, f"{places[0]}: the English template "
                                                     "does not parse (a lone brace?)"))
            elif (reason := _entry_problem(template, entry)) is not None:
                found.append(Problem(page, template, f"{places[0]}: {reason}"))
    return found


def _write_catalog(path: Path, language: str, templates: dict[str, list[tuple[str, str]]],
                   translations: dict) -> None:
    """Write ``path``: one entry per template (with its source places), the translation from
    ``translations`` (entries by English template) kept with its flags, and a new template
    that resembles one which is gone from ``path`` inheriting that translation marked fuzzy.
    """
    import polib

    old = {e.msgid: e for e in polib.pofile(str(path)) if not e.obsolete} \
        if path.exists() else {}
    gone = [msgid for msgid in old if msgid not in templates]
    catalog = polib.POFile(wrapwidth=0)
    catalog.metadata = {"Content-Type": "text/plain; charset=utf-8", "Language": language}
    for template, places in templates.items():
        entry = polib.POEntry(msgid=template, msgstr="", occurrences=places)
        before = translations.get(template)
        if before is not None:
            entry.msgstr, entry.flags = before.msgstr, list(before.flags)
        else:
            close = difflib.get_close_matches(template, gone, n=1, cutoff=0.7)
            if close and old[close[0]].msgstr:
                entry.msgstr, entry.previous_msgid = old[close[0]].msgstr, close[0]
                entry.flags = ["fuzzy"]
        catalog.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog.save(str(path))


def update(language: str, domains: list[str] | None = None, package: Path = PACKAGE,
           catalogs: Path = CATALOG_DIR) -> list[Path]:
    """Write each module's catalog: its templates in source order, existing translations kept,
    a new template that resembles one which is gone inherits that translation marked fuzzy,
    and templates that are gone are dropped. Only ``domains`` if given. Returns what it wrote.
    """
    written = []
    entries = _all_entries(language, catalogs)
    for domain, templates in extract(package).items():
        if domains and domain not in domains:
            continue
        path = catalog_path(language, domain, catalogs)
        _write_catalog(path, language, {template: [tuple(p.rsplit(":", 1)) for p in places]
                                        for template, places in templates.items()}, entries)
        written.append(path)
    return written


# ---- the texts on the explanation pages' figures (cnn_course/figure_translation.py) --------
# scripts/execute_pages.py lists them per page in FIGURE_TEXTS; their catalog is figures.po.

FIGURE_TEXTS = PACKAGE.parent / "_build" / "figure-texts.json"
FIGURES = "figures"


def _figure_texts(path: Path) -> dict:
    import json

    if not path.exists():
        raise FileNotFoundError(f"no {path.name}: build the site first (bash "
                                "scripts/build-book.sh lists the figures' texts)")
    return json.loads(path.read_text(encoding="utf-8"))


def figure_problems(language: str, texts: Path = FIGURE_TEXTS,
                    catalogs: Path = CATALOG_DIR) -> list:
    """Every text on a page's figures without a current translation, named with its page."""
    from cnn_course.tools.translations import Problem

    entries = _all_entries(language, catalogs)
    found = []
    for page, figure in _figure_texts(texts).items():
        for template in figure["templates"]:
            reason = _entry_problem(template, entries.get(template), differing="numbers")
            if reason is not None:
                found.append(Problem(f"figures/{page}", template, reason))
    return found


def update_figures(language: str, texts: Path = FIGURE_TEXTS,
                   catalogs: Path = CATALOG_DIR) -> Path:
    """Write figures.po: every figure text of the pages, page by page, translations kept, a
    new text that resembles one which is gone inheriting its translation marked fuzzy."""
    path = catalog_path(language, FIGURES, catalogs)
    current = {template: [(f"{page}.md", "")] for page, figure in _figure_texts(texts).items()
               for template in figure["templates"]}
    _write_catalog(path, language, current, _all_entries(language, catalogs))
    return path
