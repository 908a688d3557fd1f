"""Serve MathJax and the ipywidgets JavaScript from the site itself instead of CDNs.

``scripts/vendor-assets.sh`` puts the files in ``.vendor/``; this extension points Sphinx and
myst-nb at them and copies them to ``_static/vendor/`` after the build. They are not placed in
``html_static_path``, because Jupyter Book adds every script found there to every page.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.util import logging

VENDOR = Path(__file__).resolve().parents[2] / ".vendor"
logger = logging.getLogger(__name__)


def _available() -> bool:
    return (VENDOR / ".complete").exists()


def _configure(app, config) -> None:
    if not _available():
        logger.info("offline_assets: no .vendor/ folder, the site uses CDNs for MathJax/widgets")
        return
    config.mathjax_path = "vendor/mathjax/tex-chtml.js"
    config.nb_ipywidgets_js = {  # order matters: RequireJS, its configuration, the manager
        "vendor/require.js": {},
        "vendor/requirejs-config.js": {},
        "vendor/html-manager/embed-amd.js": {},
    }


def _copy(app, exception) -> None:
    if exception is None and _available() and app.builder.format == "html":
        outdir = Path(app.outdir)
        shutil.copytree(VENDOR, outdir / "_static" / "vendor", dirs_exist_ok=True)
        # Our own script, copied on every build so that edits to it take effect.
        shutil.copy2(Path(__file__).with_name("requirejs-config.js"),
                     outdir / "_static" / "vendor" / "requirejs-config.js")
        # The widget manager's style sheets ask for their icon fonts at a path relative to the
        # page ("@jupyter-widgets/<hash>.woff2"), so every folder of pages gets a copy.
        fonts = [f for f in (VENDOR / "html-manager").iterdir()
                 if f.suffix in (".woff2", ".woff", ".ttf", ".eot")]
        page_folders = {page.parent for page in outdir.rglob("*.html")
                        if "_static" not in page.parts}
        for folder in page_folders:
            (folder / "@jupyter-widgets").mkdir(exist_ok=True)
            for font in fonts:
                shutil.copy2(font, folder / "@jupyter-widgets" / font.name)


def setup(app):
    app.connect("config-inited", _configure)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
