#!/usr/bin/env bash
# The whole test suite: lint, types, then pytest against real servers started by the fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
