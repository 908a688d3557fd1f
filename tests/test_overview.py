"""The overview page (book/00_overview.md) and its helpers, cnn_course.lessons.overview; and the
benchmark figures that the overview, the landing page (book/intro.md, helpers in
cnn_course.lessons.intro) and the instructors' page quote.

Those figures reach the prose only through ``{glue:text}`` roles. The tests run each page's
code cells that read a results file (with a stand-in for ``myst_nb.glue`` that records what
is glued), compare every glued value with the results file, computed here independently of
the course's helpers, and check that the prose types none of those numbers by hand.
"""

import contextlib
import copy
import io
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import myst_nb  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from cnn_course.lessons.intro import cifar_figures, lenet_figures  # noqa: E402
from cnn_course.lessons.overview import (  # noqa: E402
    date_span,
    diagram_stages,
    draw_lenet_diagram,
    draw_multichannel_conv,
    format_shape,
    multichannel_example,
    same_budget,
    stage_table,
    trace_stages,
)
from cnn_course.models import LeNet5, count_params  # noqa: E402
from cnn_course.summary import model_summary  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "book" / "00_overview.md"
INTRO = ROOT / "book" / "intro.md"
INSTRUCTORS = ROOT / "book" / "instructors.md"
RESULTS = ROOT / "benchmarks" / "results"
PAPER_SHAPES = {"input": (1, 28, 28), "C1": (6, 28, 28), "S2": (6, 14, 14), "C3": (16, 10, 10),
                "S4": (16, 5, 5), "flatten": (400,), "C5": (120,), "F6": (84,), "output": (10,)}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LeNet5(c1_padding=2)


@pytest.fixture(scope="module")
def digit():
    return torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_stages_come_from_the_real_forward_pass(model, digit):
    stages = trace_stages(model, digit)
    summary = model_summary(model, (1, 28, 28))
    assert [(s.name, s.shape, s.params) for s in stages[1:]] == [
        (r.name, r.output_shape, r.params) for r in summary.rows]
    # replay the forward pass by hand, layer by layer, and compare every shape
    x = digit[None]
    for stage in stages[1:]:
        x = getattr(model, stage.name)(x)
        assert tuple(x.shape[1:]) == stage.shape, stage.name
    assert torch.equal(x, model(digit[None]))
    assert sum(s.params for s in stages) == count_params(model) == count_params(LeNet5())


def test_the_diagram_shows_lenet5s_stages(model, digit):
    shown = diagram_stages(trace_stages(model, digit))
    assert {label: stage.shape for label, stage, _ in shown} == PAPER_SHAPES
    assert [label for label, _, _ in shown] == list(PAPER_SHAPES)
    steps = dict((label, made) for label, _, made in shown)
    assert steps["C1"] == "conv\n5×5\n+ ReLU" and steps["S2"] == "max pool\n2×2"
    assert steps["output"] == "linear"  # no activation after the last layer


def test_32x32_input_gives_the_same_stages_after_c1():
    unpadded = trace_stages(LeNet5(), torch.zeros(1, 1, 32, 32))
    padded = trace_stages(LeNet5(c1_padding=2), torch.zeros(1, 28, 28))
    assert [s.shape for s in unpadded[1:]] == [s.shape for s in padded[1:]]
    assert format_shape(unpadded[0].shape) == "1@32x32"


def test_trace_refuses_a_batch(model):
    with pytest.raises(ValueError, match="one image"):
        trace_stages(model, torch.zeros(2, 1, 28, 28))


def test_the_multichannel_example_agrees_with_conv2d():
    example = multichannel_example()
    assert example.x.shape == (3, 4, 4) and example.weight.shape == (2, 3, 3, 3)
    expected = F.conv2d(example.x[None], example.weight, example.bias)[0]
    assert torch.equal(example.output, expected)
    for o in range(2):  # each per-channel map is a one-channel convolution, without the bias
        for c in range(3):
            one = F.conv2d(example.x[None, c:c + 1], example.weight[o:o + 1, c:c + 1])[0, 0]
            assert torch.equal(example.per_channel[o, c], one)
    assert example.bias[0] != 0, "the figure should show a bias that changes the sum"
    for seed in range(5):  # other draws too, and whole numbers only
        other = multichannel_example(seed=seed)
        assert torch.equal(other.output, F.conv2d(other.x[None], other.weight, other.bias)[0])
        assert torch.equal(other.output, other.output.round())


