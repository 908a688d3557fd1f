"""The explorers' front-end code: JavaScript modules in ``js/``, bundled for anywidget.

An anywidget carries one ES module as a string. :func:`esm` joins ``js/common.js`` (helpers
every explorer shares) with the explorer's own files, in order, so that each explorer stays one
readable file and the shared helpers have one definition.

The words an explorer shows are written in English in its JavaScript, as ``t("template")`` or
``N_("template")`` (see ``common.js``). :class:`Explorer` ships their translations from the
course's message catalogs with the widget, so the page picks its language in the browser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anywidget
import traitlets

from cnn_course.messages import ENGLISH, LANGUAGES, catalog, current_language, using_language

JS = Path(__file__).parent / "js"
CSS = JS / "explorers.css"

# t("...") or N_("...") with one double-quoted literal: the templates a catalog can hold.
JS_MESSAGE = re.compile(r'(?<![\w.$])(?:t|N_)\(\s*("(?:[^"\\\n]|\\.)*")\s*[,)]')
_JS_CALL = re.compile(r'(?<![\w.$])(?:t|N_)\(\s*')


def esm(*names: str) -> str:
    """``common.js`` followed by the named files of ``js/`` (e.g. ``"pooling.js"``)."""
    return "\n".join((JS / name).read_text() for name in ("common.js", *names))


def js_templates(source: str) -> list[str]:
    """The English templates marked in JavaScript ``source``, in order, each once."""
    found = [json.loads(literal) for literal in JS_MESSAGE.findall(source)]
    return list(dict.fromkeys(found))


def js_unextractable(source: str) -> list[int]:
    """Offsets of the ``t(`` and ``N_(`` calls in ``source`` whose template is neither one
    literal nor a name (a template string, a sum of literals...): no catalog can hold those."""
    literal = {match.start() for match in JS_MESSAGE.finditer(source)}
    return [call.start() for call in _JS_CALL.finditer(source)
            if call.start() not in literal and not re.match(r"[A-Za-z_$]", source[call.end():])]


def js_translations(source: str) -> dict[str, dict[str, str]]:
    """For each language, the translations of the templates in ``source`` that it has."""
    templates = js_templates(source)
    return {language: {t: catalog(language)[t] for t in templates if t in catalog(language)}
            for language in LANGUAGES}


T = TypeVar("T")


def in_every_language(compute: Callable[[], T]) -> dict[str, T]:
    """``compute()`` once in each translated language, by language: the words that Python
    computes for an explorer, shipped for every reader of a page executed once, in English."""
    results = {}
    for language in LANGUAGES:
        with using_language(language):
            results[language] = compute()
    return results


class Explorer(anywidget.AnyWidget):
    """An explorer whose words follow the reader's language.

    ``translations`` carries every language's words (only the templates this explorer uses).
    ``language`` is empty when the code runs in English, so that a page executed once serves
    every language and the browser picks the words by the page's ``<html lang>``; in a notebook
    that runs in another language it names that language.
    """

    translations = traitlets.Dict().tag(sync=True)
    language = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.translations = js_translations(self._esm)
        language = current_language()
        self.language = "" if language == ENGLISH else language
