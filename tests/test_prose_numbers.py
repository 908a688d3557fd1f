"""The figures that the prose of the solution notebooks quotes agree with what was measured.

The site shows each solution notebook with its stored outputs. So every percentage and every
time ("9.1 s", "12 seconds", "3 minutes") in a markdown cell must be one of these:

- a figure that the notebook's stored outputs print, written the same way;
- a benchmark's figure, listed in :data:`FROM_RESULTS` with the results-file key it must equal,
  in a cell that also names the machine and the date of that measurement;
- a figure that does not come from training (a target the notebook asserts, a recipe
  setting), listed in :data:`NOT_MEASURED` with a check of where it comes from.

A new training run or benchmark run that changes a quoted number makes this test fail until
the prose is updated.

The book pages of the two chapters run their code at every build, so their prose glues every
measured figure from the results files (``{glue:text}``); the only figures typed into their
prose are the ones listed in :data:`PAGE_FIGURES`, which do not come from training.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
import torch
from glossary_usage import prose

from cnn_course import training
from cnn_course.data import CIFAR10_CLASSES
from cnn_course.lessons.pooling import detections_kept
from cnn_course.tools.benchmark_results import load_results

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {path.stem: path for path in sorted((ROOT / "solutions").glob("0[1-8]_*.ipynb"))}
PAGES = {name: ROOT / "book" / f"{name}.md" for name in ("07_lenet5", "08_cifar10")}

# A number with its unit: 99%, 0.95 %, 9.1 s, 12 seconds, 11 minutes, 3 min.
FIGURE = re.compile(r"(?<![\w.,])(\d+(?:,\d{3})*(?:\.\d+)?)\s?(%|seconds?\b|s\b|minutes?\b|min\b)")
UNITS = {"%": "%", "s": "s", "second": "s", "seconds": "s", "min": "min", "minute": "min",
         "minutes": "min"}


@dataclass(frozen=True)
class Figure:
    """One figure of a markdown cell, e.g. ``Figure("9.1 s", "9.1", "s", 17)``."""

    text: str
    number: str
    unit: str
    cell: int

    @property
    def key(self) -> str:
        """How the lists below name it: the number, a space for times, the unit."""
        return f"{self.number}%" if self.unit == "%" else f"{self.number} {self.unit}"


@dataclass(frozen=True)
class FromResults:
    """A benchmark's figure: ``results[key[0]][key[1]]...`` of ``benchmark``'s CPU results
    file, formatted with ``fmt``; ``results[key[0]]["measured"]`` holds its machine and date."""

    benchmark: str
    key: tuple[str, ...]
    fmt: str


@dataclass(frozen=True)
class NotMeasured:
    """A figure that does not come from training: why, and a check of its source."""

    why: str
    holds: Callable[[nbformat.NotebookNode], bool]


def code(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(c.source for c in notebook.cells if c.cell_type == "code")


def _one_cycle_warms_up_over_30_percent(notebook: nbformat.NotebookNode) -> bool:
    default = inspect.signature(torch.optim.lr_scheduler.OneCycleLR).parameters["pct_start"]
    return default.default == 0.3 and "pct_start" not in inspect.getsource(training.fit_recipe)


#: Benchmark figures quoted by the notebooks, by notebook and figure.
FROM_RESULTS: dict[str, dict[str, FromResults]] = {
    "01_convolution": {}, "02_activations": {}, "03_pooling": {}, "04_fully_connected": {},
    "05_backpropagation": {}, "06_optimizers": {},
    "07_lenet5": {
        "9.1 s": FromResults("lenet5_mnist", ("time_to_target", "reached", "training_seconds"),
                             "{:.1f} s"),
        "2.4 s": FromResults("lenet5_mnist", ("pipelines", "tensors_epoch_seconds"), "{:.1f} s"),
        "5.6 s": FromResults("lenet5_mnist", ("pipelines", "dataloader_epoch_seconds"),
                             "{:.1f} s"),
    },
    "08_cifar10": {},
}

#: Figures that do not come from training, by notebook and figure.
NOT_MEASURED: dict[str, dict[str, NotMeasured]] = {
    "01_convolution": {}, "02_activations": {}, "04_fully_connected": {}, "06_optimizers": {},
    "03_pooling": {
        "30%": NotMeasured("the threshold of a strong response in the shift experiment",
                           lambda nb: "detections_kept" in code(nb) and inspect.signature(
                               detections_kept).parameters["level"].default == 0.3),
    },
    "05_backpropagation": {
        "90%": NotMeasured("the target the notebook asserts",
                           lambda nb: "assert accuracy >= 0.9," in code(nb)),
    },
    "07_lenet5": {
        "99%": NotMeasured("the target the notebook asserts",
                           lambda nb: "assert final_accuracy >= 0.99" in code(nb)),
    },
    "08_cifar10": {
        "68%": NotMeasured("the published network's target, asserted",
                           lambda nb: "assert published_acc >= 0.68" in code(nb)),
        "72%": NotMeasured("the ReLU network's target, asserted",
                           lambda nb: "assert relu_acc >= 0.72" in code(nb)),
        "82%": NotMeasured("the improved model's target, asserted",
                           lambda nb: "assert improved_acc >= 0.82" in code(nb)),
        "25%": NotMeasured("the small run's target, asserted for each model",
                           lambda nb: code(nb).count(">= 0.25") == 3),
        "10%": NotMeasured("chance level: one class in ten",
                           lambda nb: f"{1 / len(CIFAR10_CLASSES):.0%}" == "10%"),
        "30%": NotMeasured("the one-cycle schedule's warm-up, PyTorch's default pct_start",
                           _one_cycle_warms_up_over_30_percent),
    },
}


def _lenet_passes_99_percent_in_three_epochs(_: object) -> bool:
    results = load_results("lenet5_mnist")
    target = results["time_to_target"] if results else None
    return bool(target) and target["reached"]["epoch"] == 3 and target["test_acc"][2] >= 0.99


def _paper_error(_: object) -> bool:
    results = load_results("lenet5_mnist")
    return results is not None and results["paper_error"] == 0.0095


#: Figures typed into the prose of the book pages, by page and figure: none comes from the
#: course's own training (those are glued from the results files).
PAGE_FIGURES: dict[str, dict[str, NotMeasured]] = {
    "07_lenet5": {
        "99%": NotMeasured("the target, which the benchmark's run passes in its third epoch",
                           _lenet_passes_99_percent_in_three_epochs),
        "0.95%": NotMeasured("the 1998 paper's test error without distortions (the results "
                             "file holds it as paper_error)", _paper_error),
        "0.8%": NotMeasured("the 1998 paper's test error with distorted training images, "
                            "quoted from the paper", lambda _: True),
        "30%": NotMeasured("the one-cycle schedule's warm-up, PyTorch's default pct_start",
                           _one_cycle_warms_up_over_30_percent),
    },
    "08_cifar10": {
        "30%": NotMeasured("the one-cycle schedule's warm-up, PyTorch's default pct_start",
                           _one_cycle_warms_up_over_30_percent),
    },
}


def page_figures(text: str) -> list[str]:
    """The figures typed into a page's prose (outside code cells and math), as keys."""
    return [Figure(m.group(0), m.group(1), UNITS[m.group(2)], 0).key
            for m in FIGURE.finditer(prose(text))]