def test_the_drawings_return_figures(model, digit):
    for fig in (draw_lenet_diagram(trace_stages(model, digit), digit),
                draw_lenet_diagram(trace_stages(LeNet5(), torch.zeros(1, 32, 32))),
                draw_multichannel_conv(multichannel_example())):
        assert isinstance(fig, plt.Figure) and fig.axes
        fig.canvas.draw()
        plt.close(fig)


def test_the_page_quotes_the_models_numbers(model, digit):
    text = PAGE.read_text(encoding="utf-8")
    stages = trace_stages(model, digit)
    table = stage_table(stages)
    assert f"{count_params(LeNet5()):,}" == "61,706"
    assert "61,706 parameters" in text and table.endswith("61,706")
    by_name = {s.name: s for s in stages}
    assert f"{by_name['c1'].params}" == "156" and "156 parameters" in text
    assert f"{by_name['c5'].params:,}" == "48,120" and "48,120" in text
    shapes = {format_shape(s.shape) for s in stages}
    for quoted in re.findall(r"`(\d+@\d+x\d+)`", text):  # e.g. `6@28x28`
        assert quoted in shapes, quoted


def test_the_page_links_every_chapter():
    text = PAGE.read_text(encoding="utf-8")
    for chapter in ["01_convolution", "02_activations", "03_pooling", "04_fully_connected",
                    "05_backpropagation", "06_optimizers", "07_lenet5", "08_cifar10"]:
        assert f"{{doc}}`{chapter}`" in text, chapter
    assert text.startswith("---\njupytext:") and "kernelspec:" in text


# ---- the benchmark figures the pages quote -------------------------------------------------

CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
GLUE_ROLE = re.compile(r"\{glue:text\}`([^`]+)`")


def results(name: str) -> dict:
    """A results file, read here without the course's own loader."""
    return json.loads((RESULTS / f"{name}_cpu.json").read_text(encoding="utf-8"))


def glued_from_results_files(page: Path) -> dict[str, str]:
    """Run the page's code cells that read a results file, in order, and return what they
    glue. Those cells import what they need, so that they run without the page's others."""
    glued: dict[str, str] = {}

    def record(name, value, display=True):
        assert name not in glued, f"{name} glued twice (the build warns)"
        glued[name] = value

    cells = [re.sub(r"^:\w+:.*\n", "", cell)
             for cell in CODE_CELL.findall(page.read_text(encoding="utf-8"))
             if "load_results(" in cell]
    assert cells, f"{page.name} reads no results file"
    namespace = {"__name__": "__page__"}
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setattr(myst_nb, "glue", record)
        for cell in cells:
            exec(compile(cell, str(page), "exec"), namespace)
    return glued


def prose(page: Path) -> str:
    """The page's text without front matter, code cells, roles, inline code and math."""
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    text = CODE_CELL.sub("", text)
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # other fenced blocks
    text = re.sub(r"\{[\w:-]+\}`[^`]*`", " ", text)
    text = re.sub(r"`[^`]*`|\$[^$]*\$", " ", text)
    return text


def typed_figures(text: str) -> list[str]:
    """Percentages, times in seconds or minutes, and rates typed as digits."""
    return re.findall(r"\d[\d.,]*\s*(?:%|s\b|seconds|minutes?\b|per minute)", text)


def same_budget_expected() -> dict:
    """The three versions of Chapter 8's network after the fewest epochs any of them trained."""
    runs = results("cifar10")["accuracy"]["runs"]
    chosen = {name: runs[name] for name in ("linear", "published", "relu")}
    epochs = min(len(run["test_acc"]) for run in chosen.values())
    dates = sorted(run["measured"]["date"] for run in chosen.values())
    return {"epochs": epochs,
            "acc": {name: run["test_acc"][epochs - 1] for name, run in chosen.items()},
            "params": {run["params"] for run in chosen.values()},
            "machines": {run["measured"]["machine"] for run in chosen.values()},
            "dates": dates[0] if dates[0] == dates[-1] else f"{dates[0]} – {dates[-1]}"}


