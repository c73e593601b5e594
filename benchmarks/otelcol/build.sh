#!/usr/bin/env bash
# Builds the OpenTelemetry Collector that benchmarks/bench_otlp.py compares with platform-collector,
# using the official OpenTelemetry Collector Builder (ocb) and the manifest beside this script.
#
#   benchmarks/otelcol/build.sh               build when needed, then print the binary's path
#   benchmarks/otelcol/build.sh --print-path  print the path only if that build exists (else exit 1)
#
# Needs Go (go.mod of the generated sources follows the modules' own requirement) and the Go module
# proxy. Idempotent: the build is skipped when the binary exists and was made from the same manifest
# (sha256 of the manifest and the builder version, stored beside the binary). Everything lives under
# ~/.cache/platform-assets/otelcol/ (override with PLATFORM_OTELCOL_CACHE), never in the repository.
# Opt-in: neither setup.sh nor CI runs it. Takes minutes on 2 cores; compiles under `nice -n 10`.
set -euo pipefail

BUILDER_VERSION=v0.165.0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/builder-config.yaml"
cache="${PLATFORM_OTELCOL_CACHE:-$HOME/.cache/platform-assets/otelcol}"

name="$(sed -n 's/^  name: *//p' "$manifest" | head -n 1)"
out_rel="$(sed -n 's/^  output_path: *//p' "$manifest" | head -n 1)"
case "$out_rel" in
  "~/.cache/platform-assets/otelcol/"*) out="$cache/${out_rel#"~/.cache/platform-assets/otelcol/"}" ;;
  *) echo "build.sh: output_path in $manifest must start with ~/.cache/platform-assets/otelcol/" >&2; exit 2 ;;
esac
binary="$out/$name"
stamp="$out/manifest.sha256"
hash="$( { cat "$manifest"; echo "builder $BUILDER_VERSION"; } | sha256sum | cut -d' ' -f1)"

built() { [[ -x "$binary" && -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; }

if [[ "${1:-}" == "--print-path" ]]; then
  built && echo "$binary" && exit 0
  exit 1
fi

if built; then
  echo "build.sh: $binary is up to date (manifest $hash)" >&2
  echo "$binary"
  exit 0
fi

go="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
mkdir -p "$cache/bin" "$out"
ocb="$cache/bin/builder"
if [[ ! -x "$ocb" ]] || ! "$ocb" version 2>/dev/null | grep -q "${BUILDER_VERSION}\$"; then
  echo "build.sh: installing the builder $BUILDER_VERSION into $cache/bin" >&2
  GOBIN="$cache/bin" nice -n 10 "$go" install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION"
fi

# The builder takes output_path literally: hand it a copy whose path is absolute.
resolved="$cache/builder-config.resolved.yaml"
sed "s|^  output_path: .*|  output_path: $out|" "$manifest" >"$resolved"
rm -f "$stamp"
started=$SECONDS
echo "build.sh: building $binary (this takes minutes)" >&2
PATH="$(dirname "$go"):$PATH" nice -n 10 "$ocb" --config "$resolved" >&2
echo "$hash" >"$stamp"
echo "build.sh: built in $((SECONDS - started)) s, $(du -h "$binary" | cut -f1)" >&2
echo "$binary"
