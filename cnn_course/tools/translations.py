"""The course's translations: which English messages lack a current translation.

The English pages, notebooks and messages are the source. Notebooks are translated cell by
cell (cnn_course/tools/notebook_catalogs.py), the package's messages template by template
(cnn_course/tools/message_catalogs.py); the rest of this module is about the pages.
`scripts/build-book.sh` extracts their messages (Sphinx's gettext builder) into
``_build/gettext/<page>.pot``; each language keeps its translations in
``locales/<language>/LC_MESSAGES/<page>.po``. A message counts as translated when the catalog
holds it with a non-empty translation that is not marked fuzzy, and the translation keeps the
message's markup (roles, math, inline code, link targets), since the build parses it again.

    python -m cnn_course.tools.translations check [--language zh_CN]   # list what is missing
    python -m cnn_course.tools.translations update [--language zh_CN]  # add new messages
    python -m cnn_course.tools.translations update --page messages/checks.conv  # one module

`update` runs sphinx-intl: new English messages are added untranslated, and a message whose
English changed keeps its old translation marked fuzzy, to be revised and unmarked.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POT_DIR = ROOT / "_build" / "gettext"
LOCALES = ROOT / "locales"
LANGUAGES = ("zh_CN",)
# The explanation pages are translated through these catalogs. (The notebooks' pages are not
# yet: their Chinese versions are to be generated cell by cell from catalogs of their own.)
TRANSLATED_FOLDERS = ("book",)

# Markup that a translation must carry over unchanged: the parser reads it again.
_ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")
_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.S)
_CODE = re.compile(r"(?<![`}])`[^`]+`")
_LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
_EXPLICIT_TARGET = re.compile(r"<([^<>`]+)>`$")


@dataclass(frozen=True)
class Problem:
    page: str      # e.g. book/01_convolution
    message: str   # the English message (shortened)
    reason: str

    def __str__(self) -> str:
        text = self.message if len(self.message) <= 90 else self.message[:87] + "..."
        return f"{self.page}: {self.reason}: {text!r}"


def _role_key(role: str) -> str:
    """A role's name and target: {term}`kernels <kernel>` and {term}`卷积核 <kernel>` agree."""
    name, body = role.split("`", 1)
    body = body.rstrip("`")
    explicit = _EXPLICIT_TARGET.search(role)
    if name in ("{glue:text}", "{glue}", "{math}", "{eq}"):
        return role
    return f"{name}{explicit.group(1) if explicit else '*'}"


def markup_differences(english: str, translated: str) -> list[str]:
    """What markup of ``english`` the translation lost, changed or added (empty when none)."""
    from collections import Counter

    found = []
    english_roles = Counter(_role_key(r) for r in _ROLE.findall(english))
    translated_roles = Counter(_role_key(r) for r in _ROLE.findall(translated))
    names = Counter(k.split("}")[0] for k in english_roles.elements())
    if names != Counter(k.split("}")[0] for k in translated_roles.elements()):
        found.append(f"its roles differ from the English ({dict(names)} in English)")
    # A target written out must stay; a role written without one may gain one.
    for key in (english_roles - translated_roles).elements():
        if not key.endswith("*"):
            found.append(f"the role {key} is missing")
    english_text, translated_text = _ROLE.sub("", english), _ROLE.sub("", translated)
    for name, pattern in (("math", _MATH), ("inline code", _CODE),
                          ("link target", _LINK_TARGET)):
        if sorted(pattern.findall(english_text)) != sorted(pattern.findall(translated_text)):
            found.append(f"its {name} differs from the English")
    return found


def entry_problems(page: str, english: str, entry, where: str = "") -> list[Problem]:
    """What keeps ``entry`` (a catalog entry, or None) from being a current, well-formed
    translation of ``english``; ``where`` names the entry's place (e.g. a notebook cell)."""
    prefix = f"{where}: " if where else ""
    if entry is None or not entry.msgstr.strip():
        return [Problem(page, english, f"{prefix}not translated")]
    if entry.msgid != english or "fuzzy" in entry.flags:
        fuzzy = " (fuzzy)" if "fuzzy" in entry.flags else ""
        return [Problem(page, english,
                        f"{prefix}the English changed since it was translated{fuzzy}")]
    return [Problem(page, english, prefix + difference)
            for difference in markup_differences(english, entry.msgstr)]


def catalog_problems(pot_dir: Path = POT_DIR, language: str = "zh_CN",
                     locales: Path = LOCALES) -> list[Problem]:
    """Every English message of ``pot_dir`` without a current, well-formed translation."""
    import polib

    if not pot_dir.is_dir() or not any(pot_dir.rglob("*.pot")):
        raise FileNotFoundError(f"no message templates in {pot_dir}: build the site first "
                                "(bash scripts/build-book.sh extracts them)")
    problems = []
    for pot_path in sorted(pot_dir.rglob("*.pot")):
        page = pot_path.relative_to(pot_dir).with_suffix("").as_posix()
        if page.split("/")[0] not in TRANSLATED_FOLDERS:
            continue
        po_path = locales / language / "LC_MESSAGES" / f"{page}.po"
        translated = {}
        if po_path.exists():
            for entry in polib.pofile(str(po_path)):
                if not entry.obsolete:
                    translated[(entry.msgctxt, entry.msgid)] = entry
        for message in polib.pofile(str(pot_path)):
            problems += entry_problems(page, message.msgid,
                                       translated.get((message.msgctxt, message.msgid)))
    return problems


def update(language: str) -> int:
    """Bring the language's catalogs up to date with the extracted English messages."""
    import shutil
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        for name in TRANSLATED_FOLDERS:  # only the folders translated through page catalogs
            shutil.copytree(POT_DIR / name, Path(folder) / name)
        return subprocess.call([sys.executable, "-m", "sphinx_intl", "update", "-p", folder,
                                "-d", str(LOCALES), "-l", language, "--line-width", "-1"])


def main(argv: list[str] | None = None) -> int:
    from cnn_course.tools import message_catalogs, notebook_catalogs

    parser = argparse.ArgumentParser(prog="python -m cnn_course.tools.translations",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("check", "update"))
    parser.add_argument("--language", default="zh_CN", choices=LANGUAGES)
    parser.add_argument("--page", help="only this page, e.g. book/01_convolution, "
                                       "notebooks/01_convolution or messages/checks.conv")
    args = parser.parse_args(argv)
    module = args.page.removeprefix("messages/") \
        if (args.page or "").startswith("messages/") else None
    if args.command == "update":
        message_catalogs.update(args.language, [module] if module else None)
        if module:
            return 0
        notebook_catalogs.update(args.language)
        if message_catalogs.FIGURE_TEXTS.exists():
            message_catalogs.update_figures(args.language)
        return update(args.language)
    problems = message_catalogs.problems(args.language) + \
        notebook_catalogs.problems(args.language)
    if not (args.page or "").startswith(("notebooks/", "messages/")):
        try:
            problems = catalog_problems(language=args.language) + problems + \
                message_catalogs.figure_problems(args.language)
        except FileNotFoundError as missing:
            print(f"error: {missing}", file=sys.stderr)
            return 2
    problems = [p for p in problems if args.page in (None, p.page)]
    for problem in problems:
        print(problem)
    print(f"{len(problems)} message(s) need a translation in {args.language}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