def test_the_overview_quotes_chapter_8s_benchmark():
    glued = glued_from_results_files(PAGE)
    expected = same_budget_expected()
    assert len(expected["params"]) == 1 and len(expected["machines"]) == 1
    acc = expected["acc"]
    assert glued == {
        "overview_cifar_epochs": str(expected["epochs"]),
        "overview_cifar_params": f"{expected['params'].pop():,}",
        "overview_cifar_linear": f"{acc['linear']:.1%}",
        "overview_cifar_published": f"{acc['published']:.1%}",
        "overview_cifar_relu": f"{acc['relu']:.1%}",
        "overview_cifar_machine": expected["machines"].pop(),
        "overview_cifar_dates": expected["dates"],
    }
    # the words around the numbers: "Max pooling helps a lot; ReLU helps more."
    assert acc["published"] - acc["linear"] >= 0.1 and acc["relu"] > acc["published"]
    text = PAGE.read_text(encoding="utf-8")
    paragraph = next(p for p in text.split("\n\n") if "{glue:text}`overview_cifar_linear`" in p)
    assert "Max pooling helps a lot; ReLU helps more." in paragraph
    for name in glued:
        assert f"{{glue:text}}`{name}`" in paragraph, f"{name} is glued but not shown"
    # the history's figures are the 2012 paper's; nothing else is typed
    assert sorted(typed_figures(prose(PAGE))) == ["15.3%", "26.2%"]


def test_the_landing_page_quotes_the_benchmarks():
    glued = glued_from_results_files(INTRO)
    lenet = results("lenet5_mnist")["time_to_target"]
    epoch = lenet["reached"]["epoch"]
    runs = results("cifar10")["accuracy"]["runs"]
    chapter8 = [runs[name] for name in ("published", "relu", "improved")]
    dates = sorted(run["measured"]["date"] for run in chapter8)
    machines = {run["measured"]["machine"] for run in chapter8}
    assert len(machines) == 1, "the page adds up times measured on one machine"
    assert glued == {
        "intro_lenet_acc": f"{lenet['test_acc'][epoch - 1]:.2%}",
        "intro_lenet_epochs": str(epoch),
        "intro_lenet_seconds": f"{lenet['reached']['training_seconds']:.1f}",
        "intro_lenet_machine": lenet["measured"]["machine"],
        "intro_lenet_date": lenet["measured"]["date"],
        "intro_cifar_minutes": str(round(sum(run["train_seconds"] for run in chapter8) / 60)),
        "intro_cifar_epochs": "{} + {} + {}".format(*(run["epochs"] for run in chapter8)),
        "intro_cifar_machine": machines.pop(),
        "intro_cifar_dates": dates[0] if dates[0] == dates[-1] else f"{dates[0]} – {dates[-1]}",
    }
    text = INTRO.read_text(encoding="utf-8")
    assert set(GLUE_ROLE.findall(text)) == set(glued), "glue roles and glued values differ"
    assert typed_figures(prose(INTRO)) == [], "a figure typed in the landing page's prose"


