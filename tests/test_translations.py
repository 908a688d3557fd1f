"""The Chinese site: every English message of the explanation pages has a current translation
that keeps its markup, the built Chinese pages show those translations, and every page links
to itself in the other language.

The message templates (_build/gettext) and the Chinese site (_build/html/zh) come from
`bash scripts/build-book.sh`.
"""

from __future__ import annotations

import html as html_lib
import os
import re
import shutil
from pathlib import Path

import polib
import pytest

from cnn_course.tools.translations import (
    LOCALES,
    POT_DIR,
    TRANSLATED_FOLDERS,
    catalog_problems,
    markup_differences,
)

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("CNN_COURSE_SITE", ROOT / "_build" / "html"))
ZH = HTML / "zh"


# ---- the check itself, on small catalogs --------------------------------------------------

def _catalog(path: Path, entries: list[tuple[str, str]], fuzzy: tuple[str, ...] = ()) -> None:
    catalog = polib.POFile()
    for msgid, msgstr in entries:
        catalog.append(polib.POEntry(msgid=msgid, msgstr=msgstr,
                                     flags=["fuzzy"] if msgid in fuzzy else []))
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog.save(str(path))


def test_untranslated_fuzzy_and_broken_messages_are_named(tmp_path):
    english = ["A {term}`kernel` slides.", "Stride $s$ skips.", "Padding adds zeros.",
               "Use `F.conv2d`.", "Pooling."]
    _catalog(tmp_path / "pot" / "book" / "p.pot", [(m, "") for m in english])
    _catalog(tmp_path / "locales" / "zh_CN" / "LC_MESSAGES" / "book" / "p.po", [
        ("A {term}`kernel` slides.", "{term}`卷积核 <kernel>` 滑动。"),  # fine
        ("Stride $s$ skips.", "步长 $t$ 跳过。"),                          # math changed
        ("Padding adds zeros.", "填充补零。"),                              # fuzzy
        ("Use `F.conv2d`.", ""),                                           # empty
    ], fuzzy=("Padding adds zeros.",))                                     # "Pooling." missing
    problems = catalog_problems(tmp_path / "pot", "zh_CN", tmp_path / "locales")
    found = {(p.message, p.reason.split(" (")[0]) for p in problems}
    assert found == {
        ("Stride $s$ skips.", "its math differs from the English"),
        ("Padding adds zeros.", "the English changed since it was translated"),
        ("Use `F.conv2d`.", "not translated"),
        ("Pooling.", "not translated"),
    }
    assert all(p.page == "book/p" for p in problems)


@pytest.mark.site
def test_editing_one_english_paragraph_is_caught(tmp_path):
    """The real catalogs against the real templates, with one paragraph of Chapter 1 edited."""
    if not (POT_DIR / "book" / "01_convolution.pot").exists():
        pytest.fail("no message templates: run `bash scripts/build-book.sh` first")
    shutil.copytree(POT_DIR / "book", tmp_path / "book")
    template = polib.pofile(str(tmp_path / "book" / "01_convolution.pot"))
    paragraph = next(e for e in template if len(e.msgid) > 200)
    paragraph.msgid = paragraph.msgid.replace(" ", "  ", 1)  # the smallest edit: one space
    template.save()
    problems = catalog_problems(tmp_path, "zh_CN", LOCALES)
    assert [(p.page, p.message, p.reason) for p in problems] == [
        ("book/01_convolution", paragraph.msgid, "not translated")]


@pytest.mark.parametrize("english, translated, expected", [
    ("See {doc}`Chapter 5 <05_backpropagation>`.", "见{doc}`第 5 章 <05_backpropagation>`。", []),
    ("See {doc}`Chapter 5 <05_backpropagation>`.", "见{doc}`第 5 章 <04_fully_connected>`。",
     ["the role {doc}05_backpropagation is missing"]),
    ("A {term}`kernel`.", "一个卷积核。", ["its roles differ"]),
    ("Read [the notebook](../notebooks/01.ipynb).", "阅读[练习](../notebooks/02.ipynb)。",
     ["its link target differs from the English"]),
    ("Got {glue:text}`acc`.", "得到 {glue:text}`accuracy`。", ["the role {glue:text}`acc`"]),
])
def test_markup_that_the_build_reads_must_survive(english, translated, expected):
    found = markup_differences(english, translated)
    assert len(found) == len(expected), found
    for problem, start in zip(found, expected, strict=True):
        assert problem.startswith(start), (problem, start)


