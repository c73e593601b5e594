#!/usr/bin/env bash
# Serves the Dagster UI (webserver + daemon) on http://127.0.0.1:3000 against the local stack.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/platform-stack up
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.platform/dagster_home}"
mkdir -p "$DAGSTER_HOME" && cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
exec .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p "${DAGSTER_UI_PORT:-3000}"
