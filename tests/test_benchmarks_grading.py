"""The grading benchmark runs end to end in its quick mode, prints every report line and writes
its figures, stamped with the machine, date and load, where it is told to."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.notebooks


def test_quick_benchmark_prints_every_report_line(root, tmp_path):
    output = tmp_path / "grading.json"
    try:
        result = subprocess.run(
            [sys.executable, str(root / "benchmarks" / "grading.py"), "--quick", "--jobs", "2",
             "--output", str(output)],
            cwd=root, capture_output=True, text=True, timeout=400)
    except subprocess.TimeoutExpired:
        pytest.fail("benchmarks/grading.py --quick took more than 400 s")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for line_start in ("grading benchmark (--quick", "machine: ", "date: ",
                       "notebook: 01_convolution.ipynb, 2 job(s)", "before (sandbox): ",
                       "sandbox: 2 notebooks in ", "no sandbox: 2 notebooks in ",
                       "sandbox overhead: ", "after (no sandbox): ", "results written to "):
        assert any(line.startswith(line_start) for line in lines), (
            f"no line starting with {line_start!r} in:\n{result.stdout}")
    results = json.loads(output.read_text(encoding="utf-8"))
    assert results["quick"] is True and results["jobs"] == 2
    assert results["notebook"] == "01_convolution.ipynb"
    sandboxed, unsandboxed = results["runs"]
    assert sandboxed["sandbox"] is True and unsandboxed["sandbox"] is False
    for run in (sandboxed, unsandboxed):
        assert run["copies"] == 2 and run["seconds"] > 0
        assert run["notebooks_per_minute"] == pytest.approx(2 / run["seconds"] * 60, rel=0.05)
        assert run["measured"]["machine"] and run["measured"]["date"]
        assert len(run["measured"]["load_average_1_5_15"]) == 3
    assert sandboxed["sandbox_overhead_seconds"] == pytest.approx(
        sandboxed["seconds_per_notebook"] - unsandboxed["seconds_per_notebook"], abs=0.02)
