#!/usr/bin/env bash
# Build the course site into _build/html, from scratch, failing on any warning or cell error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ensure-env.sh"
bash scripts/vendor-assets.sh
rm -rf _build/html _build/jupyter_execute _build/.doctrees
jupyter-book build . --all -W --keep-going
echo "The site is in _build/html (open _build/html/index.html)."
