"""Which glossary terms a book page uses without linking the first use to the glossary.

Run on pages to list what is missing: ``python tests/glossary_usage.py book/03_pooling.md``.

A page's prose is its Markdown without code cells, code spans, math, headings, labels and
other roles. A term is used where one of its English names (or their plural) appears in the
prose; the longest name wins, so "max pooling" counts for max pooling, not for pooling. Each
term a page uses must be linked with ``{term}`` at or before its first use.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "book" / "glossary.md"

GLOSSARY_BLOCK = re.compile(r"^```\{glossary\}[^\n]*\n(.*?)^```", re.S | re.M)
FENCE = re.compile(r"^(`{3,}|:{3,})\{?([\w:-]*)\}?[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)
# Directives whose body is prose; every other fenced block (code cells, code, figures'
# options) is removed.
PROSE_DIRECTIVES = {"note", "tip", "important", "warning", "caution", "attention", "hint",
                    "seealso", "admonition", "dropdown", "margin", "sidebar", "epigraph"}
TERM_ROLE = re.compile(r"\{term\}`([^`]*)`")
OTHER_ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")
# Words of the glossary used in another sense.
NOT_TERMS = re.compile(r"\b(?:fresh|Jupyter|notebook's|restart the|the notebook) kernels?\b"
                       r"|\bbias(?:es them| out| correction)\b", re.I)  # Adam's statistical bias
MARKER = "\u27e6{}\u27e7"


@dataclass(frozen=True)
class Entry:
    names: tuple[str, ...]

    @property
    def english(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if n.isascii())


def glossary_entries(text: str | None = None) -> list[Entry]:
    """The glossary's entries, each with all its term lines (English and Chinese)."""
    text = GLOSSARY.read_text(encoding="utf-8") if text is None else text
    entries = []
    for block in GLOSSARY_BLOCK.findall(text):
        names: list[str] = []
        for line in block.splitlines():
            if not line.strip():
                continue
            if line[0].isspace():
                if names:
                    entries.append(Entry(tuple(names)))
                names = []
            else:
                names.append(line.strip())
    return entries


def _name_pattern(name: str) -> str:
    words = [re.escape(w) for w in re.split(r"[\s-]+", name)]
    return r"[\s-]+".join(words)


def prose(text: str) -> str:
    """The page's running text, with ``{term}`` links replaced by markers."""
    def blank(match: re.Match) -> str:  # keeps line numbers
        return "\n" * match.group(0).count("\n")
    text = re.sub(r"\A---\n.*?\n---\n", blank, text, flags=re.S)

    def fence(match: re.Match) -> str:
        name = match.group(2)
        if name in PROSE_DIRECTIVES:
            body = re.sub(r"^:[\w-]+:.*$", "", match.group(3), flags=re.M)
            return "\n" + prose(body) + "\n"
        return blank(match)
    text = FENCE.sub(fence, text)
    text = re.sub(r"\$\$.*?\$\$", blank, text, flags=re.S)
    text = re.sub(r"^#+ .*$|^\(.*\)=$|^<!--.*?-->$", "", text, flags=re.M)
    return text


def _strip_inline(text: str, entries: list[Entry]) -> str:
    index = {name.lower(): i for i, e in enumerate(entries) for name in e.names}

    def term(match: re.Match) -> str:
        body = match.group(1)
        target = re.search(r"<([^>]*)>\s*$", body)
        key = (target.group(1) if target else body).strip().lower()
        return MARKER.format(index.get(key, -1))
    text = TERM_ROLE.sub(term, text)
    text = OTHER_ROLE.sub(" ", text)
    text = re.sub(r"<[^>\n]+>", " ", text)
    text = NOT_TERMS.sub(" ", text)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"\$[^$\n]+\$", " ", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", " ", text)
    return text


def unlinked_first_uses(page: Path, entries: list[Entry] | None = None
                        ) -> list[tuple[str, int, str]]:
    """(term, line number, line) for each term whose first use on the page is not linked."""
    entries = glossary_entries() if entries is None else entries
    text = _strip_inline(prose(page.read_text(encoding="utf-8")), entries)
    forms = sorted(((name, i) for i, e in enumerate(entries) for name in e.english),
                   key=lambda item: -len(item[0]))
    pattern = re.compile("|".join(
        rf"(?P<t{n}>(?<![\w-]){_name_pattern(name)}(?:s|es)?(?![\w-]))"
        for n, (name, _) in enumerate(forms)), re.I)
    linked: set[int] = set()
    reported: set[int] = set()
    problems = []
    markers = re.compile(MARKER.format(r"(-?\d+)"))
    events = [(m.start(), "link", int(m.group(1))) for m in markers.finditer(text)]
    for m in pattern.finditer(text):
        n = int(m.lastgroup[1:])
        events.append((m.start(), "use", forms[n][1]))
    for position, kind, entry in sorted(events):
        if kind == "link":
            linked.add(entry)
        elif entry not in linked and entry not in reported:
            reported.add(entry)
            line_number = text.count("\n", 0, position) + 1
            line = text.splitlines()[line_number - 1].strip()
            problems.append((entries[entry].names[0], line_number, line[:120]))
    return problems


def unknown_term_links(page: Path, entries: list[Entry] | None = None) -> list[str]:
    """``{term}`` targets on the page that the glossary does not define."""
    entries = glossary_entries() if entries is None else entries
    names = {name.lower() for e in entries for name in e.names}
    unknown = []
    for body in TERM_ROLE.findall(page.read_text(encoding="utf-8")):
        target = re.search(r"<([^>]*)>\s*$", body)
        key = (target.group(1) if target else body).strip().lower()
        if key not in names:
            unknown.append(body)
    return unknown


def main(paths: list[str]) -> int:
    entries = glossary_entries()
    status = 0
    for path in paths:
        for term, line_number, line in unlinked_first_uses(Path(path), entries):
            status = 1
            print(f"{path}: '{term}' first used unlinked (line {line_number}): {line}")
        for body in unknown_term_links(Path(path), entries):
            status = 1
            print(f"{path}: {{term}}`{body}` is not in the glossary")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
