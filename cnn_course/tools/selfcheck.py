"""Check your own exercise notebook from the command line.

    python -m cnn_course.tools.selfcheck notebooks/01_convolution.ipynb
    python -m cnn_course.tools.selfcheck --language zh_CN notebooks/01_convolution.ipynb

Runs a copy of the notebook in a fresh kernel (your file is not changed), prints every
check's verdict, and exits 0 only if all of them pass. ``--language`` chooses the language of
the verdicts and messages (default: ``CNN_COURSE_LANG``, else the notebook's folder, else
English).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cnn_course.checks.core import PASS_MARK
from cnn_course.messages import ENGLISH, LANGUAGES, normalize_language, set_language, tr
from cnn_course.tools.notebook_run import run_notebook


def _apply_language_option(argv: list[str]) -> None:
    """Use the language that ``--language`` names, before the parser (whose help is in that
    language) reads ``argv``; the kernel that runs the notebook inherits it through
    ``CNN_COURSE_LANG``. An unknown language is left to the parser to refuse."""
    value = None
    for number, argument in enumerate(argv):
        if argument == "--":
            break
        if argument == "--language" and number + 1 < len(argv):
            value = argv[number + 1]
        elif argument.startswith("--language="):
            value = argument.partition("=")[2]
    language = normalize_language(value) if value is not None else None
    if language is not None:
        set_language(language)
        os.environ["CNN_COURSE_LANG"] = language


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _apply_language_option(argv)
    parser = argparse.ArgumentParser(prog="python -m cnn_course.tools.selfcheck",
                                     description=tr("Run a notebook and show its checks' "
                                                    "verdicts."))
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=600,
                        help=tr("seconds allowed per cell"))
    parser.add_argument("--language", choices=(ENGLISH, *LANGUAGES),
                        help=tr("the language of the verdicts and messages (default: "
                                "$CNN_COURSE_LANG, else the notebook's folder, else English)"))
    args = parser.parse_args(argv)
    all_passed = True
    for path in args.notebooks:
        if not path.exists():
            print(tr("{path}: no such file", path=path), file=sys.stderr)
            all_passed = False
            continue
        print(f"== {path}")
        try:
            cells = run_notebook(path, timeout=args.timeout)
        except Exception as error:  # unreadable notebook, kernel death, timeout
            print(tr("could not run {path}: {error_type}: {error}", path=path,
                     error_type=type(error).__name__, error=error))
            all_passed = False
            continue
        verdicts = [line for cell in cells if cell.is_check for line in cell.verdicts]
        for line in verdicts:
            print(line)
        for cell in cells:
            if cell.error and not cell.is_check:
                print(tr("cell {index} raised {error}", index=cell.index, error=cell.error))
                all_passed = False
        passed = sum(line.startswith(PASS_MARK) for line in verdicts)
        print(tr("{passed} of {total} checks pass", passed=passed, total=len(verdicts)))
        all_passed &= bool(verdicts) and passed == len(verdicts)
    return 0 if all_passed else 1


if __name__ == "__main__":
    sys.exit(main())
