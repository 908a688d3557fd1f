"""The exercise notebooks are real: unsolved, every check fails and nothing else does;
solved, every check passes."""

import warnings
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellTimeoutError

from cnn_course.checks.core import FAIL_MARK, PASS_MARK, Case, run_cases
from cnn_course.messages import using_language
from cnn_course.tools.notebook_run import read_cells, run_notebook

pytestmark = pytest.mark.notebooks

ROOT = Path(__file__).resolve().parent.parent
LEARNER = sorted((ROOT / "notebooks").glob("*.ipynb"))
# A translated learner notebook has the same code cells (tests/test_translations.py checks
# that), so one of them is run here, to show it runs as a learner opens it.
TRANSLATED = [ROOT / "notebooks" / "zh_CN" / "01_convolution.ipynb"]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def test_every_chapter_has_both_notebooks():
    assert SOLUTIONS, "no solution notebooks found"
    assert [p.name for p in LEARNER] == [p.name for p in SOLUTIONS]


def _not_solved_yet(language: str) -> str:
    """What a check says of an unsolved exercise, in ``language``."""
    def unsolved() -> None:
        raise NotImplementedError()
    with using_language(language):
        return run_cases("exercise", [Case("case", unsolved)], success="").message


@pytest.mark.parametrize("path", LEARNER + TRANSLATED,
                         ids=lambda p: p.relative_to(ROOT / "notebooks").as_posix())
def test_learner_notebook_fails_only_at_its_checks(path, monkeypatch):
    monkeypatch.setenv("CNN_COURSE_QUICK", "1")  # the kernel inherits it: short training runs
    try:
        cells = run_notebook(path, timeout=300)
    except (CellTimeoutError, AssertionError):
        # Every cell of a quick run takes seconds. A stalled kernel connection (seen about once
        # in 25 runs of a notebook with widgets on a busy machine; nbclient then ends with a
        # timeout or with an AssertionError of its own) gets one more try; a cell that really
        # runs too long fails both times.
        warnings.warn(f"{path.name}: a cell timed out; running the notebook once more",
                      stacklevel=1)
        cells = run_notebook(path, timeout=300)
    checks = [cell for cell in cells if cell.is_check]
    assert checks, f"{path.name} has no cell tagged 'check'"
    # A notebook in a language's folder speaks that language (the kernel starts there).
    not_solved = _not_solved_yet(path.parent.name if path in TRANSLATED else "en")
    for cell in cells:
        assert cell.error is None, f"{path.name} cell {cell.index} raised {cell.error}"
        assert PASS_MARK not in cell.text, (
            f"{path.name} cell {cell.index} passes a check before anything was solved")
    for cell in checks:
        assert cell.verdicts, f"{path.name} check cell {cell.index} printed no verdict"
        for verdict in cell.verdicts:
            assert verdict.startswith(FAIL_MARK) and not_solved in verdict, (
                f"{path.name} cell {cell.index}: {verdict}")


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_notebook_is_executed_and_passes_every_check(path):
    cells = read_cells(nbformat.read(path, as_version=4))
    notebook = nbformat.read(path, as_version=4)
    counts = [c.execution_count for c in notebook.cells if c.cell_type == "code"]
    assert all(n is not None for n in counts), f"{path.name} is not fully executed"
    assert counts == sorted(counts), f"{path.name} was not executed top to bottom"
    checks = [cell for cell in cells if cell.is_check]
    assert checks
    for cell in checks:
        assert cell.verdicts and all(v.startswith(PASS_MARK) for v in cell.verdicts), (
            f"{path.name} check cell {cell.index}: {cell.text.strip()}")
    for cell in cells:
        assert cell.error is None or "raises-exception" in cell.tags, (
            f"{path.name} cell {cell.index} raised {cell.error}")
