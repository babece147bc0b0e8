#!/usr/bin/env bash
# One room over a cluster of three nodes (docs/performance.md, "Cluster"; docs/cluster.md).
#
# One redis-server and three `sfu` nodes (ids bench-a, bench-b, bench-c), all on 127.0.0.1 in a
# network namespace of the script's own, the same cluster secret, one media shard each. Node X's
# ports: HTTP P, ICE-TCP P+1, UDP media P+2, relay (TCP) P+5, with P = 17880, 17890, 17900; Redis on 16390.
#
# Core shares: cgroup v1 CPU bandwidth (the `cpu` controller at /sys/fs/cgroup/cpu). Each node
# process runs in a cgroup of its own capped at QUOTA_PCT % of one core (CFS, 5 ms period),
# pinned with taskset to core i % 2 (A and C on core 0, B on core 1) at nice -10, so each behaves
# like a slower core of its own that the harness (on both cores, with what is left) does not
# delay. Three equal shares of a 2-core machine cannot be had with taskset alone. QUOTA_PCT=100
# leaves the nodes uncapped (taskset only). Bandwidth estimation is off (BANDWIDTH_ESTIMATION=true
# to keep it): a capped process pauses for up to a few ms every 5 ms, which the delay-based
# estimator reads as congestion (see benches/shard-scaling.sh).
#
# Every run is `sfu-loadtest livestream` (simulcast publishers on node A, the origin; subscribers
# round-robin over the --url list) on LAYER (default high), and every figure below comes from
# its JSON report (per node: CPU from /proc, forwarding and relay counters from /metrics over
# the hold). Three parts:
#
# 1. Relay copies. 1 publisher, N subscribers over A, B, C for N in RELAY_NS (default 3 30 90):
#    bytes/s on each link (A's counters out, B's and C's in) and the publisher's ingest bytes/s
#    on A. The relay carries one copy per track per link: each link's bytes/s at the largest N
#    must be within 5 % of the smallest N's.
# 2. CPU per relayed packet against a locally forwarded copy. ROOMS publishers (an odd number,
#    one room each, all on A), K subscribers per room per node, three runs:
#      L1  --url A      K per room, all on A
#      L2  --url A      2K per room, all on A
#      S2  --url A,B    2K per room, K on A and K on B (an odd room count alternates the nodes)
#    A copy costs (CPU(L2) - CPU(L1)) / (forwarded(L2) - forwarded(L1)), summed over the nodes:
#    the same publishers, only more copies. Sending a relayed packet costs A
#    (CPU_A(S2) - CPU_A(L1)) / relay pps: the same ingest and local copies, plus the link.
#    Receiving one costs B (CPU_B(S2) - B idle - copies B forwarded x the copy cost) / relay pps:
#    B relays in and fans out K copies per room; its idle CPU is read from /proc for 10 s first.
# 3. Largest room. N subscribers on 1 node (--url A) and on 3 (--url A,B,C): N doubles from
#    ROOM_START_1 / ROOM_START_3 until a run fails or ROOM_MAX, then bisects down to ROOM_RES
#    (or 5 % of N). A run passes when every subscriber receives media, the loss over the hold is
#    under 1 % and the median latency under MAX_P50_MS (20 ms): a node at its cap queues rather
#    than drops (at a capped node's limit latency grew to seconds with no loss at all). A run
#    the harness names its own bottleneck stops the search: the figure is then a lower bound.
#
# Usage (as root, from the repository root, after cargo build --release -p sfu -p sfu-loadtest):
#   benches/cluster.sh [OUT]                  default OUT: target/cluster-bench
#   QUICK=1 benches/cluster.sh                a short smoke run of every part (about 2 minutes)
# Environment: QUOTA_PCT (20), LAYER (high), HOLD (20 s), CPU_HOLD (30 s), RELAY_NS ("3 30 90"),
#   WARMUP (5 s between the settle and the hold: subscribers that start on a lower layer reach
#   theirs at a later keyframe, every 3 s), ROOMS (15), K (3), ROOM_START_1 (50), ROOM_START_3 (150), ROOM_MAX (1600), ROOM_RES (25),
#   MAX_P50_MS (20), RAMP (50/s), PARTS ("relay cpu room"), SFU_BIN (target/release/sfu), LOADTEST_BIN
#   (target/release/sfu-loadtest), REDIS_BIN (redis-server).
# Results in OUT: one JSON, markdown table and log per run, each node's log, and summary.md (the
# markdown printed at the end, for docs/performance.md).
set -euo pipefail
OUT=${1:-target/cluster-bench}
QUICK=${QUICK:-0}
QUOTA=${QUOTA_PCT:-20}
LAYER=${LAYER:-high}
RAMP=${RAMP:-50/s}
MAX_P50_MS=${MAX_P50_MS:-20}
WARMUP=${WARMUP:-5}
PARTS=${PARTS:-relay cpu room}
SFU_BIN=${SFU_BIN:-./target/release/sfu}
LOADTEST_BIN=${LOADTEST_BIN:-./target/release/sfu-loadtest}
REDIS_BIN=${REDIS_BIN:-redis-server}
if [ "$QUICK" = 1 ]; then
  HOLD=${HOLD:-5}; CPU_HOLD=${CPU_HOLD:-8}; RELAY_NS=${RELAY_NS:-3 9}; ROOMS=${ROOMS:-3}; K=${K:-1}
  ROOM_START_1=${ROOM_START_1:-2}; ROOM_START_3=${ROOM_START_3:-3}; ROOM_MAX=${ROOM_MAX:-8}; ROOM_RES=${ROOM_RES:-4}