def typed_page_figures(text: str, listed: dict[str, NotMeasured]) -> list[str]:
    """A line for each figure of a page's prose that is neither glued nor listed."""
    problems = []
    for key in page_figures(text):
        if key not in listed:
            problems.append(f"{key!r} is typed into the prose: glue it from the results file "
                            "({glue:text}), or list it in tests/test_prose_numbers.py if it "
                            "does not come from training")
        elif not listed[key].holds(text):
            problems.append(f"{key!r} is listed as {listed[key].why}, but its source no "
                            "longer says so")
    return problems


def markdown_figures(notebook: nbformat.NotebookNode) -> list[Figure]:
    """Every percentage and time in the notebook's markdown cells."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "markdown":
            continue
        for match in FIGURE.finditer(cell.source):
            found.append(Figure(match.group(0), match.group(1), UNITS[match.group(2)], index))
    return found


def output_text(notebook: nbformat.NotebookNode) -> str:
    """The text of every stored output of the notebook's code cells."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            parts.append("".join(text) if isinstance(text, list) else text)
    return "\n".join(parts)


def printed(figure: Figure, outputs: str) -> bool:
    """Whether the outputs print the figure: the same number, written the same way, with
    the same unit."""
    unit = {"%": r"\s?%", "s": r"\s?(?:s|seconds?)\b", "min": r"\s?(?:min|minutes?)\b"}
    pattern = rf"(?<![\w.,]){re.escape(figure.number)}{unit[figure.unit]}"
    return re.search(pattern, outputs) is not None


def _lookup(results: dict, key: tuple[str, ...]) -> object:
    value: object = results
    for part in key:
        value = value[part]  # type: ignore[index]
    return value


def unsupported_figures(notebook: nbformat.NotebookNode,
                        from_results: dict[str, FromResults],
                        not_measured: dict[str, NotMeasured],
                        load: Callable[[str], dict | None] = lambda name: load_results(name)
                        ) -> list[str]:
    """A line for each figure of the markdown that nothing backs up; empty if all agree."""
    outputs = output_text(notebook)
    problems = []
    for figure in markdown_figures(notebook):
        where = f"markdown cell {figure.cell}: {figure.text!r}"
        source = notebook.cells[figure.cell].source
        if figure.key in not_measured:
            entry = not_measured[figure.key]
            if not entry.holds(notebook):
                problems.append(f"{where} is listed as {entry.why}, but its source no longer "
                                "says so")
        elif figure.key in from_results:
            entry = from_results[figure.key]
            results = load(entry.benchmark)
            if results is None:
                problems.append(f"{where}: the results file of {entry.benchmark} is missing")
                continue
            value = entry.fmt.format(_lookup(results, entry.key))
            if value != figure.key:
                problems.append(f"{where}: the benchmark's {'.'.join(entry.key)} is now "
                                f"{value}; update the prose")
            stamp = results[entry.key[0]]["measured"]
            for what in ("machine", "date"):
                if stamp[what] not in source:
                    problems.append(f"{where}: the cell does not name the benchmark's "
                                    f"{what}, {stamp[what]!r}")
        elif not printed(figure, outputs):
            problems.append(f"{where} does not appear in the notebook's stored outputs; quote "
                            "the output, or list the figure in tests/test_prose_numbers.py")
    return problems


