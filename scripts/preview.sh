#!/usr/bin/env bash
# Serve the built site on http://127.0.0.1:8000 (build it first: bash scripts/build-book.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -f _build/html/index.html ] || { echo "No built site yet: run bash scripts/build-book.sh" >&2; exit 1; }
port="${1:-8000}"
echo "Serving _build/html at http://127.0.0.1:$port (Ctrl-C stops)"
exec python3 -m http.server "$port" --bind 127.0.0.1 --directory _build/html
