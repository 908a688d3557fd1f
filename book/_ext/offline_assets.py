"""Serve MathJax from the site itself instead of a CDN.

``scripts/vendor-assets.sh`` puts it in ``.vendor/``; this extension points Sphinx at it and
copies it to ``_static/vendor/`` after the build. It is not placed in ``html_static_path``,
because Jupyter Book adds every script found there to every page. (Saved widgets need no
library: ``saved_widgets`` draws them.)
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
        logger.info("offline_assets: no .vendor/ folder, the site loads MathJax from a CDN")
        return
    config.mathjax_path = "vendor/mathjax/tex-chtml.js"


def _copy(app, exception) -> None:
    if exception is None and _available() and app.builder.format == "html":
        shutil.copytree(VENDOR, Path(app.outdir) / "_static" / "vendor", dirs_exist_ok=True)


def setup(app):
    app.connect("config-inited", _configure)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
