"""The explorers' front-end code: JavaScript modules in ``js/``, bundled for anywidget.

An anywidget carries one ES module as a string. :func:`esm` joins ``js/common.js`` (helpers
every explorer shares) with the explorer's own files, in order, so that each explorer stays one
readable file and the shared helpers have one definition.
"""

from __future__ import annotations

from pathlib import Path

JS = Path(__file__).parent / "js"
CSS = JS / "explorers.css"


def esm(*names: str) -> str:
    """``common.js`` followed by the named files of ``js/`` (e.g. ``"pooling.js"``)."""
    return "\n".join((JS / name).read_text() for name in ("common.js", *names))
