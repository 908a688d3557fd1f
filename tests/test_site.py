"""The built site (run scripts/build-book.sh first; scripts/test.sh does)."""

import os
import re
from pathlib import Path

import pytest
import yaml
from widget_harness import toc_pages

pytestmark = pytest.mark.site

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("CNN_COURSE_SITE", ROOT / "_build" / "html"))


@pytest.fixture(scope="module")
def site() -> Path:
    if not (HTML / "index.html").exists():
        pytest.fail("no built site: run `bash scripts/build-book.sh` first")
    return HTML


@pytest.mark.parametrize("page", toc_pages())
def test_page_exists_without_errors(site, page):
    html = (site / f"{page}.html").read_text(encoding="utf-8")
    assert "output traceback" not in html and "output error" not in html, f"{page} shows an error"
    assert "Traceback (most recent call last)" not in html, f"{page} shows a traceback"
    for image in re.findall(r'<img[^>]+src="([^"]+)"', html):
        if image.startswith(("http:", "https:", "data:")):
            continue
        assert (site / page).parent.joinpath(image).resolve().exists(), f"{page}: missing {image}"


def test_chapter_pages_embed_their_figures(site):
    for page in toc_pages():
        if page.startswith(("book/0", "solutions/")):
            html = (site / f"{page}.html").read_text(encoding="utf-8")
            assert re.search(r'<img[^>]+src="[^"]*\.png"', html), f"{page} has no figure"


#: Chapters that are read only, without an exercise notebook.
READING_ONLY = {"00_overview"}


def test_every_chapter_has_page_exercise_and_solution():
    files = toc_pages()
    chapters = [f.split("/")[1] for f in files if f.startswith("book/0")]
    assert chapters and READING_ONLY <= set(chapters)
    chapters = [chapter for chapter in chapters if chapter not in READING_ONLY]
    for chapter in chapters:
        assert f"notebooks/{chapter}" in files and f"solutions/{chapter}" in files, chapter


def test_internal_links_resolve(site):
    """Every relative link on every page points at a file that exists, and at an anchor that
    exists on that page."""
    problems = []
    for page in site.rglob("*.html"):
        if "_static" in page.parts:
            continue
        html = page.read_text(encoding="utf-8")
        for href in re.findall(r'<a [^>]*href="([^"]+)"', html):
            if href.startswith(("http:", "https:", "mailto:", "javascript:", "data:")):
                continue
            path, _, anchor = href.partition("#")
            target = (page.parent / path).resolve() if path else page
            if not target.exists():
                problems.append(f"{page.relative_to(site)} -> {href}")
            elif anchor and target.suffix == ".html":
                text = target.read_text(encoding="utf-8")
                if f'id="{anchor}"' not in text:
                    problems.append(f"{page.relative_to(site)} -> {href} (no such anchor)")
    assert problems == []


@pytest.mark.parametrize("page", [p for p in toc_pages()
                                  if p.startswith(("notebooks/", "solutions/"))])
def test_notebook_pages_offer_download_colab_and_binder(site, page):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repository = config["repository"]["url"].removeprefix("https://github.com/")
    branch = config["repository"]["branch"]
    html = (site / f"{page}.html").read_text(encoding="utf-8")
    assert (f'href="https://colab.research.google.com/github/{repository}/blob/{branch}/'
            f'{page}.ipynb"') in html
    assert f'href="https://mybinder.org/v2/gh/{repository}/{branch}?urlpath=tree/{page}.ipynb"' \
        in html
    download = re.search(rf'href="([^"]*_sources/{page}\.ipynb)"', html)
    assert download and (site / page).parent.joinpath(download.group(1)).resolve().exists()


@pytest.mark.parametrize("page", [p for p in toc_pages() if p.startswith("book/")])
def test_explanation_pages_launch_their_exercise_notebook_or_nothing(site, page):
    """Colab cannot open a MyST Markdown page: its buttons open the chapter's notebook."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repository = config["repository"]["url"].removeprefix("https://github.com/")
    branch = config["repository"]["branch"]
    html = (site / f"{page}.html").read_text(encoding="utf-8")
    assert not re.search(r'href="https://(colab\.research\.google\.com|mybinder\.org)[^"]*\.md"',
                         html), f"{page}: a launch button opens a Markdown file"
    notebook = f"notebooks/{page.removeprefix('book/')}.ipynb"
    if (ROOT / notebook).exists():
        assert (f'href="https://colab.research.google.com/github/{repository}/blob/{branch}/'
                f'{notebook}"') in html
        assert f"urlpath=tree/{notebook}" in html


def test_every_notebook_starts_with_the_colab_install_cell():
    import nbformat

    for path in sorted((ROOT / "solutions").glob("*.ipynb")) + sorted(
            (ROOT / "notebooks").glob("*.ipynb")):
        first_code = next(c for c in nbformat.read(path, as_version=4).cells
                          if c.cell_type == "code")
        assert 'find_spec("cnn_course") is None' in first_code.source, path.name
        assert "%pip install" in first_code.source, path.name
