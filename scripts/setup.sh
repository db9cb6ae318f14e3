#!/usr/bin/env bash
# Create .venv and install darklens with pinned dependencies.
# torch==2.13.0 is named in the same pip command as everything that depends on it, so pip takes the
# local CPU build instead of pulling the CUDA stack from the registry.
#
#   scripts/setup.sh                 # the package, its dependencies, the test tools, Ray,
#                                    # Lightning and the documentation tools
#                                    # (extras dev, ray, lightning, docs)
#   scripts/setup.sh --with-browser  # also Debian's Chromium, for the headless report test
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.darklens-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements/constraints.txt -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -c requirements/constraints.txt torch==2.13.0 \
        -e ".[dev,ray,lightning,docs]"
    touch "$stamp"
fi

if [ "${1:-}" = "--with-browser" ] && ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
            || echo "setup: could not install chromium; the report browser test will be skipped" >&2
    else
        echo "setup: chromium not found (install it to run the report browser test)" >&2
    fi
fi