# ---- the real catalogs and the built Chinese site -------------------------------------------

@pytest.mark.site
def test_every_message_of_the_pages_has_a_current_translation():
    problems = catalog_problems()
    listed = "\n".join(map(str, problems[:40]))
    assert not problems, (f"{len(problems)} message(s) need a translation (python -m "
                          f"cnn_course.tools.translations check lists them all):\n{listed}")


def _page_text(path: Path) -> str:
    page = path.read_text(encoding="utf-8")
    article = page[page.find("<article"):page.rfind("</article>")]
    article = re.sub(r"<(script|style)\b.*?</\1>", " ", article, flags=re.S)
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", article)))


def _translated_pages() -> list[str]:
    return sorted(p.relative_to(POT_DIR).with_suffix("").as_posix()
                  for folder in TRANSLATED_FOLDERS for p in (POT_DIR / folder).glob("*.pot"))


@pytest.mark.site
@pytest.mark.parametrize("page", ["book/01_convolution", "book/intro", "book/glossary",
                                  "book/07_lenet5"])
def test_chinese_pages_show_their_translations(page):
    """Sphinx silently keeps the English of a translation it cannot use (one that parses as
    another kind of element, such as "1. 卷积" read as a list): no English sentence of the
    page may be left on the Chinese page, and its title must be the translated one."""
    if not (ZH / f"{page}.html").exists():
        pytest.fail("no Chinese site: run `bash scripts/build-book.sh` first")
    text = _page_text(ZH / f"{page}.html")
    catalog = {e.msgid: e.msgstr
               for e in polib.pofile(str(LOCALES / "zh_CN" / "LC_MESSAGES" / f"{page}.po"))}
    plain = [m for m, t in catalog.items()
             if len(m) > 40 and not re.search(r"[`${}\[\]*\\<]", m) and m != t]
    assert plain, page
    left = [m for m in plain if m in text]
    assert not left, f"{page}: English left on the Chinese page: {left[:3]}"
    title = re.search(r"<h1>(.*?)<a", (ZH / f"{page}.html").read_text(encoding="utf-8"), re.S)
    assert title and re.search(r"[\u4e00-\u9fff]", title.group(1)), (page, title)


@pytest.mark.site
def test_every_page_links_to_itself_in_the_other_language():
    from widget_harness import toc_pages

    assert _translated_pages(), "no message templates: run `bash scripts/build-book.sh` first"
    for page in toc_pages():
        for site, other in ((HTML, "zh-CN"), (ZH, "en")):
            path = site / f"{page}.html"
            link = re.search(r'<nav class="language-switch"[^>]*><a href="([^"]+)" '
                             rf'hreflang="{other}"', path.read_text(encoding="utf-8"))
            assert link, f"{path.relative_to(HTML)} has no link to its {other} page"
            target = (path.parent / link.group(1)).resolve()
            assert target.exists(), f"{path.relative_to(HTML)} links to missing {target}"
            assert target.name == path.name


# ---- the notebooks: one catalog per chapter, keyed by cell id -----------------------------

def test_every_markdown_cell_of_the_notebooks_has_a_current_translation():
    from cnn_course.tools.notebook_catalogs import problems

    found = problems("zh_CN")
    listed = "\n".join(map(str, found[:20]))
    assert not found, (f"{len(found)} notebook cell(s) need a translation (python -m "
                       f"cnn_course.tools.translations check lists them all):\n{listed}")


