"""Give the saved ipywidgets accessible names and their figures alternative text.

The widget manager draws each saved widget in the browser; ``widget_a11y.js`` then names every
slider handle and drop-down after the widget's ``description`` and describes each figure shown
in an Output widget by the settings of the controls next to it. This extension adds the script to
every page and copies it to ``_static/`` after the build.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SCRIPT = Path(__file__).with_name("widget_a11y.js")


def _copy(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copy2(SCRIPT, static / SCRIPT.name)


def setup(app):
    app.add_js_file(SCRIPT.name, defer="defer")
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
