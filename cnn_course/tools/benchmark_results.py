"""The results files of the benchmarks: where they live, how they are stamped and written.

Each script in ``benchmarks/`` writes ``benchmarks/results/<name>_<device type>.json`` after a
full run; the book pages read those files instead of quoting typed numbers, and tests check
that a page's words still match them.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
from pathlib import Path

import torch

from cnn_course.device import describe_device

RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def results_path(benchmark: str, device_type: str = "cpu") -> Path:
    """Where a benchmark (``"cifar10"``, ``"lenet5_mnist"``, ...) keeps its results."""
    return RESULTS_DIR / f"{benchmark}_{device_type}.json"


def load_results(benchmark: str, device_type: str = "cpu") -> dict | None:
    """A benchmark's results for a device type, or None if it was never run there."""
    path = results_path(benchmark, device_type)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where the system has none)."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else []


def stamp(device: torch.device) -> dict:
    """Where and when a measurement started, with the load average at that moment."""
    return {"machine": describe_device(device), "date": datetime.date.today().isoformat(),
            "torch": torch.__version__, "python": platform.python_version(),
            "load_average_1_5_15": load_average()}


def write_results(path: Path, results: dict) -> None:
    """Write a benchmark's results to ``path`` (folders created as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(results), encoding="utf-8")


def to_json(results: dict) -> str:
    """Indented JSON with lists of numbers and flat objects kept on one line (a small,
    readable file)."""
    text = json.dumps(results, indent=1)
    text = re.sub(r"\[\s+([-0-9.eE,\s]+?)\s+\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]",
                  text)
    return re.sub(r"\{\s+([^{}\[\]]+?)\s+\}",
                  lambda m: "{" + " ".join(line.strip() for line in m.group(1).splitlines())
                  + "}", text) + "\n"