else
  HOLD=${HOLD:-20}; CPU_HOLD=${CPU_HOLD:-30}; RELAY_NS=${RELAY_NS:-3 30 90}; ROOMS=${ROOMS:-15}; K=${K:-3}
  ROOM_START_1=${ROOM_START_1:-50}; ROOM_START_3=${ROOM_START_3:-150}; ROOM_MAX=${ROOM_MAX:-1600}; ROOM_RES=${ROOM_RES:-25}
fi
REDIS_PORT=16390
PORTS=(17880 17890 17900)
NAMES=(a b c)
SECRET=bench-cluster-secret-0123456789-abcdefgh
CGROUP=/sys/fs/cgroup/cpu
PERIOD_US=5000

for bin in "$SFU_BIN" "$LOADTEST_BIN"; do
  [ -x "$bin" ] || { echo "no executable $bin (cargo build --release -p sfu -p sfu-loadtest, or set SFU_BIN / LOADTEST_BIN)" >&2; exit 2; }
done
if ! command -v "$REDIS_BIN" >/dev/null; then
  echo "no $REDIS_BIN: install the Debian package redis-server (apt-get install redis-server)" >&2
  exit 2
fi
command -v python3 >/dev/null || { echo "needs python3 (to read the JSON reports)" >&2; exit 2; }
if [ $((ROOMS % 2)) -ne 1 ]; then
  echo "ROOMS must be odd (so that a room's subscribers alternate between A and B): $ROOMS" >&2
  exit 2
fi
if [ "$QUOTA" -lt 100 ]; then
  if [ ! -f "$CGROUP/cpu.cfs_quota_us" ]; then
    echo "needs the cgroup v1 cpu controller at $CGROUP for QUOTA_PCT < 100 (or QUOTA_PCT=100: no cap)" >&2
    exit 2
  fi
  if [ $((QUOTA * PERIOD_US / 100)) -lt 1000 ]; then
    echo "QUOTA_PCT $QUOTA of a $PERIOD_US us period is under the kernel's 1 ms minimum" >&2
    exit 2
  fi
fi

if [ -z "${CLUSTER_BENCH_NETNS:-}" ]; then
  # Everything in a network namespace of its own, where only loopback exists.
  exec unshare -n env CLUSTER_BENCH_NETNS=1 "$0" "$@"
fi
ip link set lo up
# shellcheck source=benches/lib.sh
. "$(dirname "$0")/lib.sh"
mkdir -p "$OUT"
SUMMARY=$OUT/summary.md
: >"$SUMMARY"

URL=() PID=()
for i in 0 1 2; do URL[i]=http://127.0.0.1:${PORTS[i]}; done
redis_pid= harness_pid=

