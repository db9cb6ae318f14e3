#!/usr/bin/env bash
# Create .venv and install darklens with pinned dependencies.
# torch==2.13.0 is named in the same pip command as everything that depends on it, so pip takes the
# local CPU build instead of pulling the CUDA stack from the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.darklens-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements/constraints.txt -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -c requirements/constraints.txt torch==2.13.0 -e ".[dev]"
    touch "$stamp"
fi
