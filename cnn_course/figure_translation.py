"""Figures with their words in another language, drawn when the English ones are.

The explanation pages are executed once, in English. While they run for the site
(``scripts/execute_pages.py``), :func:`install` adds one more format to every figure a cell
shows: the same figure drawn again for each translated language, every text on it (title,
axis labels, legend, annotations) replaced by its translation, in a CJK font. The output keeps
the English PNG for the English site; the Chinese site's build swaps in the Chinese one
(``scripts/translated_cache.py``), so nothing is executed twice.

A figure's texts are looked up in the message catalogs (``figures.po``) with their numbers
taken out: "batch 64: 120 steps" is the template "batch {0}: {1} steps", so one translation
serves every value. A text with no letters once its numbers are out (a tick label) is left
as it is; a text that has no translation yet is listed under ``missing``, and the figure keeps
it in English.
"""

from __future__ import annotations

import re
from functools import cache

from cnn_course.device import is_recorded_description, translated_description
from cnn_course.messages import (
    ENGLISH,
    LANGUAGES,
    catalog,
    current_language,
    tr,
    translated,
    using_language,
)

MIME = "application/vnd.cnn-course.translated-figure+json"
GLUE_PREFIX = "application/papermill.record/"   # how myst-nb's glue stores a value's formats
# A number, but not one that is part of a name (C3, S2); "7x7" holds two.
_NUMBER = re.compile(r"(?:(?<![A-Za-z_{])|(?<=\dx))[-−]?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?")
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def as_template(text: str) -> tuple[str, list[str]]:
    """``text`` with its numbers replaced by ``{0}``, ``{1}``..., and the numbers."""
    numbers: list[str] = []

    def field(match: re.Match) -> str:
        numbers.append(match.group(0))
        return "{" + str(len(numbers) - 1) + "}"

    escaped = text.replace("{", "{{").replace("}", "}}")
    return _NUMBER.sub(field, escaped), numbers


def needs_translation(text: str) -> bool:
    """False for texts that read the same in every language (numbers, symbols, math only) and
    for texts translated without a catalog entry of their own (a machine's description)."""
    if is_recorded_description(text):
        return False
    words = re.sub(r"\$[^$]*\$", "", _NUMBER.sub("", text))
    return bool(re.search(r"[A-Za-z]{2,}", words))


def translate_text(text: str, language: str) -> str | None:
    """``text`` in ``language``, or None when the catalogs lack it."""
    if is_recorded_description(text):   # a machine, as a benchmark recorded it
        with using_language(language):
            return translated_description(text)
    template, numbers = as_template(text)
    translation = catalog(language).get(template)
    if translation is None:
        return None
    try:
        return translation.format(*numbers)
    except (IndexError, KeyError, ValueError):
        return None


@cache
def cjk_font() -> str | None:
    """The name of an installed font with Chinese glyphs, or None."""
    from matplotlib import font_manager

    wanted = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
              "Noto Serif CJK SC")
    for attempt in range(2):
        names = {font.name for font in font_manager.fontManager.ttflist}
        for name in wanted:
            if name in names:
                return name
        if attempt == 0:  # matplotlib's font list predates the font's installation: add it
            for path in font_manager.findSystemFonts():
                if "CJK" in path or "wqy" in path.lower():
                    font_manager.fontManager.addfont(path)
    return None


# ---- text that a notebook's figure draws in the learner's language -----------------------

def drawable_language() -> str:
    """The current language if a font on this machine can draw it, else English (a figure
    never shows boxes for missing glyphs)."""
    language = current_language()
    return language if language == ENGLISH or cjk_font() is not None else ENGLISH


def figure_tr(template: str, /, **fields: object) -> str:
    """``tr`` for a text drawn on a figure: in English when no font can draw the language."""
    with using_language(drawable_language()):
        return tr(template, **fields)


def figure_translated(text: str) -> str:
    """``translated`` for a text drawn on a figure (see :func:`figure_tr`)."""
    with using_language(drawable_language()):
        return translated(text)


def use_cjk_font(text) -> None:
    """Draw a matplotlib ``Text`` in a font with Chinese glyphs if it holds any."""
    if _CJK.search(text.get_text()) and cjk_font() is not None:
        text.set_fontfamily(["DejaVu Sans", cjk_font()])


def set_title(ax, text: str, **kwargs) -> None:
    """``ax.set_title(text)``, in a font with Chinese glyphs if ``text`` holds any."""
    use_cjk_font(ax.set_title(text, **kwargs))


def translated_figures(figure) -> dict:
    """The templates of the figure's texts (``"templates"``) and, for each language, the
    figure drawn with its texts translated (base64 PNG) and the templates it still lacks:
    ``{"templates": [...], language: {"png": ..., "missing": [...]}}``. A language whose figure
    would be the English one (nothing to translate, or no CJK font) gets no PNG."""
    from IPython.core.pylabtools import print_figure
    from matplotlib.text import Text

    texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text()]
    result: dict = {"templates": sorted({as_template(t.get_text())[0] for t in texts
                                         if needs_translation(t.get_text())})}
    for language in LANGUAGES:
        missing: list[str] = []
        changes = []
        for text in texts:
            english = text.get_text()
            if not (needs_translation(english) or is_recorded_description(english)):
                continue
            translation = translate_text(english, language)
            if translation is None:
                missing.append(as_template(english)[0])
            elif translation != english:
                changes.append((text, english, translation))
        entry: dict = {"missing": sorted(set(missing))}
        font = cjk_font()
        if changes and font is not None:
            saved = [(text, text.get_fontfamily()) for text, _, _ in changes]
            try:
                for text, _, translation in changes:
                    text.set_text(translation)
                    if _CJK.search(translation):
                        text.set_fontfamily(["DejaVu Sans", font])
                entry["png"] = print_figure(figure, "png", bbox_inches="tight", base64=True)
            finally:
                for (text, family), (_, english, _) in zip(saved, changes, strict=True):
                    text.set_text(english)
                    text.set_fontfamily(family)
        elif changes:
            entry["no_font"] = True
        result[language] = entry
    return result


def install() -> None:
    """In a running IPython kernel: give every figure shown from now on the translated
    versions as an extra output format (``MIME``)."""
    from IPython import get_ipython
    from IPython.core.formatters import BaseFormatter
    from matplotlib.figure import Figure
    from traitlets import Unicode

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("cnn_course.figure_translation.install() needs an IPython kernel")

    class TranslatedFigureFormatter(BaseFormatter):
        # Not registered per type: the inline backend removes every formatter's Figure
        # printer when it starts, after this runs.
        format_type = Unicode(MIME)

        def __call__(self, obj):
            return translated_figures(obj) if isinstance(obj, Figure) else None

    formatter = TranslatedFigureFormatter(parent=shell.display_formatter)
    shell.display_formatter.formatters[MIME] = formatter
    if shell.display_formatter.active_types:
        shell.display_formatter.active_types.append(MIME)
