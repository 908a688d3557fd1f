"""Translations of the package's messages (``cnn_course/messages.py``), one catalog per module.

The English templates are read from the source: every ``tr("...")`` and ``N_("...")`` whose
first argument is a string literal. ``cnn_course/locales/<language>/<module>.po`` holds the
templates of one module (``checks.conv.po`` for ``cnn_course/checks/conv.py``), each with its
translation. A template is translated when some catalog of the language holds it with a
non-empty translation that is not fuzzy and uses the same ``{fields}`` as the English.
"""

from __future__ import annotations

import ast
import difflib
import string
from collections import Counter
from pathlib import Path

from cnn_course.messages import CATALOG_DIR

PACKAGE = Path(__file__).resolve().parents[1]
_MARKERS = ("tr", "N_")


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
    return templates


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
    import polib

    entries = {}
    for path in sorted((catalogs / language).glob("*.po")):
        for entry in polib.pofile(str(path)):
            if not entry.obsolete:
                entries.setdefault(entry.msgid, entry)
    return entries


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
            elif entry is None or not entry.msgstr.strip():
                found.append(Problem(page, template, f"{places[0]}: not translated"))
            elif "fuzzy" in entry.flags:
                found.append(Problem(page, template, f"{places[0]}: the English changed since "
                                                     "it was translated (fuzzy)"))
            elif fields(entry.msgstr) != english_fields:
                found.append(Problem(page, template, f"{places[0]}: the translation's fields "
                                                     "differ from the English"))
    return found


def update(language: str, domains: list[str] | None = None, package: Path = PACKAGE,
           catalogs: Path = CATALOG_DIR) -> list[Path]:
    """Write each module's catalog: its templates in source order, existing translations kept,
    a new template that resembles one which is gone inherits that translation marked fuzzy,
    and templates that are gone are dropped. Only ``domains`` if given. Returns what it wrote.
    """
    import polib

    written = []
    entries = _all_entries(language, catalogs)
    for domain, templates in extract(package).items():
        if domains and domain not in domains:
            continue
        path = catalog_path(language, domain, catalogs)
        old = {e.msgid: e for e in polib.pofile(str(path)) if not e.obsolete} \
            if path.exists() else {}
        gone = [msgid for msgid in old if msgid not in templates]
        catalog = polib.POFile(wrapwidth=0)
        catalog.metadata = {"Content-Type": "text/plain; charset=utf-8", "Language": language}
        for template, places in templates.items():
            entry = polib.POEntry(msgid=template, msgstr="",
                                  occurrences=[tuple(p.rsplit(":", 1)) for p in places])
            before = entries.get(template)
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
        written.append(path)
    return written
