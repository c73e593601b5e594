#!/usr/bin/env bash
# The whole platform end to end on the embedded local stack; see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/platform-demo "$@"
