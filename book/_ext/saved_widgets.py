"""Draw the pages' saved widgets with the site's own small script instead of a widget manager.

myst-nb adds the scripts listed in ``nb_ipywidgets_js`` to every page that holds saved widget
state (and only to those). This extension lists ``saved_widgets.js`` there in place of
RequireJS and the 4 MB ipywidgets HTML manager, and copies the script to ``_static/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SCRIPT = Path(__file__).with_name("saved_widgets.js")


def _configure(app, config) -> None:
    config.nb_ipywidgets_js = {SCRIPT.name: {"defer": "defer"}}


def _copy(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copy2(SCRIPT, static / SCRIPT.name)


def setup(app):
    app.connect("config-inited", _configure, priority=600)  # after offline_assets
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
