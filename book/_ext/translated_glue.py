"""Let glued numbers ({glue:text}`key`) work inside translated paragraphs.

Sphinx applies a translation by parsing the translated paragraph as a small document of its
own, which myst-nb parses with plain MyST: that small document has no notebook renderer, so a
glue role in it finds no data ("No key ... found in glue data for this document") although the
page has it. The small document shares the page's settings object, so the page's renderer is
remembered there when myst-nb creates it, and a glue lookup from a translated paragraph uses it.
"""

from __future__ import annotations

from myst_nb import sphinx_ as myst_nb_sphinx
from myst_nb.ext.glue import directives, roles, utils

_page_parse = myst_nb_sphinx.Parser.parse
_page_glue_data = utils.retrieve_glue_data


class _Attributes(dict):
    """A document's attributes that copy its notebook renderer onto its settings."""

    def __init__(self, attributes: dict, settings) -> None:
        super().__init__(attributes)
        self.settings = settings

    def __setitem__(self, key, value) -> None:
        if key == "nb_renderer":
            self.settings.course_nb_renderer = value
        super().__setitem__(key, value)


def _parse_remembering_renderer(self, inputstring, document) -> None:
    document.attributes = _Attributes(document.attributes, document.settings)
    _page_parse(self, inputstring, document)


def _glue_data(document, key):
    renderer = getattr(document.settings, "course_nb_renderer", None)
    if "nb_renderer" in document or renderer is None \
            or not str(document.current_source).endswith("<translated>"):
        return _page_glue_data(document, key)
    document.attributes["nb_renderer"] = renderer
    try:
        return _page_glue_data(document, key)
    finally:
        del document.attributes["nb_renderer"]


def _forget_renderer(app, doctree) -> None:
    """Once the page's translations are applied, nothing must hold the renderer (the page's
    doctree is pickled)."""
    vars(doctree.settings).pop("course_nb_renderer", None)
    if isinstance(doctree.attributes, _Attributes):
        doctree.attributes = dict(doctree.attributes)


def setup(app):
    app.connect("doctree-read", _forget_renderer)
    myst_nb_sphinx.Parser.parse = _parse_remembering_renderer
    roles.retrieve_glue_data = directives.retrieve_glue_data = _glue_data
    return {"parallel_read_safe": True, "parallel_write_safe": True}
