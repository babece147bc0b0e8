#!/usr/bin/env bash
# The same livestream load against Janus's VideoRoom and against this SFU, one after the other,
# each server alone on core 0 and the load harness on core 1 (docs/performance.md, "Against
# Janus"). Ends with `ratio <x>`: our packets delivered per server CPU-second over Janus's.
#
# Both runs happen in a network namespace of their own, on an address of a veth pair created
# there: Janus gathers no ICE candidates on lo, and nothing leaves the namespace.
#
# Usage (as root, from the repository root, after cargo build --release --workspace):
#   benches/compare-janus.sh [SUBS] [HOLD]        defaults: 300 subscribers, 20 s
# Environment: JANUS_EVENT_LOOPS (default 1), LAYER (default high).
set -euo pipefail
SUBS=${1:-300}
HOLD=${2:-20}
LAYER=${LAYER:-high}
EVENT_LOOPS=${JANUS_EVENT_LOOPS:-1}
ADDR=10.99.0.1
JANUS_PORT=18188
SFU_PORT=17880
OUT=target/loadtest
ROOT=$(pwd)

if [ -z "${COMPARE_JANUS_NETNS:-}" ]; then
  if ! command -v janus >/dev/null; then
    echo "== installing Debian's janus"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq janus >/dev/null
  fi
  exec unshare -n env COMPARE_JANUS_NETNS=1 "$0" "$@"
fi

ip link set lo up
ip link add bench0 type veth peer name bench1
ip addr add "$ADDR/24" dev bench0
ip link set bench0 up
ip link set bench1 up

mkdir -p "$OUT/janus-config"
CONFIG=$(cd "$OUT/janus-config" && pwd)
for f in benches/janus/*.jcfg; do
  sed -e "s#@CONFIGS@#$CONFIG#; s#@EVENT_LOOPS@#$EVENT_LOOPS#; s#@WS_PORT@#$JANUS_PORT#; s#@IFACE@#bench0#; s#@ADDR@#$ADDR#" \
    "$f" >"$CONFIG/$(basename "$f")"
done

# shellcheck source=benches/lib.sh
. "$(dirname "$0")/lib.sh"

load() { # SERVER URL PID JSON
  taskset -c 1 "$ROOT/target/release/sfu-loadtest" livestream --server "$1" --url "$2" --subscribers "$SUBS" \
    --layer "$LAYER" --duration "${HOLD}s" --server-pid "$3" --json "$4" 2>"${4%.json}.progress.log" | grep '^[|#]'
}

echo "== janus $(janus --version 2>/dev/null | head -1 | awk '{print $NF}'), VideoRoom, event_loops=$EVENT_LOOPS, core 0"
taskset -c 0 janus -C "$CONFIG/janus.jcfg" -F "$CONFIG" >"$OUT/compare-janus.janus.log" 2>&1 &
janus=$!
trap 'kill $janus 2>/dev/null || true' EXIT
wait_for_port "$ADDR" $JANUS_PORT
load janus "ws://$ADDR:$JANUS_PORT" $janus "$OUT/compare-janus.janus.json"
kill $janus
wait $janus 2>/dev/null || true

echo "== this sfu, one shard, core 0"
SFU_DEV=true SFU_LOG=warn SFU_BIND=$ADDR SFU_HTTP_PORT=$SFU_PORT SFU_RTC__UDP_PORT_START=$((SFU_PORT + 2)) \
  taskset -c 0 "$ROOT/target/release/sfu" >"$OUT/compare-janus.sfu.log" 2>&1 &
sfu=$!
trap 'kill $sfu 2>/dev/null || true' EXIT
wait_for_port "$ADDR" $SFU_PORT
load sfu "http://$ADDR:$SFU_PORT" $sfu "$OUT/compare-janus.sfu.json"
kill $sfu

python3 - "$OUT/compare-janus.sfu.json" "$OUT/compare-janus.janus.json" <<'PY'
import json, sys
runs = {name: json.load(open(path)) for name, path in zip(("sfu", "janus"), sys.argv[1:])}
print()
print("| server | subscribers with media | delivered pkt/s | server CPU % | pkt per server CPU-second | loss % | latency p50 / p99 ms |")
print("|---|---|---|---|---|---|---|")
per_cpu = {}
for name, r in runs.items():
    cpu = r["server_cpu_pct"]
    per_cpu[name] = r["received_pps"] / (cpu / 100) if cpu else float("nan")
    lat = r["latency_ms"]
    print(f"| {name} | {r['subscribers_with_media']} of {r['subscribers']} | {r['received_pps']:.0f} | {cpu:.1f} | "
          f"{per_cpu[name]:.0f} | {r['loss_pct_hold']:.3f} | {lat['p50']} / {lat['p99']} |")
losses = [r["loss_pct_hold"] for r in runs.values()]
if max(losses) >= 0.5:
    print(f"note: loss differs from zero (sfu {losses[0]:.3f} %, janus {losses[1]:.3f} %); "
          "lower SUBS until both servers forward everything, or the ratio compares unequal work")
print(f"ratio {per_cpu['sfu'] / per_cpu['janus']:.2f}")
PY
