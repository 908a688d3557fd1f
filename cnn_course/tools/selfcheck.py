"""Check your own exercise notebook from the command line.

    python -m cnn_course.tools.selfcheck notebooks/01_convolution.ipynb

Runs a copy of the notebook in a fresh kernel (your file is not changed), prints every
check's verdict, and exits 0 only if all of them pass.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cnn_course.checks.core import PASS_MARK
from cnn_course.tools.notebook_run import run_notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnn_course.tools.selfcheck",
                                     description="Run a notebook and show its checks' verdicts.")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    all_passed = True
    for path in args.notebooks:
        if not path.exists():
            print(f"{path}: no such file", file=sys.stderr)
            all_passed = False
            continue
        print(f"== {path}")
        try:
            cells = run_notebook(path, timeout=args.timeout)
        except Exception as error:  # unreadable notebook, kernel death, timeout
            print(f"could not run {path}: {type(error).__name__}: {error}")
            all_passed = False
            continue
        verdicts = [line for cell in cells if cell.is_check for line in cell.verdicts]
        for line in verdicts:
            print(line)
        for cell in cells:
            if cell.error and not cell.is_check:
                print(f"cell {cell.index} raised {cell.error}")
                all_passed = False
        passed = sum(line.startswith(PASS_MARK) for line in verdicts)
        print(f"{passed} of {len(verdicts)} checks pass")
        all_passed &= bool(verdicts) and passed == len(verdicts)
    return 0 if all_passed else 1


if __name__ == "__main__":
    sys.exit(main())
