"""On a translated site, show the notebooks' pages in that language.

The exercise and solution notebooks are translated cell by cell
(``locales/<language>/notebooks/<chapter>.po``, see ``cnn_course/tools/notebook_catalogs.py``),
not through Sphinx's page catalogs. When the site's language is not English, each notebook's
markdown cells are replaced by their translations as Sphinx reads the file, and the passing
checks' verdicts in the stored outputs are shown in that language; code cells and all other
outputs stay as they are, so nothing is executed again.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

FOLDERS = ("notebooks/", "solutions/")


def _translate(app, docname: str, source: list[str]) -> None:
    from cnn_course.checks.core import translated_verdicts
    from cnn_course.messages import using_language
    from cnn_course.tools.notebook_catalogs import translated

    language = app.config.language
    if language in (None, "", "en") or not docname.startswith(FOLDERS) \
            or not str(app.env.doc2path(docname)).endswith(".ipynb"):
        return
    notebook = nbformat.reads(source[0], as_version=4)
    version = translated(notebook, Path(docname).name, language, Path(app.srcdir) / "locales")
    with using_language(language):
        for cell in version.cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream":
                    output.text = translated_verdicts(output.text)
    source[0] = nbformat.writes(version)


def setup(app):
    app.connect("source-read", _translate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
