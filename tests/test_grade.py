"""The grader (python -m cnn_course.grade) on solved, unsolved, partly solved, wrong, broken
and cheating versions of the Chapter 1 notebook, built here from the real notebooks (the
attacks on the sandbox itself are in test_grade_hostile.py).

All notebooks that need running are graded once, together, by the command-line entry point
(module-scoped fixture), with short time limits; the tests then read its JSON report.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from notebook_edits import EXERCISES, LEARNER, LEARNER_4, ROOT, SOLUTION
from notebook_edits import index_of as _index_of
from notebook_edits import insert as _insert
from notebook_edits import read as _read
from notebook_edits import set_function as _set_function
from notebook_edits import solve as _solve
from notebook_edits import write as _write

from cnn_course import grade
from cnn_course.arith import conv_output_size
from cnn_course.checks import conv as conv_checks
from cnn_course.grading.chapters import best_match, discover_chapters, read_chapter
from cnn_course.grading.grader import Grader, GradingOptions
from cnn_course.grading.notebook import read_cells

pytestmark = pytest.mark.notebooks

CELL_SECONDS, CHECK_SECONDS = 8, 15  # short, but far above what a normal cell or check needs,
#                                     even the loop-based conv2d checks on a loaded machine
LIMITS = ["--cell-timeout", str(CELL_SECONDS), "--check-timeout", str(CHECK_SECONDS),
          "--timeout", "150", "--seed", "2026"]


def _visible_size_table() -> dict[tuple[int, ...], int]:
    return {(n, k, p, s, d): conv_output_size(n, k, padding=p, stride=s, dilation=d)
            for n, k, p, s, d in conv_checks._SIZE_CONFIGS}


def build_submissions(folder: Path) -> dict[str, Path]:
    built: dict[str, Path] = {}

    # The slow ones first, so that their several attempts overlap with the others.
    stuck = _read(SOLUTION)
    _insert(stuck, "def conv_output_size(", """
        import time
        while True:
            try:
                time.sleep(60)
            except BaseException:
                pass
    """)
    _set_function(stuck, "conv_params", """
        def conv_params(in_channels, out_channels, kernel_size, bias=True):
            while True:
                pass
    """)
    _insert(stuck, "def conv2d_im2col(", "while True:\n    pass")
    built["stuck"] = _write(folder, "stuck.ipynb", stuck)

    crash = _read(SOLUTION)
    _insert(crash, "def vertical_edge_kernel(", "import os\nos._exit(3)")
    _set_function(crash, "conv_output_size", """
        def conv_output_size(n, kernel_size, padding=0, stride=1, dilation=1):
            import time
            while True:
                try:
                    time.sleep(60)
                except BaseException:
                    pass
    """)
    built["crash"] = _write(folder, "crash.ipynb", crash)

    built["solved"] = _write(folder, "solved.ipynb", _read(SOLUTION))
    built["unsolved"] = _write(folder, "unsolved.ipynb", _read(LEARNER))

    partial = _read(LEARNER)
    _solve(partial, "conv_output_size", "conv_params")
    built["partial"] = _write(folder, "partial.ipynb", partial)

    plausible = _read(LEARNER)
    _solve(plausible, "conv2d_loops", "conv2d_im2col")
    loops = plausible.cells[_index_of(plausible, "def conv2d_loops(")]
    loops.source = loops.source.replace("def conv2d_loops(x, weight,",
                                        "def conv2d_loops(x, weight,", 1)
    loops.source = loops.source.replace("    x = ", "    weight = weight.flip(-1, -2)\n    x = ", 1)
    im2col = plausible.cells[_index_of(plausible, "def conv2d_im2col(")]
    im2col.source = im2col.source.replace("if bias is not None:", "if False:")
    _set_function(plausible, "conv_output_size", f"""
        def conv_output_size(n, kernel_size, padding=0, stride=1, dilation=1):
            known = {_visible_size_table()!r}
            return known.get((n, kernel_size, padding, stride, dilation), n)
    """)
    _set_function(plausible, "conv_params", """
        def conv_params(in_channels, out_channels, kernel_size, bias=True):
            return kernel_size * kernel_size * out_channels + (out_channels if bias else 0)
    """)
    _set_function(plausible, "vertical_edge_kernel", """
        def vertical_edge_kernel():
            return torch.tensor([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
    """)
    built["plausible"] = _write(folder, "plausible.ipynb", plausible)

    broken = _read(SOLUTION)
    params = broken.cells[_index_of(broken, "def conv_params(")]
    params.source = params.source.replace("weights = kernel_size", "weights = = kernel_size")
    built["broken_cell"] = _insert(broken, "def conv2d_loops(", "print(1 / 0)")
    built["broken"] = _write(folder, "broken.ipynb", broken)

    noisy = _read(SOLUTION)
    _insert(noisy, "def conv2d_loops(", "print('x' * 3_000_000)")
    _insert(noisy, "def conv_params(", """
        big = torch.empty(4_000_000_000)  # 16 GB
    """)
    _insert(noisy, "def conv2d_im2col(", """
        def hoard():
            blocks = []
            while True:
                blocks.append(torch.empty(100_000_000))
        hoard()
    """)
    built["noisy"] = _write(folder, "noisy.ipynb", noisy)

    trimmed = _read(SOLUTION)
    del trimmed.cells[_index_of(trimmed, "def conv2d_loops(")]
    trimmed.cells = [c for c in trimmed.cells if "check" not in c.metadata.get("tags", [])
                     and c.cell_type == "code"]
    built["trimmed"] = _write(folder, "trimmed.ipynb", trimmed)

    reordered = _read(SOLUTION)
    reordered.cells.reverse()
    built["reordered"] = _write(folder, "reordered.ipynb", reordered)

    patcher = _read(LEARNER)
    _insert(patcher, "def conv2d_loops(", """
        import cnn_course.checks.conv as conv_checks
        import cnn_course.checks.core as core

        def always_pass(exercise, *args, **kwargs):
            return core.CheckResult(exercise, True, "all cases pass.")

        conv_checks.check_conv2d_loops = lambda fn: print("✅ conv2d_loops: all 8 cases match.")
        core.run_cases = lambda exercise, cases, **kwargs: always_pass(exercise)
        conv_checks.run_check = always_pass
        for name in list(conv_checks.EXERCISES):
            conv_checks.EXERCISES[name] = conv_checks.EXERCISES[name].__class__(
                lambda fn, hidden=False: [], "all cases pass.")
        print("✅ conv2d_loops: all 8 cases match F.conv2d.")
    """)
    _set_function(patcher, "conv2d_loops", """
        class Liar(torch.Tensor):   # says it is close to anything
            @classmethod
            def __torch_function__(cls, func, types, args=(), kwargs=None):
                if func is torch.isclose:
                    return torch.ones(torch.broadcast_shapes(args[0].shape, args[1].shape),
                                      dtype=torch.bool)
                return super().__torch_function__(func, types, args, kwargs or {})

        def conv2d_loops(x, weight, bias=None, stride=1, padding=0):
            size = lambda n, k: (n + 2 * padding - k) // stride + 1
            return torch.zeros(x.shape[0], weight.shape[0], size(x.shape[2], weight.shape[2]),
                               size(x.shape[3], weight.shape[3])).as_subclass(Liar)
    """)
    for cell in patcher.cells:   # stored outputs that claim success
        if "check" in cell.metadata.get("tags", []):
            cell.execution_count = 1
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                   text="✅ all cases pass.\n")]
    built["patcher"] = _write(folder, "patcher.ipynb", patcher)

    deep = _read(LEARNER)
    _insert(deep, "def conv2d_loops(", """
        torch.isclose = lambda a, b, **kw: torch.ones(torch.broadcast_shapes(a.shape, b.shape),
                                                      dtype=torch.bool)
        torch.allclose = lambda *args, **kwargs: True
    """)
    _set_function(deep, "conv2d_loops", """
        def conv2d_loops(x, weight, bias=None, stride=1, padding=0):
            size = lambda n, k: (n + 2 * padding - k) // stride + 1
            return torch.zeros(x.shape[0], weight.shape[0], size(x.shape[2], weight.shape[2]),
                               size(x.shape[3], weight.shape[3]))
    """)
    _set_function(deep, "conv2d_im2col", """
        def conv2d_im2col(x, weight, bias=None, stride=1, padding=0):
            return reference.conv2d_im2col(x, weight, bias, stride=stride, padding=padding)
    """)
    _set_function(deep, "conv_output_size", """
        def conv_output_size(*args, **kwargs):
            import cnn_course.arith
            return cnn_course.arith.conv_output_size(*args, **kwargs)
    """)
    _set_function(deep, "conv_params", """
        class Agreeable(int):   # equal to everything
            def __eq__(self, other):
                return True

            def __ne__(self, other):
                return False

        def conv_params(in_channels, out_channels, kernel_size, bias=True):
            return Agreeable(0)
    """)
    _set_function(deep, "vertical_edge_kernel", """
        vertical_edge_kernel = reference.vertical_edge_kernel
    """)
    built["deep"] = _write(folder, "deep.ipynb", deep)

    # Each attack below targets one exercise, so that the score says which one worked.
    saboteur = _read(LEARNER)
    _insert(saboteur, "def conv2d_loops(", """
        # conv_params: patch importlib.import_module, which the grader once imported its
        # checkers with, after the learner's cells.
        import importlib
        _real_import_module = importlib.import_module

        def _import_module(name, package=None):
            module = _real_import_module(name, package)
            if name.startswith("cnn_course.checks.") and hasattr(module, "run_check"):
                real_run_check = module.run_check

                def run_check(exercise, fn, hidden=False):
                    if exercise == "conv_params":
                        from cnn_course.checks.core import CheckResult
                        return CheckResult(exercise, True, "all cases pass.")
                    return real_run_check(exercise, fn, hidden)
                module.run_check = run_check
            return module

        importlib.import_module = _import_module
    """)
    _insert(saboteur, "def conv2d_loops(", """
        # conv_output_size: edit the package source the grader loads its checkers from, held
        # by a finder on sys.meta_path, and the finder's class.
        import sys
        extra = ("\\nfrom cnn_course.checks.core import CheckResult\\n"
                 "_real_run_check = run_check\\n"
                 "def run_check(exercise, fn, hidden=False):\\n"
                 "    if exercise == 'conv_output_size':\\n"
                 "        return CheckResult(exercise, True, 'all cases pass.')\\n"
                 "    return _real_run_check(exercise, fn, hidden)\\n")
        for finder in sys.meta_path:
            store = getattr(finder, "sources", None)
            if isinstance(store, dict) and "cnn_course/checks/conv.py" in store:
                store["cnn_course/checks/conv.py"] += extra
                real_exec_module = type(finder).exec_module

                def exec_module(self, module, real=real_exec_module):
                    real(self, module)
                    if module.__name__ == "cnn_course.checks.conv" \\
                            and "_real_run_check" not in vars(module):
                        exec(extra, vars(module))
                type(finder).exec_module = exec_module
    """)
    _insert(saboteur, "def conv2d_loops(", """
        # conv2d_im2col: a torch function mode, left on, under which everything is close.
        from torch.overrides import TorchFunctionMode

        class Agreeable(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                if func is torch.isclose:
                    return torch.ones(torch.broadcast_shapes(args[0].shape, args[1].shape),
                                      dtype=torch.bool)
                return func(*args, **(kwargs or {}))

        Agreeable().__enter__()
    """)
    _insert(saboteur, "def conv2d_loops(", """
        # vertical_edge_kernel: replace the worker's own function that checks an exercise,
        # found through the garbage collector.
        import gc
        for namespace in gc.get_objects():
            if isinstance(namespace, dict) and "_check" in namespace \\
                    and "_launder" in namespace:
                real_check = namespace["_check"]

                def fake_check(*args, real=real_check, **kwargs):
                    first = args[0]
                    name = first.get("name") if isinstance(first, dict) else args[1]
                    if name == "vertical_edge_kernel":
                        verdict = {"passed": True, "message": "all cases pass."}
                        return {"visible": verdict, "hidden": verdict}
                    return real(*args, **kwargs)
                namespace["_check"] = fake_check
    """)
    zeros = """
            size = lambda n, k: (n + 2 * padding - k) // stride + 1
            return torch.zeros(x.shape[0], weight.shape[0], size(x.shape[2], weight.shape[2]),
                               size(x.shape[3], weight.shape[3]))
    """
    # conv2d_loops: the learner's function itself patches torch.isclose, while it is checked.
    _set_function(saboteur, "conv2d_loops", """
        def conv2d_loops(x, weight, bias=None, stride=1, padding=0):
            torch.isclose = lambda a, b, **kwargs: torch.ones(
                torch.broadcast_shapes(a.shape, b.shape), dtype=torch.bool)""" + zeros)
    _set_function(saboteur, "conv2d_im2col", """
        def conv2d_im2col(x, weight, bias=None, stride=1, padding=0):""" + zeros)
    built["saboteur"] = _write(folder, "saboteur.ipynb", saboteur)

    liar = _read(LEARNER_4)
    # linear_params, mlp_params: callable objects (not functions) that return an int
    # subclass equal to everything.
    _set_function(liar, "linear_params", """
        class Agreeable(int):
            def __eq__(self, other):
                return True

            def __ne__(self, other):
                return False

            __hash__ = int.__hash__

        class Count:
            def __call__(self, *args, **kwargs):
                return Agreeable(0)

        linear_params = Count()
    """)
    _set_function(liar, "mlp_params", "mlp_params = Count()")
    # flatten_size: patch the course's layer builder that the checker measures with.
    _set_function(liar, "flatten_size", """
        import cnn_course.arith as course_arith

        course_arith.layers_from_specs = lambda channels, specs: lambda x: torch.zeros(1, 7)

        def flatten_size(input_shape, specs):
            return 7
    """)
    # one_hot: a trace hook, set while the function is checked, that makes the checker's
    # comparison compare the answer with itself.
    _set_function(liar, "one_hot", """
        import sys

        def one_hot(labels, num_classes):
            def tracer(frame, event, arg):
                if event == "call" and frame.f_code.co_name == "expect_close":
                    frame.f_locals["expected"] = frame.f_locals["got"]

            sys.settrace(tracer)
            return torch.zeros(len(labels), num_classes)
    """)
    built["liar"] = _write(folder, "liar.ipynb", liar)

    (folder / "invalid.ipynb").write_text('{"cells": [', encoding="utf-8")
    built["invalid"] = folder / "invalid.ipynb"
    (folder / "empty.ipynb").write_bytes(b"")
    built["empty"] = folder / "empty.ipynb"
    (folder / "not_a_notebook.ipynb").write_text('{"hello": "world"}', encoding="utf-8")
    built["not_a_notebook"] = folder / "not_a_notebook.ipynb"
    (folder / "binary.ipynb").write_bytes(bytes(range(256)) * 4)
    built["binary"] = folder / "binary.ipynb"
    stranger = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")])
    built["stranger"] = _write(folder, "stranger.ipynb", stranger)
    built["missing"] = folder / "missing.ipynb"
    return built


# ---- one grading run for everything ---------------------------------------------------------

@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    built = build_submissions(folder)
    paths = {name: path for name, path in built.items() if isinstance(path, Path)}
    before = {name: (path.read_bytes(), path.stat().st_mtime_ns)
              for name, path in paths.items() if path.exists()}
    out = tmp_path_factory.mktemp("report")
    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        status = grade.main([*map(str, paths.values()), "--jobs", "2", *LIMITS, "--quiet",
                             "--csv", str(out / "grades.csv"), "--json", str(out / "grades.json"),
                             "--logs", str(out / "logs")])
    report = json.loads((out / "grades.json").read_text(encoding="utf-8"))
    by_name = {Path(s["path"]).stem: s for s in report["submissions"]}
    return {"status": status, "table": table.getvalue(), "report": report, "results": by_name,
            "paths": paths, "before": before, "out": out, "built": built}


def _scores(submission: dict) -> dict[str, int]:
    return {e["name"]: e["score"] for e in submission["exercises"]}


def _reason(submission: dict, exercise: str) -> str:
    return next(e["reason"] for e in submission["exercises"] if e["name"] == exercise)


def test_submitted_files_are_never_changed(graded):
    for name, (data, mtime) in graded["before"].items():
        path = graded["paths"][name]
        assert path.read_bytes() == data, name
        assert path.stat().st_mtime_ns == mtime, name


def test_exit_status_and_report_files(graded):
    assert graded["status"] == 1   # not everything passed
    rows = list(csv.DictReader(open(graded["out"] / "grades.csv", encoding="utf-8")))
    assert len(rows) == len(graded["paths"])
    solved = next(r for r in rows if r["submission"].endswith("solved.ipynb")
                  and "unsolved" not in r["submission"])
    assert (solved["score"], solved["max_score"], solved["passed"]) == ("5", "5", "1")
    assert solved["conv.conv2d_loops"] == "1"
    table = graded["table"]
    assert "e1 conv2d_loops" in table and "score" in table
    assert "5/5  all 5 exercises pass" in table
    assert (graded["out"] / "logs").is_dir()


def test_solved_notebook_gets_full_marks(graded):
    solved = graded["results"]["solved"]
    assert solved["score"] == solved["max_score"] == 5
    assert solved["passed"] and solved["reason"] == "all 5 exercises pass"
    for exercise in solved["exercises"]:
        assert exercise["visible"]["passed"] and exercise["hidden"]["passed"]
    assert solved["flags"] == [] and solved["problems"] == []
    peak = solved["peak_memory"]
    assert 100 << 20 < peak["resident"] < 8 << 30 and 1 <= peak["processes"] <= 4


def test_unsolved_notebook_scores_nothing(graded):
    unsolved = graded["results"]["unsolved"]
    assert unsolved["score"] == 0 and unsolved["max_score"] == 5
    assert all(_reason(unsolved, name) == "not solved yet" for name in EXERCISES)
    assert unsolved["notes"] == [] and unsolved["problems"] == []


def test_partly_solved_notebook_scores_what_is_solved(graded):
    partial = graded["results"]["partial"]
    assert _scores(partial) == {"conv2d_loops": 0, "conv_output_size": 1, "conv_params": 1,
                                "conv2d_im2col": 0, "vertical_edge_kernel": 0}
    assert partial["reason"].startswith("conv2d_loops: not solved yet")


def test_plausible_wrong_answers_score_nothing_with_their_mistake(graded):
    plausible = graded["results"]["plausible"]
    assert plausible["score"] == 0
    assert "flipped the kernel" in _reason(plausible, "conv2d_loops")
    assert "bias is missing" in _reason(plausible, "conv2d_im2col")
    assert "spans all" in _reason(plausible, "conv_params")
    assert "no response on an image with a vertical edge" in _reason(plausible,
                                                                     "vertical_edge_kernel")
    # Hard-coding the visible cases passes them, but not the hidden ones.
    size = next(e for e in plausible["exercises"] if e["name"] == "conv_output_size")
    assert size["visible"]["passed"] and not size["hidden"]["passed"]
    assert size["reason"].startswith("visible cases pass, hidden cases fail")


def test_broken_cells_cost_only_their_own_exercise(graded):
    broken = graded["results"]["broken"]
    assert _scores(broken)["conv_params"] == 0 and broken["score"] == 4
    reason = _reason(broken, "conv_params")
    assert reason.startswith("not defined (cell") and "SyntaxError" in reason
    assert f"cell {graded['built']['broken_cell']} raised ZeroDivisionError: division by zero" \
        in broken["notes"]


def test_stuck_cells_are_stopped_or_killed_and_skipped(graded):
    stuck = graded["results"]["stuck"]
    assert _scores(stuck) == {"conv2d_loops": 1, "conv_output_size": 1, "conv_params": 0,
                              "conv2d_im2col": 1, "vertical_edge_kernel": 1}
    assert _reason(stuck, "conv_params") == f"did not finish within {CHECK_SECONDS} s"
    problems = stuck["problems"]
    assert len(problems) == 2
    # A loop that swallows the interruption is killed, then skipped; a plain one is stopped.
    assert problems[0].endswith("did not stop at its time limit and was killed; graded again "
                                "without that cell")
    assert problems[1].endswith(f"did not finish within {CELL_SECONDS} s and was stopped")
    assert stuck["reason"] == problems[0] + " (+2 more)"


def test_a_crash_or_a_runaway_check_costs_only_its_own_part(graded):
    crash = graded["results"]["crash"]
    assert _scores(crash) == {"conv2d_loops": 1, "conv_output_size": 0, "conv_params": 1,
                              "conv2d_im2col": 1, "vertical_edge_kernel": 1}
    assert _reason(crash, "conv_output_size") == ("its check did not stop at its time limit "
                                                   "and was killed")
    assert crash["problems"] == [
        f"cell {_index_of(_read(graded['paths']['crash']), 'os._exit')} ended the Python "
        "process: it exited with code 3; graded again without that cell"]
    assert any("ends the Python process" in flag for flag in crash["flags"])


def test_output_flood_and_memory_hogs_are_contained(graded):
    noisy = graded["results"]["noisy"]
    assert noisy["score"] == 5
    assert any("printed 2.86 MiB of output; only the first 1 MiB was kept" in note
               for note in noisy["notes"])
    memory = [p for p in noisy["problems"] if "ran out of memory (limit 8 GiB)" in p]
    assert len(memory) == 2, noisy["problems"]
    assert memory[0].endswith("it asked for 14.9 GiB more")
    log = next((graded["out"] / "logs").glob("*noisy.log")).read_bytes()
    assert len(log) == 1 << 20


def test_deleted_and_reordered_cells(graded):
    trimmed = graded["results"]["trimmed"]
    assert _scores(trimmed)["conv2d_loops"] == 0 and trimmed["score"] == 4
    assert _reason(trimmed, "conv2d_loops") == ("not defined (no cell defines it: was the cell "
                                                 "deleted?)")
    reordered = graded["results"]["reordered"]
    assert reordered["score"] == 5   # the functions exist when the checks run
    assert any("NameError" in note for note in reordered["notes"])


def test_patched_checkers_and_fake_output_earn_nothing(graded):
    patcher = graded["results"]["patcher"]
    assert patcher["score"] == 0
    # Its patched checkers never called the functions in the sandbox: nothing to judge.
    assert all("recorded no result" in _reason(patcher, name) for name in EXERCISES)
    flags = " | ".join(patcher["flags"])
    assert "changes conv_checks.check_conv2d_loops" in flags
    assert "changes core.run_cases" in flags
    assert "prints its own ✅ line" in flags


def test_patched_torch_and_the_course_reference_earn_nothing(graded):
    deep = graded["results"]["deep"]
    assert deep["score"] == 0
    assert "values differ" in _reason(deep, "conv2d_loops")   # the judge's torch is its own
    assert "calls the course's own answer" in _reason(deep, "conv2d_im2col")
    assert "calls the course's own answer" in _reason(deep, "conv_output_size")
    # An int subclass that is "equal" to everything is compared as the plain 0 it is.
    assert "returned 0, but nn.Conv2d(3, 16, 2, bias=True) has 208 parameters" in _reason(
        deep, "conv_params")
    assert "course's own implementation" in _reason(deep, "vertical_edge_kernel")
    assert any("changes torch.isclose" in flag for flag in deep["flags"])


def test_patching_the_sandboxs_python_earns_nothing(graded):
    """importlib patched, the package's modules edited in memory, a torch function mode left
    on, torch patched while checked, the worker's functions replaced through the garbage
    collector: all inside the sandbox, which only reports what the learner's code returned."""
    saboteur = graded["results"]["saboteur"]
    assert saboteur["chapter"] == "01_convolution" and saboteur["score"] == 0
    for name in ("conv_params", "conv_output_size", "vertical_edge_kernel"):
        assert _reason(saboteur, name) in ("not solved yet", "not checked") or \
            "recorded no result" in _reason(saboteur, name), _reason(saboteur, name)
    assert "values differ" in _reason(saboteur, "conv2d_loops")
    assert "values differ" in _reason(saboteur, "conv2d_im2col")
    flags = " | ".join(saboteur["flags"])
    assert "changes importlib.import_module" in flags
    assert "searches all live objects" in flags
    assert "installs a PyTorch function or dispatch mode" in flags


def test_callable_objects_a_patched_reference_and_a_trace_hook_earn_nothing(graded):
    liar = graded["results"]["liar"]
    assert liar["chapter"] == "04_fully_connected"
    assert {e["name"]: e["score"] for e in liar["exercises"]} == dict.fromkeys(
        ["linear_params", "mlp_params", "flatten_size", "layer_table", "ink_features",
         "one_hot"], 0)
    # What a callable object returns reaches the judge as data: the plain int 0.
    assert _reason(liar, "linear_params").startswith('case "Linear(') \
        and "returned 0" in _reason(liar, "linear_params")
    assert "returned 0" in _reason(liar, "mlp_params")
    # The checker's own builder computes the expected size, not the learner's patched one.
    assert "returned 7" in _reason(liar, "flatten_size")
    assert any("changes course_arith.layers_from_specs" in flag for flag in liar["flags"])
    # A trace hook that rewrites the checker's variables works in the sandbox only.
    assert "values differ" in _reason(liar, "one_hot") or "expected" in _reason(liar, "one_hot")


@pytest.mark.parametrize("name, reason", [
    ("invalid", "not valid JSON"),
    ("empty", "the file is empty"),
    ("not_a_notebook", "valid JSON, but not a Jupyter notebook"),
    ("binary", "not a text file"),
    ("missing", "no such file"),
    ("stranger", "none of its cells or exercise functions belong to a chapter"),
])
def test_unreadable_submissions_get_a_reason(graded, name, reason):
    result = graded["results"][name]
    assert result["score"] == 0 and not result["passed"]
    assert result["reason"].startswith(reason) or reason in result["reason"]


# ---- chapters --------------------------------------------------------------------------------

def test_the_notebooks_time_limit_leaves_the_remaining_cells_unrun(tmp_path):
    """Cells that each finish well within the cell limit, but not all within the share of
    --timeout that cells may take (three quarters); the rest of the time is the checks'."""
    slow = _read(SOLUTION)
    for _ in range(6):
        _insert(slow, "def conv2d_loops(", "import time\ntime.sleep(6)")
    first_sleep = _index_of(slow, "time.sleep(6)")
    defining = [_index_of(slow, f"def {name}(") for name in EXERCISES]
    out = tmp_path / "grades.json"
    with contextlib.redirect_stdout(io.StringIO()):
        status = grade.main([str(_write(tmp_path, "slow.ipynb", slow)), "--timeout", "40",
                             "--cell-timeout", "30", "--quiet", "--json", str(out)])
    assert status == 1
    result = json.loads(out.read_text(encoding="utf-8"))["submissions"][0]
    assert result["score"] == 0 and result["max_score"] == 5
    not_run = next((p for p in result["problems"] if "were not run" in p), result)
    assert not_run.endswith("were not run: the notebook passed the 30 s its cells may take "
                            "(75% of its 40 s time limit)")
    listed = {int(i) for i in re.findall(r"\d+", not_run.split(" were not run")[0])}
    assert set(defining) <= listed and min(listed) > first_sleep
    for name, index in zip(EXERCISES, defining, strict=True):
        assert _reason(result, name) == (f"not defined (cell {index}, which defines it, was "
                                         "not run: time limit)")
    assert result["seconds"] < 40 + 10


def test_every_chapters_solution_gets_full_marks_and_a_learner_notebook_none(tmp_path):
    """All the solution notebooks, and two learner notebooks, graded in one run (quick mode,
    2 jobs), as an instructor would grade a folder of submissions."""
    import shutil

    folder = tmp_path / "class"
    folder.mkdir()
    solutions = sorted((ROOT / "solutions").glob("*.ipynb"))
    assert len(solutions) == 8
    for path in solutions:
        shutil.copyfile(path, folder / f"solved_{path.name}")
    learners = ["01_convolution", "06_optimizers"]
    for name in learners:
        shutil.copyfile(ROOT / "notebooks" / f"{name}.ipynb", folder / f"learner_{name}.ipynb")
    out = tmp_path / "grades.json"
    with contextlib.redirect_stdout(io.StringIO()):
        status = grade.main([str(folder), "--jobs", "2", "--quiet", "--json", str(out)])
    assert status == 1   # the learner notebooks lose points
    results = {Path(s["path"]).stem: s for s in
               json.loads(out.read_text(encoding="utf-8"))["submissions"]}
    for path in solutions:
        result = results[f"solved_{path.stem}"]
        assert result["chapter"] == path.stem
        assert result["score"] == result["max_score"] > 0, (path.stem, result["reason"])
        assert result["flags"] == [] and result["problems"] == [], (path.stem, result)
    for name in learners:
        result = results[f"learner_{name}"]
        assert result["chapter"] == name and result["max_score"] > 0
        assert result["score"] == 0, result["reason"]
        assert {e["reason"] for e in result["exercises"]} == {"not solved yet"}, result
        assert result["flags"] == [], result["flags"]


def test_every_solution_notebook_defines_gradable_exercises():
    import importlib

    chapters = discover_chapters(ROOT / "solutions")
    for chapter in chapters:
        assert chapter.exercises, chapter.id
        assert not chapter.warnings, chapter.warnings
        for exercise in chapter.exercises:
            module = importlib.import_module(f"cnn_course.checks.{exercise.module}")
            assert exercise.name in module.EXERCISES, exercise.key
    first = read_chapter(SOLUTION)
    assert [e.name for e in first.exercises] == EXERCISES
    assert first.exercises[0].key == "conv.conv2d_loops"


def test_every_chapters_notebooks_are_recognised_as_that_chapter():
    chapters = discover_chapters(ROOT / "solutions")
    for chapter in chapters:
        for folder in ("solutions", "notebooks"):
            path = ROOT / folder / f"{chapter.id}.ipynb"
            if path.exists():
                best, score = best_match(chapters, [c.source for c in read_cells(path)])
                assert best is not None and best.id == chapter.id, (path, best)
                assert score > 0.5, (path, score)


def _fake_chapter(folder: Path) -> Path:
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Chapter 2 exercises: parameters again"),
        nbformat.v4.new_code_cell("from cnn_course.checks.conv import check_conv_params"),
        nbformat.v4.new_code_cell("def count(c_in, c_out, k, bias=True):\n"
                                  "    ### BEGIN SOLUTION\n"
                                  "    return k * k * c_in * c_out + (c_out if bias else 0)\n"
                                  "    ### END SOLUTION"),
        nbformat.v4.new_code_cell("check_conv_params(count)", metadata={"tags": ["check"]}),
    ])
    path = folder / "02_fake.ipynb"
    nbformat.write(notebook, path)
    return path


def test_a_different_chapters_notebook_is_recognised_and_not_run(tmp_path):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    (solutions / SOLUTION.name).write_bytes(SOLUTION.read_bytes())
    fake = _fake_chapter(solutions)
    chapters = discover_chapters(solutions)
    assert [c.id for c in chapters] == ["01_convolution", "02_fake"]
    assert chapters[1].exercises[0].expression == "count"

    first = Grader(GradingOptions(solutions=solutions, chapter="1")).grade(fake)
    assert first.status == "wrong chapter" and first.score == 0 and first.max_score == 5
    assert first.reason.startswith("this is the notebook of 02_fake")
    second = Grader(GradingOptions(solutions=solutions, chapter="02_fake")).grade(LEARNER)
    assert second.status == "wrong chapter" and second.max_score == 1
    assert "01_convolution" in second.reason


def test_check_cells_must_only_call_checkers(tmp_path):
    path = _fake_chapter(tmp_path)
    notebook = _read(path)
    notebook.cells[-1].source = "verdict = check_conv_params(count)"
    nbformat.write(notebook, path)
    chapter = read_chapter(path)
    assert [e.key for e in chapter.exercises] == ["conv.conv_params"]
    assert "does more than call checkers" in chapter.warnings[0]


def test_command_line_entry_point(tmp_path):
    (tmp_path / "a.ipynb").write_text("not json", encoding="utf-8")
    (tmp_path / "b.ipynb").write_bytes(b"")
    done = subprocess.run([sys.executable, "-m", "cnn_course.grade", str(tmp_path),
                           str(tmp_path / "gone.ipynb"), "--chapter", "01_convolution",
                           "--json", str(tmp_path / "r.json")],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, COLUMNS="100"))
    assert done.returncode == 1, done.stderr
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [s["score"] for s in report["submissions"]] == [0, 0, 0]
    assert [s["max_score"] for s in report["submissions"]] == [5, 5, 5]
    for reason in ("not valid JSON", "the file is empty", "no such file"):
        assert reason in done.stdout
    assert "[3/3]" in done.stderr


