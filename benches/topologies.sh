#!/usr/bin/env bash
# The measured topology table of docs/topologies.md (benches/topologies.mjs), then its PNG plots.
# Builds nothing: uses the binaries given (default target/release). Runs in a network namespace
# of its own (loopback, and the cluster's bridge and node namespaces made inside it), as root.
#
#   benches/topologies.sh [OUT]          default OUT: target/topologies
#
# Environment (see benches/topologies.mjs): TOPOLOGIES, NS, TRANSPORTS, WINDOW, WARMUP,
#   E2E_SFU_BIN, LOADTEST_BIN (the binaries; E2E_SFU_BIN built with --features audio-mix for the
#   mcu rows), MESH_SFU_BIN + MESH_WEB_DIR and MCU_SFU_BIN (other builds for those rows, default
#   E2E_SFU_BIN), E2E_PORT_OFFSET, PLOTS_DIR (default
#   docs/topologies), VENV (default target/topologies-venv: matplotlib, installed with pip once).
# Quick development run: TOPOLOGIES=sfu NS="2 4" TRANSPORTS=udp WINDOW=5 WARMUP=3 benches/topologies.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/topologies}
PLOTS_DIR=${PLOTS_DIR:-docs/topologies}
VENV=${VENV:-target/topologies-venv}
export LOADTEST_BIN=${LOADTEST_BIN:-target/release/sfu-loadtest}
export E2E_SFU_BIN=${E2E_SFU_BIN:-target/release/sfu}
for bin in "$E2E_SFU_BIN" "$LOADTEST_BIN"; do
  [ -x "$bin" ] || { echo "no executable $bin (cargo build --release -p sfu -p sfu-loadtest, or set E2E_SFU_BIN / LOADTEST_BIN)" >&2; exit 2; }
done
[ -d tests/e2e/node_modules ] || (cd tests/e2e && npm ci --no-audit --no-fund)
if ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet matplotlib
fi
mkdir -p "$OUT"
# Bounded: every cell has its own timeout (CELL_TIMEOUT); the whole run at most 2 h.
timeout --kill-after=30 7200 unshare -n sh -c 'ip link set lo up && exec node benches/topologies.mjs "$0"' "$OUT" \
  2>&1 | tee "$OUT/run.log"
"$VENV/bin/python" benches/topologies/plot.py "$OUT/results.json" "$PLOTS_DIR"
[ "$(realpath "$OUT")" = "$(realpath "$PLOTS_DIR")" ] || cp "$OUT/results.json" "$OUT/results.csv" "$PLOTS_DIR/"
echo "table: $OUT/table.md; plots and results: $PLOTS_DIR/"
