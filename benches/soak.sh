#!/usr/bin/env bash
# Soak (docs/performance.md, "Soak"): one server process under steady load with churn for a long
# time; the goal is flat server memory and no growth in p99 latency.
#
# The server runs alone on core 0 and the harness alone on core 1 (as in "Forwarding throughput
# per server core"), one publisher and SUBS top-layer subscribers joining at 20/s. During the
# hold, CHURN subscribers per second leave cleanly and as many new ones join in their place
# (`sfu-loadtest --churn`), so the server keeps creating and tearing down participants at a
# constant population. At the end everyone leaves, and the server must be back to no
# participants and no rooms.
#
# "About 80 % of saturation": with SUBS=auto (the default) a 20 s calibration run of PROBE
# subscribers (default 300) on a fresh server measures the CPU share of the busier of the two
# cores (server or harness; each pinned to its own), extrapolates linearly to the subscriber
# count at which that core would be 100 % busy, and takes TARGET % of it (default 80). The soak
# itself then runs on a fresh server process. The churn's handshakes come on top of that.
#
# Usage (as root, from the repository root; builds: target/release/sfu and sfu-loadtest):
#   benches/soak.sh [DURATION] [SUBS|auto] [OUT]        defaults: 30m, auto, target/soak
# Environment: SOAK_CHURN (5/s), SOAK_LAYER (high), SOAK_TARGET_PCT (80), SOAK_PROBE_SUBS (300),
#   SOAK_MAX_SUBS (1000), SOAK_SERVER (./target/release/sfu),
#   SOAK_LOADTEST (./target/release/sfu-loadtest); not SFU_*, which the server reads as its config..
# Results in OUT: soak.json (report and per-second timeline), soak-*.png (soak-memory.png and
# soak-latency.png among them), soak.md (the table), soak.log (progress), server.log,
# summary.txt; calibrate.* with SUBS=auto.
set -euo pipefail
DURATION=${1:-30m}
SUBS=${2:-auto}
OUT=${3:-target/soak}
CHURN=${SOAK_CHURN:-5/s}
LAYER=${SOAK_LAYER:-high}
TARGET_PCT=${SOAK_TARGET_PCT:-80}
PROBE_SUBS=${SOAK_PROBE_SUBS:-300}
MAX_SUBS=${SOAK_MAX_SUBS:-1000}
SERVER_BIN=${SOAK_SERVER:-./target/release/sfu}
LOADTEST_BIN=${SOAK_LOADTEST:-./target/release/sfu-loadtest}
PORT=17880
URL=http://127.0.0.1:$PORT

if ! [[ $DURATION =~ ^[0-9]+[smh]?$ ]]; then
  echo "DURATION must be like 30m, 90s, 1h or a number of seconds: $DURATION" >&2
  exit 2
fi
if ! [[ $SUBS =~ ^([0-9]+|auto)$ ]]; then
  echo "SUBS must be a number or auto: $SUBS" >&2
  exit 2
fi
for bin in "$SERVER_BIN" "$LOADTEST_BIN"; do
  [ -x "$bin" ] || { echo "no executable $bin (cargo build --release --workspace, or set SOAK_SERVER / SOAK_LOADTEST)" >&2; exit 2; }
done

if [ -z "${SOAK_NETNS:-}" ]; then
  # Everything in a network namespace of its own, where only loopback exists.
  exec unshare -n env SOAK_NETNS=1 "$0" "$@"
fi
ip link set lo up
. "$(dirname "$0")/lib.sh"
mkdir -p "$OUT"

case $DURATION in
  *h) HOLD_S=$((${DURATION%h} * 3600)) ;;
  *m) HOLD_S=$((${DURATION%m} * 60)) ;;
  *) HOLD_S=${DURATION%s} ;;
esac

server=
start_server() { # LOGFILE: a fresh server on core 0, its pid in $server
  SFU_LOG=warn,sfu_signal::room=info SFU_HTTP_PORT=$PORT SFU_RTC__UDP_PORT_START=$((PORT + 2)) \
    taskset -c 0 "$SERVER_BIN" serve >"$1" 2>&1 &
  server=$!
  wait_for_port 127.0.0.1 $PORT || { tail -5 "$1" >&2; exit 1; }
}
stop_server() {
  [ -n "$server" ] || return 0
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=
}
trap stop_server EXIT

if [ "$SUBS" = auto ]; then
  echo "== calibration: $PROBE_SUBS subscribers on the $LAYER layer for 20 s on a fresh server"
  start_server "$OUT/calibrate-server.log"
  timeout 300 taskset -c 1 "$LOADTEST_BIN" livestream --url "$URL" --subscribers "$PROBE_SUBS" \
    --layer "$LAYER" --ramp 20/s --duration 20s --server-pid "$server" --json "$OUT/calibrate.json" \
    >"$OUT/calibrate.md" 2>"$OUT/calibrate.log" || true
  stop_server
  SUBS=$(python3 - "$OUT/calibrate.json" "$PROBE_SUBS" "$TARGET_PCT" "$MAX_SUBS" <<'PY'
import json, sys
path, probe, target, cap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
try:
    d = json.load(open(path))
except (OSError, ValueError) as e:
    sys.exit(f"calibration produced no report ({e}); see {path[:-5]}.log")
server, harness = d.get("server_cpu_pct") or 0.0, d.get("harness_cpu_pct") or 0.0
busiest = max(server, harness)
if busiest <= 0 or d.get("subscribers_with_media", 0) < probe:
    sys.exit(f"calibration failed: {d.get('subscribers_with_media')} of {probe} with media, CPU {server} / {harness} %")
saturation = probe * 100.0 / busiest
subs = min(cap, int(saturation * target / 100.0))
print(f"calibration: server {server:.1f} %, harness {harness:.1f} % of their cores at {probe} subscribers "
      f"-> saturation about {saturation:.0f}; soak at {target:.0f} %: {subs} subscribers"
      + (f" (capped at {cap})" if subs == cap else ""), file=sys.stderr)
print(subs)
PY
  )