def test_an_edited_notebook_cell_is_caught_and_update_keeps_its_old_translation(tmp_path):
    import nbformat

    from cnn_course.tools import notebook_catalogs

    solutions, locales = tmp_path / "solutions", tmp_path / "locales"
    solutions.mkdir()
    notebook = nbformat.read(ROOT / "solutions" / "03_pooling.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if c.cell_type == "markdown" and len(c.source) > 200)
    shutil.copytree(LOCALES / "zh_CN" / "notebooks", locales / "zh_CN" / "notebooks")
    old_translation = _cell_translation(locales, "03_pooling", cell.id)
    cell.source = cell.source.replace(" ", "  ", 1)  # one more space
    nbformat.write(notebook, solutions / "03_pooling.ipynb")

    found = notebook_catalogs.problems("zh_CN", solutions, locales)
    assert [(p.page, p.reason) for p in found] == [
        ("notebooks/03_pooling", f"cell {cell.id}: the English changed since it was translated")]
    # Until it is revised, the translated notebook keeps that cell in English.
    version = notebook_catalogs.translated(notebook, "03_pooling", "zh_CN", locales)
    assert next(c for c in version.cells if c.get("id") == cell.id).source == cell.source

    notebook_catalogs.update("zh_CN", solutions, locales)
    entry = next(e for e in polib.pofile(str(locales / "zh_CN" / "notebooks" / "03_pooling.po"))
                 if e.msgctxt == cell.id)
    assert entry.msgid == cell.source and "fuzzy" in entry.flags
    assert entry.msgstr == old_translation and entry.previous_msgid != cell.source


def _cell_translation(locales: Path, chapter: str, cell_id: str) -> str:
    catalog = polib.pofile(str(locales / "zh_CN" / "notebooks" / f"{chapter}.po"))
    return next(e.msgstr for e in catalog if e.msgctxt == cell_id)


@pytest.mark.parametrize("folder", ["notebooks", "solutions"])
def test_chinese_notebooks_share_every_code_cell_with_the_english_ones(folder):
    import nbformat

    english = sorted((ROOT / folder).glob("*.ipynb"))
    assert english
    for path in english:
        chinese = nbformat.read(ROOT / folder / "zh_CN" / path.name, as_version=4)
        original = nbformat.read(path, as_version=4)
        assert chinese.metadata["language"] == "zh_CN"
        assert [c.source for c in chinese.cells if c.cell_type == "code"] == \
            [c.source for c in original.cells if c.cell_type == "code"], path.name
        markdown = [c.source for c in chinese.cells if c.cell_type == "markdown"]
        assert all(re.search(r"[\u4e00-\u9fff]", text) for text in markdown), path.name


@pytest.mark.site
@pytest.mark.parametrize("folder", ["notebooks", "solutions"])
def test_chinese_site_shows_the_notebooks_in_chinese_and_launches_them(folder):
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    repository = config["repository"]["url"].removeprefix("https://github.com/")
    for path in sorted((ROOT / folder).glob("*.ipynb")):
        page = ZH / folder / f"{path.stem}.html"
        if not page.exists():
            pytest.fail("no Chinese site: run `bash scripts/build-book.sh` first")
        html = page.read_text(encoding="utf-8")
        title = re.search(r"<h1>(.*?)<a", html, re.S)
        assert title and re.search(r"[\u4e00-\u9fff]", title.group(1)), (page, title)
        # The Chinese notebook (learner's or solution) opens in Colab and Binder.
        assert (f"colab.research.google.com/github/{repository}/blob/"
                f"{config['repository']['branch']}/{folder}/zh_CN/{path.name}") in html
        assert f"urlpath=tree/{folder}/zh_CN/{path.name}" in html
        if folder == "solutions":  # the stored outputs' passing verdicts, in Chinese
            verdicts = re.findall(r"✅ \w+: [^\n<]*", html)
            assert verdicts and all(re.search(r"[\u4e00-\u9fff]", v) for v in verdicts), \
                (page, verdicts[:3])
    chapter = (ZH / "book" / "03_pooling.html").read_text(encoding="utf-8")
    assert "notebooks/zh_CN/03_pooling.ipynb" in chapter


@pytest.mark.site
def test_every_text_on_the_pages_figures_has_a_current_translation():
    from cnn_course.tools import message_catalogs

    found = message_catalogs.figure_problems("zh_CN")
    assert not found, "\n".join(map(str, found[:40])) + (
        "\nrun: python -m cnn_course.tools.translations update, then translate them")


@pytest.mark.site
@pytest.mark.parametrize("page", ["book/intro", "book/06_optimizers", "book/08_cifar10"])
def test_chinese_pages_show_figures_drawn_in_chinese(page):
    """Same executed pages, other pictures: every figure with words on it is drawn again in
    Chinese (an image the English page does not have), the others are shared."""
    def images(html: Path) -> list[str]:
        if not html.exists():
            pytest.fail("no site: run `bash scripts/build-book.sh` first")
        return re.findall(r'<img[^>]+src="[./]*(_images/[^"]+)"', html.read_text("utf-8"))

    english = images(ROOT / "_build" / "html" / f"{page}.html")
    chinese = images(ZH / f"{page}.html")
    assert english and len(chinese) == len(english)
    assert set(chinese) - set(english), f"{page}: the Chinese page shows the English figures"