def test_the_instructors_page_quotes_the_grading_benchmark():
    glued = glued_from_results_files(INSTRUCTORS)
    grading = results("grading")
    sandboxed, plain = grading["runs"][:2]
    assert glued == {
        "grading_date": sandboxed["measured"]["date"],
        "grading_machine": sandboxed["measured"]["machine"],
        "grading_load": f"{sandboxed['measured']['load_average_1_5_15'][0]:.2f}",
        "grading_jobs": str(grading["jobs"]),
        "grading_copies": str(sandboxed["copies"]),
        "grading_sandbox_seconds": str(sandboxed["seconds"]),
        "grading_sandbox_rate": str(sandboxed["notebooks_per_minute"]),
        "grading_sandbox_per_notebook": str(sandboxed["seconds_per_notebook"]),
        "grading_plain_seconds": str(plain["seconds"]),
        "grading_plain_rate": str(plain["notebooks_per_minute"]),
        "grading_overhead": str(sandboxed["sandbox_overhead_seconds"]),
        "grading_one_fastest": f"{min(sandboxed['one_notebook_seconds']):.0f}",
        "grading_one_slowest": f"{max(sandboxed['one_notebook_seconds']):.0f}",
    }
    text = INSTRUCTORS.read_text(encoding="utf-8")
    speed = text[text.index("## Speed"):text.index("## Checking one notebook")]
    assert set(GLUE_ROLE.findall(speed)) == set(glued), "glue roles and glued values differ"
    # the figures of the benchmark are glued; only the earlier release's, dated, are typed
    typed = typed_figures(prose(INSTRUCTORS)[prose(INSTRUCTORS).index("## Speed"):])
    assert typed == ["8.3 per minute"], typed


def cifar_accuracy_part() -> dict:
    """A small made-up "accuracy" part of the CIFAR-10 results, in the file's layout."""
    def run(acc: list[float], date: str = "2026-11-23") -> dict:
        return {"params": 100, "epochs": len(acc), "test_acc": acc, "train_seconds": 60.0,
                "measured": {"machine": "CPU: test", "date": date}}
    return {"runs": {"linear": run([0.3, 0.4]), "published": run([0.5, 0.6, 0.7], "2026-12-05"),
                     "relu": run([0.55, 0.65, 0.75]), "improved": run([0.8, 0.9, 0.95])}}


def test_same_budget_compares_after_the_fewest_epochs():
    budget = same_budget(cifar_accuracy_part())
    assert budget.epochs == 2
    assert budget.test_acc == {"linear": 0.4, "published": 0.6, "relu": 0.65}
    assert budget.trained == {"linear": 2, "published": 3, "relu": 3}
    assert (budget.params, budget.machine) == (100, "CPU: test")
    assert budget.dates == "2026-11-23 – 2026-12-05"
    assert date_span(["2026-11-23", "2026-11-23"]) == "2026-11-23"


@pytest.mark.parametrize("change, message", [
    (lambda part: part["runs"].pop("linear"), r"lack the run\(s\) \['linear'\]"),
    (lambda part: part["runs"]["relu"].update(params=101), "same parameter count"),
    (lambda part: part["runs"]["relu"]["measured"].update(machine="GPU"), "different machines"),
])
def test_same_budget_refuses_runs_it_cannot_compare(change, message):
    part = copy.deepcopy(cifar_accuracy_part())
    change(part)
    with pytest.raises(ValueError, match=message):
        same_budget(part)


def test_the_landing_pages_figures_and_their_refusals():
    cifar = {"accuracy": cifar_accuracy_part()}
    assert cifar_figures(cifar) == {"intro_cifar_minutes": "3", "intro_cifar_epochs": "3 + 3 + 3",
                                    "intro_cifar_machine": "CPU: test",
                                    "intro_cifar_dates": "2026-11-23 – 2026-12-05"}
    del cifar["accuracy"]["runs"]["improved"]
    with pytest.raises(ValueError, match=r"lack the run\(s\) \['improved'\]"):
        cifar_figures(cifar)
    with pytest.raises(ValueError, match="run `python benchmarks/lenet5_mnist.py`"):
        lenet_figures(None)
    lenet = {"time_to_target": {"test_acc": [0.98, 0.99], "reached": {"epoch": 2,
                                "training_seconds": 7.25}, "measured": {"machine": "CPU: test",
                                                                        "date": "2026-11-23"}}}
    assert lenet_figures(lenet)["intro_lenet_acc"] == "99.00%"
    assert lenet_figures(lenet)["intro_lenet_seconds"] == "7.2"
    lenet["time_to_target"]["reached"] = None
    with pytest.raises(ValueError, match="never reached its target"):
        lenet_figures(lenet)
