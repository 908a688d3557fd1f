"""Each chapter's main path reads in about 20 minutes; deep dives sit in collapsed dropdowns."""

from pathlib import Path

import pytest
from glossary_usage import ROOT
from page_length import MAIN_PATH_WORDS, main_path_words

CHAPTERS = sorted((ROOT / "book").glob("0[0-9]_*.md"))


@pytest.mark.parametrize("page", CHAPTERS, ids=lambda p: p.stem)
def test_main_path_is_short_enough(page: Path):
    words = main_path_words(page)
    assert words <= MAIN_PATH_WORDS, (
        f"{page.name}: {words} words outside code and 'Going further' dropdowns, more than "
        f"{MAIN_PATH_WORDS}; move a deep dive into a :::{{dropdown}} Going further: ...")


def test_dropdowns_and_code_do_not_count(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("One two three.\n\n:::{dropdown} Going further: more\nfour five six\n:::\n\n"
                    "```{code-cell} ipython3\nseven = 8\n```\n", encoding="utf-8")
    assert main_path_words(page) == 3
    assert len(CHAPTERS) == 9
