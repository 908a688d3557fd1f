"""Copy the build's execution cache for each translated site, with its figures translated.

Usage: python scripts/translated_cache.py CACHE [LANGUAGE ...]

scripts/execute_pages.py stores, beside each figure's English PNG, the figure drawn in each
translated language (cnn_course/figure_translation.py). For each LANGUAGE this copies CACHE to
CACHE_<LANGUAGE> with that language's drawing in the PNG's place, and with glued descriptions
of the machine (recorded in English by benchmarks) in that language, so that the translated
site's build reads the same executed pages in its language; then it removes the drawings from
CACHE itself, which the English build reads. Nothing is executed.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import nbformat

from cnn_course.device import translated_description
from cnn_course.figure_translation import GLUE_PREFIX, MIME
from cnn_course.messages import using_language

GLUED_TEXT = GLUE_PREFIX + "text/plain"


def translate_outputs(notebook, language: str) -> int:
    """Swap each figure's PNG for its ``language`` drawing, and each glued description of a
    machine for its translation (no language: only drop the drawings); returns how many
    figures were swapped. A glued figure's formats carry glue's prefix."""
    swapped = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            glued = data.get(GLUED_TEXT)
            if language and isinstance(glued, str) and glued[:1] in "'\"":
                with using_language(language):
                    data[GLUED_TEXT] = repr(translated_description(ast.literal_eval(glued)))
            for prefix in ("", GLUE_PREFIX):
                drawings = data.pop(prefix + MIME, None)
                png = (drawings or {}).get(language, {}).get("png")
                if png:
                    data[prefix + "image/png"] = png
                    swapped += 1
    return swapped


def rewrite(cache: Path, language: str | None) -> int:
    """Swap (``language``) or only remove (None) the drawings in every page of ``cache``."""
    swapped = 0
    for path in sorted(cache.glob("executed/*/base.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        swapped += translate_outputs(notebook, language or "")
        nbformat.write(notebook, path)
    return swapped


def main(source: Path, languages: list[str]) -> int:
    if not (source / "global.db").exists():
        print(f"error: {source} is not an execution cache", file=sys.stderr)
        return 2
    for language in languages:
        target = source.with_name(f"{source.name}_{language}")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
        print(f"{rewrite(target, language)} figure(s) drawn in {language} in {target}")
    rewrite(source, None)
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[2])
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