cleanup() {
  # SIGKILL for the nodes: on SIGTERM a node drains its clients for up to 30 s first.
  [ -z "$harness_pid" ] || kill "$harness_pid" 2>/dev/null || true
  for p in "${PID[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null || true
  for p in $harness_pid "${PID[@]}" $redis_pid; do wait "$p" 2>/dev/null || true; done
  for n in "${NAMES[@]}"; do rmdir "$CGROUP/sfu-bench-cluster-$n" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

metrics() { curl -s --max-time 5 "${URL[$1]}/metrics" || true; }
# cpu_ticks PID: the process's user + system CPU time so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# start_node I: node I in its cgroup, pinned to core I % 2; its pid in PID[I].
start_node() {
  local i=$1 port=${PORTS[$1]} name=${NAMES[$1]} group=""
  if [ "$QUOTA" -lt 100 ]; then
    group="$CGROUP/sfu-bench-cluster-$name"
    mkdir -p "$group"
    echo $PERIOD_US >"$group/cpu.cfs_period_us"
    echo $((QUOTA * PERIOD_US / 100)) >"$group/cpu.cfs_quota_us"
  fi
  (
    # The process enters its cgroup before it starts any thread; its threads inherit it.
    [ -z "$group" ] || echo "$BASHPID" >"$group/cgroup.procs"
    exec env -u SFU_BIN SFU_LOG=warn SFU_HTTP_PORT="$port" SFU_RTC__UDP_PORT_START=$((port + 2)) SFU_RTC__TCP_PORT=$((port + 1)) SFU_RTC__SHARDS=1 \
      SFU_RTC__BANDWIDTH_ESTIMATION="${BANDWIDTH_ESTIMATION:-false}" \
      SFU_CLUSTER__REDIS_URL="redis://127.0.0.1:$REDIS_PORT" SFU_CLUSTER__SECRET="$SECRET" \
      SFU_CLUSTER__NODE_ID="bench-$name" SFU_CLUSTER__RELAY_ADDR="127.0.0.1:$((port + 5))" \
      SFU_CLUSTER__SIGNAL_URL="${URL[i]}" \
      nice -n -10 taskset -c $((i % 2)) "$SFU_BIN" serve
  ) >"$OUT/node-$name.log" 2>&1 &
  PID[i]=$!
}

start_cluster() {
  "$REDIS_BIN" --bind 127.0.0.1 --port $REDIS_PORT --save '' --appendonly no --daemonize no \
    >"$OUT/redis.log" 2>&1 &
  redis_pid=$!
  wait_for_port 127.0.0.1 $REDIS_PORT || { tail -5 "$OUT/redis.log" >&2; exit 1; }
  for i in 0 1 2; do start_node "$i"; done
  for i in 0 1 2; do
    wait_for_port 127.0.0.1 "${PORTS[i]}" || { tail -5 "$OUT/node-${NAMES[i]}.log" >&2; exit 1; }
  done
  # Every node must see both others' links up (a beat, 2 s, then the handshake): 30 s at most.
  local up
  for _ in $(seq 60); do
    up=0
    for i in 0 1 2; do
      [ "$(metrics "$i" | grep -c '^sfu_relay_link_up{.*} 1$')" -ge 2 ] && up=$((up + 1))
    done
    [ $up -eq 3 ] && break
    sleep 0.5
  done
  if [ $up -ne 3 ]; then
    echo "the nodes' relay links did not all come up within 30 s:" >&2
    for i in 0 1 2; do metrics "$i" | grep '^sfu_relay_link_up' | sed "s/^/  ${NAMES[i]}: /" >&2; done
    exit 1
  fi
  echo "== cluster up: redis :$REDIS_PORT, nodes ${URL[*]} (pids ${PID[*]}), each capped at $QUOTA % of a core"
}

# wait_idle: until no node holds a participant (the last run's sessions are gone), 30 s at most.
wait_idle() {
  local left
  for _ in $(seq 60); do
    left=0
    for i in 0 1 2; do
      kill -0 "${PID[i]}" 2>/dev/null || { echo "node ${NAMES[i]} died; its log:" >&2; tail -20 "$OUT/node-${NAMES[i]}.log" >&2; exit 1; }
      left=$((left + $(metrics "$i" | awk '/^sfu_participants / {s += $2} END {print s + 0}')))
    done
    [ $left -eq 0 ] && return 0
    sleep 0.5
  done
  echo "   (still $left participants on the nodes after 30 s; going on)" >&2
}

# loadtest NAME NODES SUBS PUBS HOLD: one harness run against nodes NODES (e.g. "0 1 2"); the
# report in $OUT/NAME.json. Its exit status (3: a subscriber without media, or loss) is judged
# from the JSON by the caller.
loadtest() {
  local name=$1 nodes=$2 subs=$3 pubs=$4 hold=$5 urls="" pids="" i
  for i in $nodes; do urls+=${urls:+,}${URL[i]}; pids+=${pids:+,}${PID[i]}; done
  wait_idle
  local rate=${RAMP%/s} bound
  bound=$((subs / rate + WARMUP + hold + 90))
  local cmd=("$LOADTEST_BIN" livestream --url "$urls" --server-pid "$pids" --publishers "$pubs" --subscribers "$subs"
    --layer "$LAYER" --ramp "$RAMP" --settle 15s --warmup "${WARMUP}s" --duration "${hold}s" --json "$OUT/$name.json" --plots "$OUT/plots")
  echo "${cmd[*]}" >"$OUT/$name.cmd"
  rm -f "$OUT/$name.json"
  # In the background, so that a signal to the script ends it at once (see cleanup).
  timeout -k 10 $bound "${cmd[@]}" >"$OUT/$name.md" 2>"$OUT/$name.log" &
  harness_pid=$!
  wait $harness_pid || true
  harness_pid=
  if [ ! -s "$OUT/$name.json" ]; then
    echo "run $name wrote no report; its log:" >&2
    tail -5 "$OUT/$name.log" >&2
    return 1
  fi
}

part_relay() {
  echo "== 1. relay copies: 1 publisher on A, N subscribers over A, B, C (layer $LAYER, hold ${HOLD}s)"
  local n files=()
  for n in $RELAY_NS; do
    loadtest "relay-$n" "0 1 2" "$n" 1 "$HOLD" || continue
    files+=("$OUT/relay-$n.json")
  done
  python3 - "$SUMMARY" "${files[@]}" <<'PY'
import json, sys
summary, files = sys.argv[1], sys.argv[2:]
runs = [json.load(open(f)) for f in files]
out = ["### Relay: one copy per track per link", "",
       "| N (A / B / C) | with media | publisher ingest on A, bytes/s | A->B bytes/s (pkt/s: by layer) | A->C bytes/s (pkt/s: by layer) | B in / C in bytes/s | retransmitted / lost on the links |",
       "|---|---|---|---|---|---|---|"]
per_link = {}
for d in runs:
    nodes = d["nodes"]
    a = nodes[0]
    links = {l["peer"]: l for l in a["relay"]}
    def link(peer):
        l = links.get(peer)
        if not l: return "-"
        per_link.setdefault(peer, []).append((d["subscribers"], l["bytes_out_per_s"]))
        layers = ", ".join(f"L{k} {v:.0f}" for k, v in sorted(l["packets_out_per_s_by_layer"].items()))
        return f'{l["bytes_out_per_s"]:.0f} ({l["packets_out_per_s"]:.0f}: {layers})'
    ins = []
    rtx = lost = 0
    for n in nodes[1:]:
        l = {x["peer"]: x for x in n["relay"]}.get("bench-a")
        ins.append(f'{l["bytes_in_per_s"]:.0f}' if l else "-")
        lost += l["lost_packets"] if l else 0
    for l in a["relay"]:
        rtx += l["retransmissions"]
    placed = " / ".join(str(n["subscribers"]) for n in nodes)
    out.append(f'| {d["subscribers"]} ({placed}) | {d["subscribers_with_media"]} | {a["received_bytes_per_s"]} | {link("bench-b")} | {link("bench-c")} | {" / ".join(ins)} | {rtx} / {lost} |')
out += ["", "Relay bytes are RTP payload bytes, as is the ingest; layer L0 includes audio. A lower layer that"
        " crosses for a moment after a subscriber joins (before its keyframe on the top layer) shows here.", ""]
verdicts = []
for peer, series in sorted(per_link.items()):
    if len(series) < 2: continue
    (n0, b0), (n1, b1) = series[0], series[-1]
    change = (b1 / b0 - 1) * 100 if b0 else float("inf")
    ok = abs(change) <= 5
    verdicts.append(f'A->{peer[-1].upper()}: {b0:.0f} bytes/s at N={n0}, {b1:.0f} at N={n1}: {change:+.1f} % ({"within" if ok else "NOT within"} 5 %)')
out += ["Bytes per link against N: " + "; ".join(verdicts) + "." if verdicts else "Bytes per link: fewer than two runs with relay counters.", ""]
print("\n".join(out))
open(summary, "a").write("\n".join(out) + "\n")
PY
}

part_cpu() {
  local subs=$((ROOMS * K))
  echo "== 2. CPU per relayed packet: $ROOMS publishers on A (one room each), $K subscriber(s) per room per node, hold ${CPU_HOLD}s"
  wait_idle
  local idle ticks0 ticks1 hz
  hz=$(getconf CLK_TCK)
  ticks0=$(cpu_ticks "${PID[1]}")
  sleep 10
  ticks1=$(cpu_ticks "${PID[1]}")
  idle=$(python3 -c "print(round(($ticks1 - $ticks0) / $hz / 10 * 100, 2))")
  echo "   B idle: $idle % of a core"
  loadtest cpu-L1 "0" "$subs" "$ROOMS" "$CPU_HOLD" &&
    loadtest cpu-L2 "0" $((2 * subs)) "$ROOMS" "$CPU_HOLD" &&
    loadtest cpu-S2 "0 1" $((2 * subs)) "$ROOMS" "$CPU_HOLD" || { echo "   a CPU run failed; part 2 skipped" >&2; return 0; }
  python3 - "$SUMMARY" "$OUT/cpu-L1.json" "$OUT/cpu-L2.json" "$OUT/cpu-S2.json" "$QUOTA" "$idle" <<'PY'
import json, sys
summary, quota, idle_b = sys.argv[1], float(sys.argv[5]), float(sys.argv[6])
l1, l2, s2 = (json.load(open(f)) for f in sys.argv[2:5])
def cpu(d, i=None):
    nodes = d["nodes"] if i is None else [d["nodes"][i]]
    return sum(n["cpu_pct"] or 0 for n in nodes)
def fwd(d, i=None):
    nodes = d["nodes"] if i is None else [d["nodes"][i]]
    return sum(n["forwarded_pps"] or 0 for n in nodes)
us = lambda pct, pps: pct / 100 * 1e6 / pps if pps > 0 else float("nan")
a_l1, a_l2, a_s2, b_s2 = cpu(l1, 0), cpu(l2, 0), cpu(s2, 0), cpu(s2, 1)
copy_us = us(a_l2 - a_l1, fwd(l2, 0) - fwd(l1, 0))
link = {l["peer"]: l for l in s2["nodes"][0]["relay"]}.get("bench-b")
relay_pps = link["packets_out_per_s"] if link else 0
send_us = us(a_s2 - a_l1, relay_pps)
b_copies = fwd(s2, 1)
recv_us = ((b_s2 - idle_b) / 100 * 1e6 - b_copies * copy_us) / relay_pps if relay_pps else float("nan")
rows = [
    ("L1: A alone, K per room", l1, a_l1, None, fwd(l1, 0), None),
    ("L2: A alone, 2K per room", l2, a_l2, None, fwd(l2, 0), None),
    ("S2: A and B, K per room on each", s2, a_s2, b_s2, fwd(s2, 0), b_copies),
]
out = ["### CPU: a relayed packet against a locally forwarded copy", "",
       "| run | subscribers (with media) | loss % | A CPU % / forwarded pps | B CPU % / forwarded pps | relay A->B pkt/s |", "|---|---|---|---|---|---|"]
for name, d, ca, cb, fa, fb in rows:
    out.append(f'| {name} | {d["subscribers"]} ({d["subscribers_with_media"]}) | {d["loss_pct_hold"]} | {ca:.1f} / {fa:.0f} | '
               + (f"{cb:.1f} / {fb:.0f}" if cb is not None else "-") + f' | {relay_pps if d is s2 else "-"} |')
out += ["",
        f"- a locally forwarded copy: (A's CPU in L2 - L1) / (A's forwarded pps in L2 - L1) = **{copy_us:.2f} us**",
        f"- sending a relayed packet: (A's CPU in S2 - L1) / relay pps = **{send_us:.2f} us** (same ingest and local copies, plus the link)",
        f"- receiving a relayed packet: (B's CPU in S2 - its idle {idle_b:.2f} % - its {b_copies:.0f} copies/s x the copy cost) / relay pps = **{recv_us:.2f} us**",
        f"- a relayed packet, both ends: **{send_us + recv_us:.2f} us**, "
        + (f"{(send_us + recv_us) / copy_us:.1f}x a local copy" if copy_us > 0 else "(no positive copy cost to compare with)"),
        ""]
hot = [f'{run} {"AB"[i]} {n["cpu_pct"]} %' for run, d in (("L1", l1), ("L2", l2), ("S2", s2))
       for i, n in enumerate(d["nodes"]) if (n["cpu_pct"] or 0) > 0.8 * quota]
if hot:
    out += [f"Caution: a node ran near its cap of {quota:.0f} % ({', '.join(hot)}); its CPU figure may be clipped.", ""]
print("\n".join(out))
open(summary, "a").write("\n".join(out) + "\n")
PY
}

# verdict NAME SUBS: "pass", "fail" or "harness", then the figures of the run.
verdict() {
  python3 - "$OUT/$1.json" "$2" "$MAX_P50_MS" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); n = int(sys.argv[2]); max_p50 = float(sys.argv[3])
p50 = d["latency_ms"]["p50"]
ok = d["subscribers_with_media"] == n and d["loss_pct_hold"] < 1.0 and p50 is not None and p50 < max_p50
v = "pass" if ok else ("harness" if d["bottleneck"] == "harness" else "fail")
cpu = ", ".join(f'{x["cpu_pct"]}' for x in d["nodes"])
print(v, f'with media {d["subscribers_with_media"]}/{n}, loss over the hold {d["loss_pct_hold"]:.3f} %, '
      f'node CPU % [{cpu}], forwarded {d["forwarded_pps"]} pps, latency p50 {d["latency_ms"]["p50"]} ms, bottleneck {d["bottleneck"]}')
PY
}

