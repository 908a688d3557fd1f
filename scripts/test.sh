#!/usr/bin/env bash
# The whole test suite: lint, learner notebooks in sync, the site build, the package's tests,
# the learner notebooks' checks, and strict nbval on every solution notebook.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ensure-env.sh"
start=$SECONDS
echo "== ruff"
ruff check .
echo "== learner notebooks generated from solutions"
python -m cnn_course.authoring check
echo "== book build"
bash scripts/build-book.sh > _build.log 2>&1 || { tail -50 _build.log; exit 1; }
echo "built in $((SECONDS - start)) s"
export CNN_COURSE_SMALL=1  # only the heaviest notebooks (CIFAR-10) read it
# Two test workers share two cores: one torch thread each avoids oversubscription, which made
# small training runs over ten times slower.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
echo "== pytest: package tests, built site, learner notebooks, nbval on solutions"
python -m pytest tests solutions --nbval --nbval-current-env \
  --nbval-sanitize-with tests/nbval-sanitize.cfg --nbval-cell-timeout=900 \
  -n "${TEST_WORKERS:-2}" --dist loadscope -p no:cacheprovider "$@"
echo "whole suite: $((SECONDS - start)) s"
