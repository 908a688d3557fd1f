"""Execute the book's explanation pages, several at a time, into the build's execution cache.

Usage: python scripts/execute_pages.py CACHE_FOLDER [--jobs N]

`jupyter-book build` executes pages one after another, and most pages keep one core busy, so
`scripts/build-book.sh` runs this first: each page listed in `_toc.yml` that the book executes
(the `book/` pages; `_config.yml` excludes the notebooks) runs in its own kernel, N at a time,
longest first, and its outputs go into the jupyter-cache folder that `_config.yml` names. The
build (`execute_notebooks: cache`) then finds every page there and executes none itself.

A page is read and executed exactly as myst-nb does it (its reader, `single_nb_execution`, the
page's own folder as working directory, the configured cell timeout), so the cache holds what
the build would have made. A page that fails stops the script with its error; the build would
fail on it too.

Each kernel also draws every figure again in each translated language
(cnn_course/figure_translation.py, loaded from an IPython startup file); the texts that still
lack a translation are listed in FIGURE_TEXTS for the translations check.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# Seconds each page took on a 2-core laptop CPU: only the order matters (longest first, so
# that the last pages to start are short ones).
FIGURE_TEXTS = ROOT / "_build" / "figure-texts.json"
USUAL_SECONDS = {"book/06_optimizers": 56, "book/07_lenet5": 54, "book/04_fully_connected": 32,
                 "book/08_cifar10": 31, "book/02_activations": 21, "book/00_overview": 19}


def executed_pages(config: dict) -> list[str]:
    """The pages the book executes: MyST notebooks of _toc.yml outside the folders that
    ``config`` (_config.yml) excludes from execution."""
    from myst_nb.core.read import is_myst_markdown_notebook

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    excluded = [p.rstrip("*").rstrip("/") for p in config["execute"]["exclude_patterns"]]
    return [p for p in pages if not any(p.startswith(e + "/") for e in excluded)
            and (ROOT / f"{p}.md").exists()
            and is_myst_markdown_notebook((ROOT / f"{p}.md").read_text(encoding="utf-8"))]


def read_page(page: str):
    """The notebook myst-nb makes of a page (its code cells are what the cache matches on)."""
    from myst_nb.core.config import NbParserConfig
    from myst_nb.core.read import create_nb_reader
    from myst_parser.config.main import MdParserConfig

    path = ROOT / f"{page}.md"
    text = path.read_text(encoding="utf-8")
    reader = create_nb_reader(str(path), MdParserConfig(), NbParserConfig(), text)
    if reader is None:
        raise SystemExit(f"{page}.md is not a MyST notebook")
    return reader.read(text)


def execute_page(page: str, timeout: int):
    """Run one page in a fresh kernel; returns (page, notebook, seconds, error text or None)."""
    from jupyter_cache.executors.utils import single_nb_execution

    notebook = read_page(page)
    result = single_nb_execution(notebook, cwd=str((ROOT / page).parent), timeout=timeout,
                                 allow_errors=False, meta_override=True)
    return page, notebook, result.time, result.exc_string if result.err else None


def figure_texts(notebook) -> dict:
    """The texts on an executed page's figures, as templates (``"templates"``), and per
    language those that have no translation yet (``"missing"``)."""
    from cnn_course.figure_translation import GLUE_PREFIX, MIME

    templates: list[str] = []
    missing: dict[str, set[str]] = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            drawings = data.get(MIME) or data.get(GLUE_PREFIX + MIME) or {}
            templates += [t for t in drawings.get("templates", []) if t not in templates]
            for language, entry in drawings.items():
                if language != "templates":
                    missing.setdefault(language, set()).update(entry.get("missing", []))
    return {"templates": templates,
            "missing": {language: sorted(texts) for language, texts in missing.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path, help="the jupyter-cache folder the build reads")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="pages executed at once (default: one per core)")
    args = parser.parse_args(argv)

    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    timeout = int(config["execute"].get("timeout", 30))
    pages = sorted(executed_pages(config), key=lambda p: -USUAL_SECONDS.get(p, 10))
    cache = get_cache(str(args.cache))
    if args.jobs > 1:
        # Kernels side by side: one torch thread each, or they slow each other down.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Every kernel runs this at start: its figures are also drawn in the other languages.
    ipython_dir = tempfile.mkdtemp(prefix="ipython-")
    startup = Path(ipython_dir) / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-translated-figures.py").write_text(
        "from cnn_course.figure_translation import install\ninstall()\n", encoding="utf-8")
    os.environ["IPYTHONDIR"] = ipython_dir
    texts: dict[str, dict] = {}
    start = time.monotonic()
    failed = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        running = [pool.submit(execute_page, page, timeout) for page in pages]
        for done in as_completed(running):
            page, notebook, seconds, error = done.result()
            if error:
                failed.append(page)
                print(f"{page}: FAILED after {seconds:.0f} s\n{error}", file=sys.stderr)
                continue
            cache.cache_notebook_bundle(
                CacheBundleIn(notebook, str(ROOT / f"{page}.md"),
                              data={"execution_seconds": seconds}),
                check_validity=False, overwrite=True)
            texts[page] = figure_texts(notebook)
            print(f"{page}: executed in {seconds:.0f} s")
    FIGURE_TEXTS.parent.mkdir(parents=True, exist_ok=True)
    FIGURE_TEXTS.write_text(json.dumps(dict(sorted(texts.items())), indent=1,
                                       ensure_ascii=False), encoding="utf-8")
    from cnn_course.figure_translation import cjk_font

    if cjk_font() is None:
        print("note: no CJK font is installed (Debian: fonts-noto-cjk), so the translated "
              "sites show their figures in English", file=sys.stderr)
    print(f"{len(pages) - len(failed)} of {len(pages)} pages executed in "
          f"{time.monotonic() - start:.0f} s with {args.jobs} at a time")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
