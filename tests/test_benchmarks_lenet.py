"""The LeNet-5 benchmark runs end to end in its quick mode and prints every report line."""

import json
import subprocess
import sys

import pytest


def test_quick_benchmark_prints_every_report_line(root, tmp_path):
    output = tmp_path / "lenet.json"
    try:
        result = subprocess.run(
            [sys.executable, str(root / "benchmarks" / "lenet5_mnist.py"), "--quick",
             "--tutorial-epochs", "1", "--output", str(output)],
            cwd=root, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("benchmarks/lenet5_mnist.py --quick took more than 60 s")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for line_start in ("machine: ", "date: ", "data loading (mnist_tensors", "time to 99%: ",
                       "accuracy over seeds: mean ", "DataLoader (ToTensor", "tensor-resident (",
                       "pipeline ratio: ", "batch   1: ", "batch 256: ", "batch-size ratio: ",
                       "tutorial recipe: ", "load average at end: "):
        assert any(line.startswith(line_start) for line in out.splitlines()), (
            f"no line starting with {line_start!r} in:\n{out}")
    results = json.loads(output.read_text())
    assert results["quick"] is True
    for part in ("time_to_target", "seeds", "pipelines", "batch_sizes", "tutorial"):
        assert results[part]["measured"]["date"] and results[part]["measured"]["machine"], part
    assert len(results["seeds"]["final_test_acc"]) == 1
    assert set(results["batch_sizes"]["seconds"]) == {"1", "256"}