# largest LABEL NODES START: doubling then bisecting; appends a row to $OUT/rooms.txt.
largest() {
  local label=$1 nodes=$2 n=$3 lo=0 hi=0 runs=0 note="" result v rest step
  echo "   -- $label"
  while [ $runs -lt 16 ]; do
    runs=$((runs + 1))
    loadtest "room-${label// /}-$n" "$nodes" "$n" 1 "$HOLD" || { note="run at $n wrote no report"; break; }
    result=$(verdict "room-${label// /}-$n" "$n")
    read -r v rest <<<"$result"
    echo "   $n subscribers: $v, $rest"
    case $v in
      pass) lo=$n ;;
      harness) note="the harness was the bottleneck at $n: a lower bound"; break ;;
      *) hi=$n ;;
    esac
    if [ $hi -eq 0 ]; then
      [ "$n" -ge "$ROOM_MAX" ] && { note="passed at ROOM_MAX"; break; }
      n=$((n * 2 > ROOM_MAX ? ROOM_MAX : n * 2))
    else
      step=$(( lo / 20 > ROOM_RES ? lo / 20 : ROOM_RES ))
      [ $((hi - lo)) -le "$step" ] && break
      n=$(((lo + hi) / 2))
    fi
  done
  echo "$label|$lo|$hi|$runs|$note" >>"$OUT/rooms.txt"
}

