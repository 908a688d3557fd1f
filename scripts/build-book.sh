#!/usr/bin/env bash
# Build the course site into _build/html, from scratch, failing on any warning or cell error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ensure-env.sh"
bash scripts/vendor-assets.sh
rm -rf _build/html _build/jupyter_execute _build/.doctrees _build/.jupyter_cache
# The pages' code runs here, several pages at a time, into the cache that _config.yml names;
# the build then reads every page's outputs from it. BUILD_JOBS=1 runs them one at a time.
python scripts/execute_pages.py _build/.jupyter_cache --jobs "${BUILD_JOBS:-2}"
jupyter-book build . --all -W --keep-going 2>&1 | tee _build/jupyter-book.log
# myst-nb says "Executing notebook" for a page it did not find in the cache: the page was still
# built correctly, only one at a time (a change in how myst-nb reads pages would cause it).
if missed=$(grep -c "Executing notebook" _build/jupyter-book.log); then
  echo "note: the build executed ${missed} page(s) itself, not found in the cache that" \
       "scripts/execute_pages.py filled; the build is slower than it should be." >&2
fi
echo "The site is in _build/html (open _build/html/index.html)."
