"""The glossary is a Sphinx glossary, and every book page links the first use of its terms."""

from pathlib import Path

import pytest
from glossary_usage import ROOT, glossary_entries, unknown_term_links, unlinked_first_uses

PAGES = sorted(p for p in (ROOT / "book").glob("*.md") if p.name != "glossary.md")
CHINESE_TERMS = ["下采样", "局部连接", "神经元", "权重", "权值", "输入层", "隐藏层", "输出层",
                 "平移不变性", "参数量", "局部最优", "收敛", "偏导数", "饱和", "稀疏", "logits",
                 "自动求导", "学习率调度", "标签平滑", "推理", "softmax（归一化指数函数）",
                 "卷积核", "步长", "填充", "池化", "全连接层", "激活函数", "反向传播", "感受野",
                 "特征图", "权值共享"]


def test_glossary_names_are_unique_and_include_the_chinese_terms():
    names = [name.lower() for entry in glossary_entries() for name in entry.names]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    missing = [term for term in CHINESE_TERMS if term.lower() not in names]
    assert not missing, f"not in the glossary: {missing}"
    assert all(entry.english for entry in glossary_entries()), "an entry without English name"


def test_no_page_uses_the_unusual_translation_of_softmax():
    for page in [*PAGES, ROOT / "book" / "glossary.md"]:
        assert "软最大值" not in page.read_text(encoding="utf-8"), page.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_page_links_the_first_use_of_each_glossary_term(page: Path):
    problems = unlinked_first_uses(page)
    assert not problems, "\n".join(f"'{term}' first used unlinked at line {line}: {text}"
                                   for term, line, text in problems)
    assert not unknown_term_links(page), unknown_term_links(page)


def write(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page


def test_checker_reports_an_unlinked_first_use(tmp_path):
    page = write(tmp_path, "# Strides\n\nThe stride is the step.\n\nA {term}`stride` again.\n")
    assert [(term, line) for term, line, _ in unlinked_first_uses(page)] == [("stride", 3)]


def test_checker_accepts_a_link_at_first_use_plurals_and_aliases(tmp_path):
    page = write(tmp_path, "Two {term}`strides <stride>` and {term}`filters <filter>`.\n\n"
                           "Strides and kernels again; `stride` in code and $stride$ in math.\n")
    assert unlinked_first_uses(page) == []


def test_checker_takes_the_longest_name_and_skips_code_cells(tmp_path):
    page = write(tmp_path, "```{code-cell} ipython3\npooling = 1\n```\n\n"
                           "{term}`Max pooling` keeps the largest value.\n")
    assert unlinked_first_uses(page) == []
    page = write(tmp_path, "{term}`Max pooling` differs from pooling.\n")
    assert [term for term, _, _ in unlinked_first_uses(page)] == ["pooling"]


def test_checker_reads_prose_inside_admonitions_and_reports_unknown_targets(tmp_path):
    page = write(tmp_path, ":::{note}\nA kernel.\n:::\n\nA {term}`kernal`.\n")
    assert [term for term, _, _ in unlinked_first_uses(page)] == ["kernel"]
    assert unknown_term_links(page) == ["kernal"]
