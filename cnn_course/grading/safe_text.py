"""Text that came from a submission, made safe to show in a terminal, a CSV or a JSON file.

A notebook chooses its file name, what its cells print, the messages of the exceptions it
raises. Any of these may hold terminal escape sequences (which move the cursor, rewrite
earlier lines, or change a terminal's title), bidirectional overrides and zero-width
characters (which make text read differently from what it is), or many lines. :func:`clean`
replaces every control and format character with U+FFFD, keeps ordinary printable text
(accents, Chinese, ✅), and makes one line of it unless asked to keep the lines.
"""

from __future__ import annotations

import re
import unicodedata

REPLACEMENT = "\ufffd"
ELLIPSIS = "…"
MAX_MARKS = 4   # combining marks kept on one character (more only pile up, "Zalgo" text)

# Characters that look like nothing at all though they are letters or marks.
_INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")
# Controls, format characters (bidi, zero-width), lone surrogates, unassigned code points.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn"})
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_BREAK_RUN = re.compile(rf"[ \t]*(?:\r\n|[{_LINE_BREAKS}])\s*")
_NOT_ASCII_ONE_LINE = re.compile(r"[^\x20-\x7e]+")
_NOT_ASCII_LINES = re.compile(r"[^\x20-\x7e\n]+")


def clean(text: object, limit: int | None = None, *, lines: bool = False) -> str:
    """``text`` with every control, escape and format character replaced by U+FFFD.

    One line (line breaks, with the spaces around them, and tabs become one space) unless
    ``lines`` is true, which keeps ``\\n`` (``\\r\\n`` and other breaks become ``\\n``, a tab
    four spaces). At most ``limit`` characters, the last one an ellipsis when cut.
    Idempotent: cleaning clean text changes nothing.
    """
    text = text if isinstance(text, str) else str(text)
    cut = False
    if limit is not None:
        limit = max(1, limit)
        budget = 8 * limit + 64   # cleaning never lengthens much; never read megabytes
        cut, text = len(text) > budget, text[:budget]
    if lines:
        text = _NOT_ASCII_LINES.sub(_fixer(lines=True), text.replace("\r\n", "\n"))
    else:
        text = _NOT_ASCII_ONE_LINE.sub(_fixer(lines=False), _BREAK_RUN.sub(" ", text))
    if limit is not None and (cut or len(text) > limit):
        text = text[:limit - 1] + ELLIPSIS
    return text


def clean_tree(value: object, limit: int | None = None) -> object:
    """Every string (keys included) in a tree of dicts and lists cleaned as one line."""
    if isinstance(value, str):
        return clean(value, limit)
    if isinstance(value, dict):
        return {clean(key, limit): clean_tree(item, limit) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_tree(item, limit) for item in value]
    return value


def _fixer(*, lines: bool):
    def fix(match: re.Match[str]) -> str:
        out: list[str] = []
        marks = 0
        for char in match[0]:
            category = unicodedata.category(char)
            if category in ("Mn", "Me") and char not in _INVISIBLE:
                marks += 1
                if marks <= MAX_MARKS:
                    out.append(char)
                continue
            marks = 0
            if char == "\t":
                out.append("    " if lines else " ")
            elif lines and char in _LINE_BREAKS:
                out.append("\n")
            elif char.isspace():
                out.append(" ")
            elif category in _UNSAFE_CATEGORIES or char in _INVISIBLE:
                out.append(REPLACEMENT)
            else:
                out.append(char)
        return "".join(out)

    return fix
