#!/usr/bin/env bash
# Pushes one server shard past saturation and back (docs/performance.md, "Overload").
#
# The server runs on core 0 beside a busy loop that takes about half of that core, so the load
# harness, alone on core 1, can offer more than the server can forward. For HOLD seconds it asks
# SUBS subscribers' worth of the top layer; the server must stay up, shed the excess where
# /metrics shows it, and keep its memory flat. Then the busy loop stops and a small run on the
# same server process, joining while the shard still sheds, must see no loss and climb to the top
# layer once the shed lifts.
#
# Usage (as root, from the repository root, after cargo build --release --workspace):
#   unshare -n benches/overload.sh [SUBS] [HOLD]        defaults: 600 subscribers, 60 s
set -euo pipefail
SUBS=${1:-600}
HOLD=${2:-60}
OUT=target/loadtest
mkdir -p "$OUT"
ip link set lo up
SFU_LOG=warn,sfu_transport::shard::overload=info SFU_HTTP_PORT=17880 SFU_RTC__UDP_PORT_START=17882 taskset -c 0 ./target/release/sfu >"$OUT/overload-server.log" 2>&1 &
server=$!
taskset -c 0 sh -c 'while :; do :; done' &
hog=$!
trap 'kill $hog $server 2>/dev/null || true' EXIT
sleep 1
echo "== overload: $SUBS subscribers on the top layer for ${HOLD}s, server on half a core"
taskset -c 1 ./target/release/sfu-loadtest livestream --url http://127.0.0.1:17880 --subscribers "$SUBS" \
  --layer high --duration "${HOLD}s" --server-pid $server --json "$OUT/overload.json" | grep '^|'
kill $hog
echo "== server memory after the overload: $(grep VmRSS /proc/$server/status)"
curl -s http://127.0.0.1:17880/metrics | grep -E '^sfu_(udp_receive_drops_total|forward_queue_drops_total|udp_send_failures_total|shed_layers|shed_level_changes_total)'
# Subscribers join at once, while the shard still sheds (it lifts one level per 5 s of an
# empty socket): they must climb to the top layer when it does.
echo "== shed layers as the recovery starts: $(curl -s http://127.0.0.1:17880/metrics | grep '^sfu_shed_layers')"
echo "== recovery: 100 subscribers for 30 s on the same server process, whole core"
taskset -c 1 ./target/release/sfu-loadtest livestream --url http://127.0.0.1:17880 --subscribers 100 \
  --layer high --duration 30s --server-pid $server --json "$OUT/recovery.json" --require-media --max-loss 0.5% | grep '^|'
echo "== server memory at the end: $(grep VmRSS /proc/$server/status)"
curl -s http://127.0.0.1:17880/metrics | grep -E '^sfu_(shed_layers|shed_level_changes_total)'
grep -E 'shedding|keeping up' "$OUT/overload-server.log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c12-150
python3 - "$OUT/overload.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
hold = [p for p in d["timeline"] if p["phase"] == "hold"]
rss = [round(p["server_rss_mb"]) for p in hold]
print(f"server RSS over the hold, MB: first {rss[0]}, max {max(rss)}, last {rss[-1]}; every 10 s: {rss[::10]}")
PY
python3 - "$OUT/recovery.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
per_sub = [(round(p["t"]), round(p["rx_kbps"] / max(p["subscribers_receiving"], 1))) for p in d["timeline"] if p["subscribers_receiving"]]
print("recovery, kbit/s per subscriber each second (the top layer is about 1600 with audio):")
print(" ".join(f"{t}s:{k}" for t, k in per_sub))
PY