def test_usage_errors_exit_with_status_2(tmp_path, capsys):
    assert grade.main([str(tmp_path), "--chapter", "99"]) == 2
    assert "no chapter '99'" in capsys.readouterr().err
    assert grade.main([str(tmp_path)]) == 2   # an empty folder
    assert "no notebooks found" in capsys.readouterr().err


def test_the_readmes_sample_report_is_part_of_the_instructors_page_report():
    """The README shows an excerpt of the report on the instructors' page, which is a real run:
    every line of the excerpt must be a line of that report."""
    def report(path: Path, start: str) -> list[str]:
        text = path.read_text(encoding="utf-8")
        block = text[text.index(start):]
        return block[:block.index("```")].splitlines()

    start = "$ python -m cnn_course.grade submissions --chapter 1"
    page = report(ROOT / "book" / "instructors.md", start)
    excerpt = report(ROOT / "README.md", start)
    assert len(excerpt) > 10 and any(line.startswith("submissions/dave.ipynb") for line in excerpt)
    assert [line for line in excerpt if line not in page] == []


def test_flags_name_code_that_reaches_into_the_machinery_however_it_is_spelled():
    from cnn_course.grading.flags import scan
    from cnn_course.grading.notebook import Cell

    sources = {
        "import gc as g\nthings = g.get_objects()": "searches all live objects",
        "frame = getattr(error.__traceback__, 'tb_frame').f_back": "inspects the call stack",
        "fn.__globals__['x'] = 1": "reads or changes a function's globals or closure",
        "for finder in sys.meta_path:\n    pass": "changes how modules are imported",
        "from torch.overrides import TorchFunctionMode": "installs a PyTorch function or "
                                                        "dispatch mode",
        "m.register_module_forward_hook(hook)": "installs a global PyTorch module hook",
        "exec(source, namespace)": "runs code built from a string (exec)",
        "import threading": "imports threading",
        "import importlib\nimportlib.import_module = fake": "changes importlib.import_module",
    }
    cells = [Cell(index, "code", source, ()) for index, source in enumerate(sources)]
    flags = scan(cells, None)
    for index, (source, what) in enumerate(sources.items()):
        assert any(flag.startswith(f"cell {index}: ") and what in flag for flag in flags), (
            source, flags)
    assert scan([Cell(0, "code", "import torch\nx = torch.ones(3).sum()", ())], None) == []


def test_sizes_parse():
    assert grade.parse_size("6G") == 6 << 30
    assert grade.parse_size("512M") == 512 << 20
    assert grade.parse_size("none") is None and grade.parse_size("0") is None