part_room() {
  echo "== 3. largest room: 1 publisher, N subscribers, each node capped at $QUOTA % of a core (hold ${HOLD}s)"
  : >"$OUT/rooms.txt"
  largest "1 node" "0" "$ROOM_START_1"
  largest "3 nodes" "0 1 2" "$ROOM_START_3"
  python3 - "$SUMMARY" "$OUT/rooms.txt" "$QUOTA" "$LAYER" "$MAX_P50_MS" <<'PY'
import sys
summary, rows, quota, layer, max_p50 = sys.argv[1:6]
out = ["### Largest room", "",
       f"One publisher, subscribers on the {layer} layer; each node capped at {quota} % of a core. Passing: every subscriber receives media, loss over the hold under 1 % and median latency under {max_p50} ms.", "",
       "| nodes | largest passing N | first failing N | runs | note |", "|---|---|---|---|---|"]
best = {}
for line in open(rows):
    label, lo, hi, runs, note = line.rstrip("\n").split("|")
    best[label] = int(lo)
    out.append(f'| {label} | {lo} | {hi if hi != "0" else "-"} | {runs} | {note or "-"} |')
if best.get("1 node") and "3 nodes" in best:
    out += ["", f'Three nodes hold {best["3 nodes"] / best["1 node"]:.2f}x the room one node holds.']
out.append("")
print("\n".join(out))
open(summary, "a").write("\n".join(out) + "\n")
PY
}

start_cluster
{
  echo "## Cluster: one room over three nodes"
  echo
  echo "\`QUICK=$QUICK QUOTA_PCT=$QUOTA LAYER=$LAYER benches/cluster.sh\` on $(git rev-parse --short HEAD 2>/dev/null || echo '?')," \
    "$(date -u +%F); nodes $SFU_BIN, harness $LOADTEST_BIN. Each run's command is in $OUT/*.cmd."
  echo
} >>"$SUMMARY"
for part in $PARTS; do "part_$part"; done
echo
echo "== summary ($SUMMARY)"
cat "$SUMMARY"
