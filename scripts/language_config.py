"""Write the build configuration of one translated site: _config.yml with the language's
changes, and _toc.yml with its part captions translated.

Usage: python scripts/language_config.py LANGUAGE FOLDER   (e.g. zh_CN _build/zh_CN)
writes FOLDER/_config.yml and FOLDER/_toc.yml.

The changes live in locales/<LANGUAGE>/config.yml (the site's title, Sphinx's `language`); they
are merged into _config.yml key by key, so every other setting has one source. The captions'
translations come from the root page's catalog, where Sphinx's message extraction puts them
(the sidebar is drawn from the table of contents, which Sphinx does not translate itself).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` applied; nested mappings are merged, anything else replaced."""
    result = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def translated_toc(language: str) -> dict:
    """_toc.yml with each part's caption replaced by its translation in the root's catalog."""
    import polib

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    catalog = ROOT / "locales" / language / "LC_MESSAGES" / f"{toc['root']}.po"
    translations = {e.msgid: e.msgstr for e in polib.pofile(str(catalog))
                    if e.msgstr and "fuzzy" not in e.flags} if catalog.exists() else {}
    for part in toc.get("parts", []):
        part["caption"] = translations.get(part["caption"], part["caption"])
    return toc


def main(language: str, output: Path) -> int:
    changes_file = ROOT / "locales" / language / "config.yml"
    if not changes_file.exists():
        print(f"error: no {changes_file.relative_to(ROOT)}: is {language!r} a language of "
              "the site?", file=sys.stderr)
        return 2
    base = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    changes = yaml.safe_load(changes_file.read_text(encoding="utf-8"))
    config = merged(base, changes)
    # jupyter-book finds local extensions relative to the configuration file: point them home.
    extensions = config["sphinx"]["local_extensions"]
    for name, folder in extensions.items():
        extensions[name] = str(ROOT / folder)
    # The executed pages with their figures drawn in this language (scripts/translated_cache.py).
    cache = ROOT / config["execute"]["cache"]
    config["execute"]["cache"] = str(cache.with_name(f"{cache.name}_{language}"))
    output.mkdir(parents=True, exist_ok=True)
    for name, content in (("_config.yml", config), ("_toc.yml", translated_toc(language))):
        (output / name).write_text(yaml.safe_dump(content, allow_unicode=True, sort_keys=False),
                                   encoding="utf-8")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
