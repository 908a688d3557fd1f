"""How long a chapter page's main path is: words of prose outside code cells and outside
collapsed "Going further" dropdowns. ``python tests/page_length.py book/*.md`` prints them."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from glossary_usage import FENCE, prose

# About 20 minutes of careful reading of technical prose.
MAIN_PATH_WORDS = 2000


def main_path_words(page: Path) -> int:
    text = page.read_text(encoding="utf-8")
    text = FENCE.sub(lambda m: "\n" if m.group(2) == "dropdown" or ":class: dropdown"
                     in m.group(3) else m.group(0), text)
    text = re.sub(r"\{[\w:-]+\}`([^`<]*)(?:<[^>]*>)?`", r"\1", prose(text))
    text = re.sub(r"\$[^$\n]+\$", " x ", text)
    return len(re.findall(r"[^\W_]+(?:['’-][^\W_]+)*", text))


if __name__ == "__main__":
    for name in sys.argv[1:]:
        words = main_path_words(Path(name))
        flag = "" if words <= MAIN_PATH_WORDS else f"  (over {MAIN_PATH_WORDS})"
        print(f"{name}: {words} words on the main path{flag}")
