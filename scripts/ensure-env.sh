#!/usr/bin/env bash
# Create .venv and install the course's requirements if missing or changed. Sourced by the
# other scripts; safe to run on its own.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"
stamp=".venv/.requirements.sha256"
wanted="$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ]; then
  echo "Creating the virtual environment in .venv ..."
  "$python" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "Installing the course's requirements into .venv (first run: a few minutes) ..."
  log=".venv/pip-install.log"
  if ! { .venv/bin/python -m pip install --upgrade pip &&
         .venv/bin/python -m pip install -r requirements-dev.txt; } > "$log" 2>&1; then
    tail -40 "$log" >&2
    echo "Installing the requirements failed; the whole log is in $log" >&2
    exit 1
  fi
  echo "$wanted" > "$stamp"
fi
export PATH="$root/.venv/bin:$PATH"
