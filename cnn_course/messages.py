"""Messages in the reader's language.

English is the source. Every message that a learner or an instructor reads is written in
English where it is made, as a template with named fields::

    raise CaseFailed(tr("the output has shape {got}, expected {expected}",
                        got=got_shape, expected=expected_shape))

Other languages come from catalogs, ``cnn_course/locales/<language>/<module>.po``, keyed by the
English template (``python -m cnn_course.tools.translations check`` finds templates that lack
a translation). A template that is defined long before it is shown (a case description in a
table, an exercise's hint) is marked with ``N_`` and translated with ``translated`` or ``tr``
where it is shown.

The language is, first of all, the one set with ``set_language`` (or ``using_language``); else
``CNN_COURSE_LANG`` (``zh``, ``zh_CN`` or ``zh-CN`` for Chinese, ``en`` for English); else the
language of the notebook the code runs in, when that notebook lies in a folder named after a
language (the generated Chinese notebooks live in ``notebooks/zh_CN``); else English.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ENGLISH = "en"
LANGUAGES = ("zh_CN",)          # the translations that exist, besides English
CATALOG_DIR = Path(__file__).resolve().parent / "locales"

_chosen: str | None = None


def normalize_language(name: str) -> str | None:
    """The course's name for a language (``en``, ``zh_CN``), or None if it has none."""
    key = name.strip().replace("-", "_").lower()
    if key in ("", "en", "en_us", "en_gb", "english", "c", "posix"):
        return ENGLISH
    if key in ("zh", "zh_cn", "zh_hans", "zh_hans_cn", "chinese"):
        return "zh_CN"
    return None


def _notebook_language() -> str | None:
    """The language of the notebook this kernel runs, read from where the notebook lies."""
    candidates = [os.environ.get("JPY_SESSION_NAME", "")]   # set by Jupyter Server 2
    shell = sys.modules.get("IPython")
    if shell is not None:
        ipython = shell.get_ipython()
        if ipython is not None:                              # set by VS Code
            candidates.append(str(ipython.user_ns.get("__vsc_ipynb_file__", "")))
    candidates.append(os.path.join(os.getcwd(), "notebook.ipynb"))  # kernels start beside it
    for candidate in candidates:
        if candidate.endswith(".ipynb"):
            folder = Path(candidate).parent.name
            if folder in LANGUAGES:
                return folder
    return None


def chosen_language() -> str | None:
    """The language chosen with ``set_language`` or ``CNN_COURSE_LANG``, if any."""
    if _chosen is not None:
        return _chosen
    from_env = os.environ.get("CNN_COURSE_LANG", "").strip()
    return normalize_language(from_env) if from_env else None


def current_language() -> str:
    """``en`` or one of ``LANGUAGES``: the language messages are shown in now."""
    return chosen_language() or _notebook_language() or ENGLISH


def set_language(language: str | None) -> None:
    """Show messages in ``language`` from now on (``None``: decide from the environment)."""
    global _chosen
    if language is None:
        _chosen = None
        return
    normalized = normalize_language(language)
    if normalized is None:
        known = ", ".join((ENGLISH, *LANGUAGES))
        raise ValueError(f"the course has no messages in {language!r}; it has {known}")
    _chosen = normalized


@contextlib.contextmanager
def using_language(language: str | None) -> Iterator[None]:
    """Show messages in ``language`` inside this block."""
    global _chosen
    saved = _chosen
    set_language(language)
    try:
        yield
    finally:
        _chosen = saved


def apply_language_option(argv: list[str]) -> None:
    """For a command with a ``--language`` option: use the language it names in ``argv`` from
    now on, before the command's parser (whose help is in that language) reads ``argv``, and
    pass it on to the processes it starts through ``CNN_COURSE_LANG``. An unknown language is
    left to the parser to refuse."""
    value = None
    for number, argument in enumerate(argv):
        if argument == "--":
            break
        if argument == "--language" and number + 1 < len(argv):
            value = argv[number + 1]
        elif argument.startswith("--language="):
            value = argument.partition("=")[2]
    language = normalize_language(value) if value is not None else None
    if language is not None:
        set_language(language)
        os.environ["CNN_COURSE_LANG"] = language


def read_catalog(path: Path) -> dict[str, str]:
    """The translated, non-fuzzy entries of one ``.po`` file, English template to translation."""
    import polib

    return {entry.msgid: entry.msgstr for entry in polib.pofile(str(path))
            if entry.msgstr and not entry.fuzzy and not entry.obsolete}


@cache
def catalog(language: str) -> dict[str, str]:
    """Every translation of ``language``, from all of its catalog files."""
    entries: dict[str, str] = {}
    folder = CATALOG_DIR / language
    if folder.is_dir():
        for path in sorted(folder.glob("*.po")):
            entries.update(read_catalog(path))
    return entries


def translated(text: str) -> str:
    """``text`` in the current language, if its catalog has it; ``text`` itself otherwise."""
    language = current_language()
    if language == ENGLISH:
        return text
    return catalog(language).get(text, text)


def tr(template: str, /, **fields: object) -> str:
    """The message ``template`` in the current language, its ``{fields}`` filled in.

    ``template`` is a ``str.format`` template (literal braces doubled, as in an f-string).
    """
    text = translated(template)
    try:
        return text.format(**fields)
    except (KeyError, IndexError, ValueError):   # a broken translation: fall back to English
        return template.format(**fields)


def N_(template: str) -> str:  # noqa: N802 - the name gettext's tools and readers know
    """Mark ``template`` as a message to translate where it is shown; return it unchanged."""
    return template