fi

echo "== soak: $SUBS subscribers on the $LAYER layer, churn $CHURN, hold $DURATION ($HOLD_S s); results in $OUT"
start_server "$OUT/server.log"
status=0
# Bounded: the ramp (20/s) and settle take a few minutes at most on top of the hold.
timeout $((HOLD_S + 900)) taskset -c 1 "$LOADTEST_BIN" livestream --url "$URL" --subscribers "$SUBS" \
  --layer "$LAYER" --ramp 20/s --duration "$DURATION" --churn "$CHURN" --server-pid "$server" \
  --json "$OUT/soak.json" >"$OUT/soak.md" 2>"$OUT/soak.log" || status=$?
grep '^|' "$OUT/soak.md" || true
[ "$status" -eq 0 ] || echo "sfu-loadtest exited with status $status (see $OUT/soak.log)"
# Everyone has left: the server should come back to no participants and no rooms at once (a
# participant whose leave it missed would go after the 20 s departure timeout). Waits 40 s at most.
empty_after=never
for i in $(seq 0 40); do
  metrics=$(curl -s --max-time 2 "$URL/metrics" || true)
  participants=$(echo "$metrics" | awk '$1 == "sfu_participants" { print $2 }')
  rooms=$(echo "$metrics" | awk '$1 == "sfu_rooms" { print $2 }')
  if [ "$participants" = 0 ] && [ "$rooms" = 0 ]; then
    empty_after="${i} s"
    break
  fi
  sleep 1
done
rss_after=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status" 2>/dev/null || true)
stop_server

python3 - "$OUT/soak.json" "$OUT/server.log" "${participants:-?}" "${rooms:-?}" "${rss_after:-?}" "$empty_after" <<'PY' | tee "$OUT/summary.txt"
import json, re, statistics, sys
path, log, participants, rooms, rss_after, empty_after = sys.argv[1:7]
d = json.load(open(path))
hold = [p for p in d["timeline"] if p["phase"] == "hold"]
if not hold:
    sys.exit("no hold samples in the report")
t0, t1 = hold[0]["t"], hold[-1]["t"]
window = min(300.0, (t1 - t0) / 2)
first = [p for p in hold if p["t"] - t0 < window]
last = [p for p in hold if t1 - p["t"] < window]

def p99s(rows):
    return [p["latency_p99_ms"] for p in rows if p.get("latency_p99_ms") is not None]

def describe(rows):
    v = p99s(rows)
    return f"median {statistics.median(v):.2f} ms, max {max(v):.2f} ms" if v else "no samples"

rss = [(p["t"], p["server_rss_mb"]) for p in hold if p.get("server_rss_mb") is not None]
c = d.get("churn") or {}
print(f"soak: {d['subscribers']} subscribers, hold {d['duration_s']:.0f} s; churn {c.get('rate_per_s')}/s: "
      f"{c.get('leaves')} told to leave ({c.get('left')} left cleanly, {c.get('leave_errors')} on error), "
      f"{c.get('joins')} joins ({c.get('joined')} joined, {c.get('join_failures')} failed), {c.get('skipped')} skipped")
if rss:
    values = [r for _, r in rss]
    # Least-squares slope after the first window (warm-up), in MB per hour.
    tail = [(t, r) for t, r in rss if t - t0 >= window] or rss
    mt, mr = statistics.fmean(t for t, _ in tail), statistics.fmean(r for _, r in tail)
    den = sum((t - mt) ** 2 for t, _ in tail)
    slope = sum((t - mt) * (r - mr) for t, r in tail) / den * 3600 if den > 0 else 0.0
    print(f"server RSS over the hold: start {values[0]:.1f} MB, end {values[-1]:.1f} MB, max {max(values):.1f} MB; "
          f"trend after the first {window:.0f} s {slope:+.1f} MB/hour; {rss_after} MB after everyone left")
print(f"p99 latency per second, first {window:.0f} s of the hold: {describe(first)}")
print(f"p99 latency per second, last {window:.0f} s of the hold:  {describe(last)}")
a, b = p99s(first), p99s(last)
if a and b:
    print(f"p99 median last / first: {statistics.median(b) / statistics.median(a):.2f}")
print(f"latency over the hold p50 / p99: {d['latency_ms']['p50']} / {d['latency_ms']['p99']} ms; "
      f"loss {d['loss_pct_hold']} %; subscribers receiving at the end: {hold[-1]['subscribers_receiving']}")
text = re.sub(r"\x1b\[[0-9;]*m", "", open(log, errors="replace").read())
joined = len(re.findall(r"participant joined", text))
reasons = {}
for r in re.findall(r"participant left .*?reason=(\w+)", text):
    reasons[r] = reasons.get(r, 0) + 1
print(f"server log: {joined} participants joined, left by reason {reasons or '{}'}; "
      f"after the run: sfu_participants {participants}, sfu_rooms {rooms} (empty after: {empty_after})")
PY
exit "$status"