# ---- the course's notebooks -----------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_every_figure_in_the_prose_is_backed_up(name):
    notebook = nbformat.read(NOTEBOOKS[name], as_version=4)
    problems = unsupported_figures(notebook, FROM_RESULTS[name], NOT_MEASURED[name])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_every_listed_figure_is_still_quoted(name):
    """The lists hold no figure that the prose no longer uses (it would back up nothing)."""
    notebook = nbformat.read(NOTEBOOKS[name], as_version=4)
    quoted = {figure.key for figure in markdown_figures(notebook)}
    stale = (set(FROM_RESULTS[name]) | set(NOT_MEASURED[name])) - quoted
    assert not stale, f"{name}: listed but no longer in the prose: {sorted(stale)}"


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_pages_type_no_measured_figure(name):
    text = PAGES[name].read_text(encoding="utf-8")
    problems = typed_page_figures(text, PAGE_FIGURES[name])
    assert not problems, f"book/{name}.md:\n" + "\n".join(problems)
    stale = set(PAGE_FIGURES[name]) - set(page_figures(text))
    assert not stale, f"{name}: listed but no longer in the prose: {sorted(stale)}"


# ---- the checks themselves, on a tiny notebook and a tiny page ------------------------------

def test_a_typed_figure_on_a_page_is_caught_and_a_glued_one_is_not():
    page = ("The network reaches {glue:text}`acc` after {glue:text}`seconds` seconds.\n\n"
            "```{code-cell} ipython3\nprint(f\"{0.754:.1%} in 12.5 s\")\n```\n")
    assert typed_page_figures(page, {}) == []
    problems = typed_page_figures(page + "\nThat is 75.4% in 12.5 s.\n", {})
    assert len(problems) == 2 and "'75.4%'" in problems[0] and "'12.5 s'" in problems[1]
    listed = {"75.4%": NotMeasured("a quoted figure", lambda _: False)}
    assert "no longer says so" in typed_page_figures(page + "\n75.4%\n", listed)[0]



def _notebook(markdown: str, printed_output: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("train()")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed_output)]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(markdown), cell])


def test_figures_are_found_with_their_units():
    found = markdown_figures(_notebook(
        "It reaches 75.42% in 12.5 s (1,200 seconds with evaluation, 3 minutes), "
        "batch 128, version 2.0, shape 3x32x32.", ""))
    assert [f.key for f in found] == ["75.42%", "12.5 s", "1,200 s", "3 min"]


def test_a_figure_printed_by_the_outputs_passes_and_a_changed_one_fails():
    prose = "After training, the test accuracy is 75.42% after 12.5 s."
    good = _notebook(prose, "epoch 8/8: test acc 75.42%\ntraining time 12.5 s\n")
    assert unsupported_figures(good, {}, {}) == []
    changed = _notebook(prose, "epoch 8/8: test acc 75.13%\ntraining time 12.5 s\n")
    problems = unsupported_figures(changed, {}, {})
    assert len(problems) == 1 and "'75.42%'" in problems[0]
    assert "stored outputs" in problems[0]
    assert unsupported_figures(_notebook(prose, "acc 175.42%, 12.55 s"), {}, {})  # no partial


def test_a_benchmark_figure_must_equal_its_results_key_and_name_machine_and_date():
    stamp = {"machine": "CPU: test machine", "date": "2026-01-02"}
    listed = {"9.1 s": FromResults("fake", ("part", "seconds"), "{:.1f} s")}

    def load(seconds: float) -> Callable[[str], dict]:
        return lambda name: {"part": {"seconds": seconds, "measured": stamp}}
    prose = "The benchmark measured 9.1 s (CPU: test machine, on 2026-01-02)."
    assert unsupported_figures(_notebook(prose, ""), listed, {}, load(9.07)) == []
    problems = unsupported_figures(_notebook(prose, ""), listed, {}, load(9.3))
    assert len(problems) == 1 and "is now 9.3 s" in problems[0]
    undated = "The benchmark measured 9.1 s."
    problems = unsupported_figures(_notebook(undated, ""), listed, {}, load(9.07))
    assert len(problems) == 2 and "machine" in problems[0] and "date" in problems[1]


def test_a_figure_not_from_training_needs_its_source_to_agree():
    listed = {"99%": NotMeasured("the asserted target", lambda nb: "0.99" in code(nb))}
    notebook = _notebook("Reach 99% test accuracy.", "")
    notebook.cells[1].source = "assert accuracy >= 0.99"
    assert unsupported_figures(notebook, {}, listed) == []
    notebook.cells[1].source = "assert accuracy >= 0.98"
    problems = unsupported_figures(notebook, {}, listed)
    assert len(problems) == 1 and "the asserted target" in problems[0]
