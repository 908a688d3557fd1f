#!/usr/bin/env bash
# The whole test suite: lint, learner notebooks in sync, the site build, the package's tests,
# the learner notebooks' checks, and strict nbval on every solution notebook.
#
# The grader's tests need bubblewrap (bwrap), the sandbox learners' notebooks are graded in.
# The browser tests (marked `browser`: tests/test_browser.py, tests/test_explorer_*.py) need
# Chromium: `chromium`, `chromium-browser` or `google-chrome` on the PATH, or
# $CNN_COURSE_CHROMIUM naming one. Set CNN_COURSE_SKIP_BROWSER=1
# to run everything else without it. The suite should finish within $CNN_COURSE_TEST_BUDGET_S
# seconds (default 900, the project's 15 minutes); a longer run ends with a warning.
set -euo pipefail
browser_args=()
if [ "${CNN_COURSE_SKIP_BROWSER:-}" = 1 ]; then
  echo "== CNN_COURSE_SKIP_BROWSER=1: the browser tests (marked browser) are skipped"
  browser_args=(-m "not browser")
else
  found=""
  for candidate in "${CNN_COURSE_CHROMIUM:-}" chromium chromium-browser google-chrome; do
    if [ -n "$candidate" ] && command -v "$candidate" > /dev/null; then
      found="$candidate"
      break
    fi
  done
  if [ -z "$found" ]; then
    echo "error: the browser tests need Chromium, and none was found (looked for" \
         "\$CNN_COURSE_CHROMIUM, chromium, chromium-browser and google-chrome)." >&2
    echo "Install it (Debian/Ubuntu: sudo apt-get install chromium), point" \
         "CNN_COURSE_CHROMIUM at one, or run without the browser tests:" \
         "CNN_COURSE_SKIP_BROWSER=1 bash scripts/test.sh" >&2
    exit 1
  fi
fi

if ! command -v bwrap > /dev/null; then
  echo "error: the grader's tests need bubblewrap (the 'bwrap' command), the sandbox in which" \
       "the grader runs learners' notebooks. Install it (Debian/Ubuntu: sudo apt-get install" \
       "bubblewrap; .ci/run does this)." >&2
  exit 1
fi

start=$SECONDS
budget="${CNN_COURSE_TEST_BUDGET_S:-900}"
report_time() {
  local status=$? elapsed=$((SECONDS - start))
  echo "whole suite: ${elapsed} s$([ "$status" = 0 ] || echo " (failed, exit status $status)")"
  if [ "$elapsed" -gt "$budget" ]; then
    echo "WARNING: the test suite took ${elapsed} s, more than its budget of ${budget} s" \
         "(the project allows 15 minutes): find what got slower." >&2
  fi
}
trap report_time EXIT

source "$(dirname "${BASH_SOURCE[0]}")/ensure-env.sh"
start=$SECONDS  # installing packages on a first run is not part of the budget
echo "== ruff"
ruff check .
echo "== learner notebooks generated from solutions"
python -m cnn_course.tools.authoring check
echo "== book build"
bash scripts/build-book.sh > _build.log 2>&1 || { tail -50 _build.log; exit 1; }
echo "built in $((SECONDS - start)) s"
export CNN_COURSE_SMALL=1  # only the heaviest notebooks (CIFAR-10) read it
# Two test workers share two cores: one torch thread each avoids oversubscription, which made
# small training runs over ten times slower.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
echo "== pytest: package tests, built site, learner notebooks, nbval on solutions"
python -m pytest tests solutions --run-all --nbval --nbval-current-env \
  --nbval-sanitize-with tests/nbval-sanitize.cfg --nbval-cell-timeout=900 \
  -n "${TEST_WORKERS:-2}" --dist loadscope -p no:cacheprovider \
  ${browser_args[@]+"${browser_args[@]}"} "$@"
