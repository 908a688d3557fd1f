"""The page for readers of Chinese-language tutorials (book/from_chinese_tutorials.md).

Its prose takes every count, accuracy and time from ``{glue:text}`` roles, whose values its
code cells compute or read from the benchmark results files. These tests run the page's code
cells (with a stand-in for ``myst_nb.glue`` that records what is glued), check the glued
values against the course's own arithmetic and the results files, check that the prose types
none of those numbers by hand, and check that every correction keeps its section.
"""

import contextlib
import io
import re
from pathlib import Path

import myst_nb
import pytest

from cnn_course.arith import conv_output_size, conv_params
from cnn_course.models import LeNet5, c3_table_params, count_params
from cnn_course.tools.benchmark_results import load_results

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "book" / "from_chinese_tutorials.md"

CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
GLUE_ROLE = re.compile(r"\{glue:text\}`([^`]+)`")
DOC_ROLE = re.compile(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`")
LABEL = re.compile(r"^\(([\w-]+)\)=\s*$", re.M)

#: every correction: its label, the chapters that teach it, the glued values it must show,
#: and words that must appear in its section
CORRECTIONS = {
    "zh-lenet-parameters": (["07_lenet5", "01_convolution"],
                            ["wrong_c3", "wrong_total", "full_c3", "total", "paper_c3"],
                            ["conv_params", "count_params(LeNet5())", "c3_table_params()"]),
    "zh-no-activation": (["02_activations", "08_cifar10"],
                         ["cifar_epochs", "cifar_published", "cifar_relu", "cifar_linear",
                          "cifar_machine", "cifar_date"],
                         ['load_results("cifar10", "cpu")', "same_budget(", "linear map",
                          "max pooling", "average pooling"]),
    "zh-mnist-28": (["07_lenet5", "04_fully_connected"],
                    ["per_image_28", "fc1_inputs", "batch25_rows"],
                    ["x.view(-1, 16 * 5 * 5)", "except NameError", "except RuntimeError",
                     "import torch.nn.functional as F", "padding=2", "LeNet5(c1_padding=2)",
                     "F.pad("]),
    "zh-sgd-lr": (["06_optimizers", "07_lenet5"],
                  ["sgd_final", "sgd_seconds", "sgd_machine", "sgd_date", "fast_final",
                   "fast_seconds"],
                  ['load_results("lenet5_mnist", "cpu")', "lr=0.001", "batches of 64"]),
    "zh-keras-kernels": (["01_convolution"], [],
                         ["Conv2D(16, (3, 3))", "3 convolution kernels",
                          "nn.Conv2d(in_channels, 16, 3)", "weight.shape"]),
    "zh-flatten-size": (["04_fully_connected"], ["flat_size", "one_map"],
                        ["32 \\times 32 \\times 10", "flatten(1)"]),
    "zh-softmax-largest": (["02_activations", "05_backpropagation"], [],
                           ["closest to 0", "argmax", "torch.softmax", "log_softmax"]),
    "zh-padding-purpose": (["01_convolution"], [],
                           ["divided by the stride", "conv_output_size", '"same"', "border"]),
}

#: the map must name these topics, and link every one of these pages
TOPICS = ["卷积", "卷积核", "步长", "填充", "感受野", "特征图", "权值共享", "局部连接",
          "激活函数", "ReLU", "sigmoid", "tanh", "池化", "下采样", "全连接层", "展平", "softmax",
          "归一化指数函数", "交叉熵", "反向传播", "偏导数", "链式法则", "梯度下降", "学习率",
          "动量", "Adam", "LeNet-5", "CIFAR-10", "过拟合", "数据增强", "参数量"]
MAP_PAGES = ["01_convolution", "02_activations", "03_pooling", "04_fully_connected",
             "05_backpropagation", "06_optimizers", "07_lenet5", "08_cifar10", "glossary"]


def page_text() -> str:
    return PAGE.read_text(encoding="utf-8")


def prose(text: str) -> str:
    """The page without front matter, code cells, glue and doc roles, inline code or labels."""
    text = text.split("\n---\n", 1)[1]
    text = CODE_CELL.sub("", text)
    text = GLUE_ROLE.sub(" ", text)
    text = DOC_ROLE.sub(" ", text)
    text = re.sub(r"`[^`]*`", " ", text)
    return LABEL.sub("", text)


def sections(text: str) -> dict[str, str]:
    """Each labelled section's text, from its label to the next label or level-2 heading."""
    found = {}
    for match in LABEL.finditer(text):
        rest = text[match.end():]
        end = re.search(r"^\([\w-]+\)=\s*$|^## ", rest, re.M)
        found[match.group(1)] = rest[:end.start()] if end else rest
    return found


@pytest.fixture(scope="module")
def executed():
    """Run the page's code cells in order, in one namespace; return what they glued and
    printed."""
    glued = {}

    def record(name, value, display=True):
        assert name not in glued, f"{name} glued twice (the build warns)"
        glued[name] = value

    cells = [re.sub(r"^:\w+:.*\n", "", cell) for cell in CODE_CELL.findall(page_text())]
    namespace = {"__name__": "__page__"}
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(myst_nb, "glue", record)
        for cell in cells:
            exec(compile(cell, str(PAGE), "exec"), namespace)
    return glued, printed.getvalue()


def test_the_page_runs_as_a_notebook():
    text = page_text()
    assert text.startswith("---\njupytext:") and "kernelspec:" in text.split("\n---\n")[0]
    assert len(CODE_CELL.findall(text)) >= 10


def test_the_map_names_every_topic_and_links_every_chapter():
    text = page_text()
    table = text[text.index("## Where each topic is taught"):text.index("## Errors that circulate")]
    missing = [topic for topic in TOPICS if topic not in table]
    assert missing == [], f"the map does not mention {missing}"
    linked = set(DOC_ROLE.findall(table))
    assert set(MAP_PAGES) <= linked, f"the map does not link {set(MAP_PAGES) - linked}"


def test_every_linked_page_exists():
    for target in set(DOC_ROLE.findall(page_text())):
        assert (PAGE.parent / f"{target}.md").exists(), f"{{doc}} link to a missing {target}"


@pytest.mark.parametrize("label", CORRECTIONS)
def test_every_error_has_its_section(label):
    found = sections(page_text())
    assert label in found, f"the section ({label})= is missing"
    section = found[label]
    chapters, keys, words = CORRECTIONS[label]
    assert re.search(r"^### ", section, re.M), f"{label} has no heading"
    for lead in ("**What circulates.**", "**What is right.**", "**Where it is taught.**"):
        assert lead in section, f"{label} lacks {lead}"
    assert "**Why" in section, f"{label} does not say why"
    links = DOC_ROLE.findall(section.split("**Where it is taught.**")[1])
    assert set(chapters) <= set(links), f"{label} must point to {chapters}"
    shown = GLUE_ROLE.findall(section)
    assert set(keys) <= set(shown), f"{label} must show {set(keys) - set(shown)}"
    for word in words:
        assert word in section, f"{label} lacks {word!r}"
    assert CODE_CELL.search(section), f"{label} computes nothing"


def test_every_glue_role_has_a_value(executed):
    glued, _ = executed
    used = set(GLUE_ROLE.findall(page_text()))
    assert used - set(glued) == set(), "glue roles without a glued value"
    assert set(glued) - used == set(), "glued values that the page never shows"
    assert all(isinstance(value, str) for value in glued.values())


def test_the_lenet_counts_agree_with_pytorch(executed):
    glued, printed = executed
    full_c3 = 6 * 16 * 5 * 5 + 16
    one_grid_c3 = 16 * 5 * 5 + 16
    total = count_params(LeNet5())
    assert full_c3 == conv_params(6, 16, 5) == 2416 and one_grid_c3 == 416
    assert total == 61706 and total - full_c3 + one_grid_c3 == 59706
    assert c3_table_params() == 1516
    assert (glued["full_c3"], glued["wrong_c3"], glued["total"], glued["wrong_total"],
            glued["paper_c3"], glued["c3_gap"]) == ("2,416", "416", "61,706", "59,706",
                                                    "1,516", "2,000")
    for number in ("2,416", "416", "61,706", "59,706", "1,516"):
        assert number in printed


def test_the_shape_error_numbers_and_messages(executed):
    glued, printed = executed
    sizes = [28]
    for kernel, stride in ((5, 1), (2, 2), (5, 1), (2, 2)):
        sizes.append(conv_output_size(sizes[-1], kernel, stride=stride))
    assert glued["sizes_28"] == " → ".join(map(str, sizes)) == "28 → 24 → 12 → 8 → 4"
    assert (glued["per_image_28"], glued["fc1_inputs"]) == ("256", "400")
    assert (glued["batch4_values"], glued["batch25_values"], glued["batch25_rows"]) == (
        "1,024", "6,400", "16")
    assert "NameError: name 'F' is not defined" in printed
    assert "RuntimeError: shape '[-1, 400]' is invalid for input of size 1024" in printed
    assert "25 images in, scores of shape (16, 10)" in printed
    assert "ValueError: Expected input batch_size (16) to match target batch_size (25)" in printed
    assert printed.count("(4, 10)") == 2  # both fixes give one row of scores per image


def test_the_flatten_kernel_softmax_and_padding_examples(executed):
    glued, printed = executed
    assert (glued["flat_size"], glued["one_map"]) == (f"{32 * 32 * 10:,}", "1024")
    assert glued["flat_size"] == "10,240" and "flattened: (1, 10240)" in printed
    assert "weight of shape (16, 3, 3, 3): 16 kernels" in printed
    assert "predicted class: 2 | closest to 0: 1" in printed
    for padding, side in ((0, 24), (2, 28), ("'same'", 28)):
        assert f"padding={padding}: output {side}x{side}" in printed


def test_the_cifar_numbers_come_from_the_results_file(executed):
    """The three versions are compared after the same number of epochs: the fewest any of
    them trained for (computed here without the course's helper)."""
    glued, printed = executed
    results = load_results("cifar10", "cpu")
    runs = {name: results["accuracy"]["runs"][name] for name in ("linear", "published", "relu")}
    tutorial = results["tutorial"]
    epochs = min(len(run["test_acc"]) for run in runs.values())
    after = {name: run["test_acc"][epochs - 1] for name, run in runs.items()}
    (machine,) = {run["measured"]["machine"] for run in runs.values()}
    (params,) = {run["params"] for run in runs.values()}
    dates = sorted(run["measured"]["date"] for run in runs.values())
    expected = {
        "cifar_params": f"{params:,}",
        "cifar_epochs": str(epochs),
        "cifar_linear": f"{after['linear']:.1%}",
        "cifar_published": f"{after['published']:.1%}",
        "cifar_relu": f"{after['relu']:.1%}",
        "cifar_machine": machine,
        "cifar_date": dates[0] if dates[0] == dates[-1] else f"{dates[0]} – {dates[-1]}",
        "cifar_tutorial_epochs": str(tutorial["epochs"]),
        "cifar_tutorial_without": f"{tutorial['runs']['published']['test_acc'][-1]:.1%}",
        "cifar_tutorial_relu": f"{tutorial['runs']['relu']['test_acc'][-1]:.1%}",
    }
    assert {key: glued[key] for key in expected} == expected
    assert f"test accuracy after {epochs} epochs" in printed
    # the words around the numbers: max pooling "matters a lot", ReLU "adds more", and under
    # the tutorial's recipe the difference "does not show"
    assert after["published"] - after["linear"] >= 0.1 and after["relu"] > after["published"]
    assert (tutorial["runs"]["published"]["test_acc"][-1]
            > tutorial["runs"]["relu"]["test_acc"][-1])
    section = sections(page_text())["zh-no-activation"]
    assert "it matters a lot; ReLU after every layer adds more" in section
    sentence = next(line for line in section.splitlines()
                    if line.startswith("After {glue:text}`cifar_epochs` epochs each"))
    for key in ("cifar_linear", "cifar_published", "cifar_relu", "cifar_machine", "cifar_date"):
        assert f"{{glue:text}}`{key}`" in sentence, key


def test_the_sgd_numbers_come_from_the_results_file(executed):
    glued, _ = executed
    results = load_results("lenet5_mnist", "cpu")
    slow, target, seeds = results["tutorial"], results["time_to_target"], results["seeds"]
    assert all(part in slow["recipe"] for part in ("lr 0.001", "no momentum", "batch 64"))
    fast_epochs = target["reached"]["epoch"]
    expected = {
        "sgd_machine": slow["measured"]["machine"],
        "sgd_date": slow["measured"]["date"],
        "sgd_epochs": str(len(slow["test_acc"])),
        "sgd_final": f"{slow['test_acc'][-1]:.2%}",
        "sgd_seconds": f"{slow['training_seconds'][-1]:.1f}",
        "sgd_at_fast_epochs": f"{slow['test_acc'][fast_epochs - 1]:.2%}",
        "fast_epochs": str(fast_epochs),
        "fast_final": f"{target['test_acc'][-1]:.2%}",
        "fast_seconds": f"{target['reached']['training_seconds']:.1f}",
        "fast_seed_mean": f"{seeds['mean']:.2%}",
        "fast_seeds": str(len(seeds["final_test_acc"])),
    }
    assert {key: glued[key] for key in expected} == expected


def test_the_prose_types_no_computed_number(executed):
    """Counts, accuracies and times reach the prose only through glue roles."""
    glued, _ = executed
    text = prose(page_text())
    assert not re.findall(r"\d+(?:\.\d+)?\s*%", text), "a percentage typed in the prose"
    assert not re.findall(r"\d{1,3}(?:,\d{3})+", text), "a large number typed in the prose"
    assert not re.findall(r"\d+(?:\.\d+)?\s+s\b", text), "a time typed in the prose"
    for key, value in glued.items():
        for number in re.findall(r"\d[\d,.]*\d", value):
            if len(number.replace(",", "").replace(".", "")) >= 3:
                for form in {number, number.replace(",", "")}:
                    typed = re.search(rf"(?<![\d,.]){re.escape(form)}(?![\d,]|\.\d)", text)
                    assert typed is None, f"{form} ({key}) is typed in the prose"
