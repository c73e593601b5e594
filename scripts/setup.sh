#!/usr/bin/env bash
# Installs everything the platform needs on a fresh Debian/Ubuntu machine with Python 3.11:
# Debian's Postgres 15 server, Java 17 and Maven (for the embedded stack) and Chromium (browser
# test), the Kafka broker's jars from Maven Central (pinned by platform_assets/stack/kafka/pom.xml)
# into a cache folder, the Python packages, pinned by requirements.lock, into .venv, and Apache
# Superset, pinned by requirements-superset.lock, into .superset-venv.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "setup: Python 3.11 is required (found $("$PYTHON" --version 2>&1))" >&2; exit 1; }

# Debian packages: Postgres 15's server binaries (in /usr/lib/postgresql/15/bin), Java (Kafka 4
# brokers need 17+) and Maven (fetches the broker's jars) for the embedded stack, and Chromium
# for the browser test of the Dagster UI (Playwright drives it).
missing=()
[ -x /usr/lib/postgresql/15/bin/pg_ctl ] || missing+=(postgresql-15)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]} with apt-get"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The embedded Kafka broker: Apache Kafka's jars (kafka_2.13 and its runtime dependencies, plus
# the log4j2 binding for slf4j) copied from Maven Central by the pom, into a folder per version.
# The stamp (the pom's sha256) is written last: a complete folder is skipped without running
# Maven; a changed pom fetches again. Same path as platform_assets/stack/servers/kafka.py uses.
pom=platform_assets/stack/kafka/pom.xml
kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
jars="${PLATFORM_KAFKA_JARS:-${XDG_CACHE_HOME:-$HOME/.cache}/platform-assets/kafka-$kafka_version}"
pom_sha="$(sha256sum "$pom" | cut -d' ' -f1)"
if [ "$(cat "$jars/.platform-complete" 2>/dev/null)" != "$pom_sha" ]; then
  echo "setup: fetching Apache Kafka $kafka_version jars into $jars"
  work="$(mktemp -d)"
  cp "$pom" "$work/pom.xml"  # Maven writes next to the pom: keep that out of the checkout
  if ! mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$work/jars" >"$work/mvn.log" 2>&1; then
    cat "$work/mvn.log" >&2
    echo "setup: Maven could not fetch the Kafka jars (above)" >&2
    rm -rf "$work"
    exit 1
  fi
  rm -rf "$jars"
  mkdir -p "$(dirname "$jars")"
  mv "$work/jars" "$jars"
  echo "$pom_sha" > "$jars/.platform-complete"
  rm -rf "$work"
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.platform-installed"
want="$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c requirements.lock -e ".[dev]"
  echo "$want" > "$stamp"
fi

# Apache Superset (the optional second BI front end, docs/superset.md) in its own venv: its pins
# (requirements-superset.lock) conflict with the platform's, and only its server process imports it.
if [ ! -x .superset-venv/bin/python ]; then
  "$PYTHON" -m venv .superset-venv
fi
superset_stamp=".superset-venv/.superset-installed"
superset_want="$(sha256sum requirements-superset.lock | cut -d' ' -f1)"
if [ "$(cat "$superset_stamp" 2>/dev/null)" != "$superset_want" ]; then
  .superset-venv/bin/python -m pip install -q --upgrade pip
  .superset-venv/bin/python -m pip install -q -r requirements-superset.lock
  echo "$superset_want" > "$superset_stamp"
fi

# Class-data sharing for the broker's JVM (platform_assets/stack/servers/kafka.py): an archive of
# the classes a throwaway broker loads while starting, made once per jar folder and Java build;
# it cuts the broker's start by ~1.5 s. Optional: the broker starts without it.
java_bin=java
if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then java_bin="$JAVA_HOME/bin/java"; fi
if ! "$java_bin" -Xshare:on -XX:SharedArchiveFile="$jars/kafka.jsa" -cp "$jars/*" -version >/dev/null 2>&1; then
  echo "setup: building the Kafka broker's class archive"
  PLATFORM_KAFKA_JARS="$jars" .venv/bin/python -c \
    'from platform_assets.stack.servers.kafka import build_class_archive; build_class_archive()' \
    || echo "setup: no class archive for the Kafka broker (it starts without one, slower)" >&2
fi

# The dbt manifest the asset graph is built from: parsed here when missing or older than a
# project file (the code location only reads it at load; docker/Dockerfile builds it into the image).
.venv/bin/python -c 'from platform_assets.transform.project import ensure_manifest; ensure_manifest()'
