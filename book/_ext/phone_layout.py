"""Add ``phone_layout.css`` to every page: the site must not scroll sideways on a phone.

The browser tests open every page at a 375-pixel-wide viewport and fail if anything widens it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

STYLE = Path(__file__).with_name("phone_layout.css")


def _copy(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copy2(STYLE, static / STYLE.name)


def setup(app):
    app.add_css_file(STYLE.name)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
