#!/usr/bin/env bash
# One media shard against two, each shard held to the same slice of a core (docs/performance.md,
# "One shard and two").
#
# Two shards on two dedicated cores plus a load harness need three cores; this bench needs two.
# Shard N runs on core N % 2 in a CPU cgroup of its own, capped at QUOTA percent of a core (CFS
# bandwidth, 5 ms period) and at the highest priority, so it behaves like a core of QUOTA
# percent speed that the harness, spread over both cores with the rest, never delays. For 1 and
# then 2 shards the bench raises the number of top-layer subscribers by a step until a run
# fails: loss over the hold at 0.5 % or more, a subscriber without media or below the top
# layer, a median latency over 20 ms (a queue growing), or the server shedding a layer
# (`sfu_shed_level_changes_total`). A shard count's saturation is the forwarded packets/s of
# its last run that passed; the last line is `scaling <x>`, two shards' saturation over one's.
#
# Bandwidth estimation is off by default here (BANDWIDTH_ESTIMATION=true to keep it): a capped
# shard pauses for up to 3 ms every 5 ms, which the delay-based estimator reads as congestion,
# and it lowers layers that a real core would have carried.
#
# Usage (as root, from the repository root, after cargo build --release --workspace):
#   benches/shard-scaling.sh [QUOTA_PCT] [HOLD] [STEP] [START]
# defaults: 40 % of a core, 15 s hold, 20 subscribers per shard per step, starting at 300 per
# shard. STEP 0 makes one run per shard count; QUOTA_PCT 100 leaves the shards uncapped.
# Environment: PERIOD_US, SHARD_COUNTS (default "1 2"), HARNESS_CORES (default 0,1).
set -euo pipefail
QUOTA=${1:-40}
HOLD=${2:-15}
STEP=${3:-20}
START=${4:-300}
PORT=17880
OUT=target/loadtest
CGROUP=/sys/fs/cgroup/cpu
# A short period keeps the pauses short (a capped shard waits at most 60 % of it); the kernel
# takes no quota under 1 ms, and shorter periods cost more than they save.
PERIOD_US=${PERIOD_US:-5000}
if [ $((QUOTA * PERIOD_US / 100)) -lt 1000 ]; then
  echo "QUOTA_PCT $QUOTA of a ${PERIOD_US} us period is under the kernel's 1 ms minimum: raise PERIOD_US" >&2
  exit 1
fi

if [ -z "${SHARD_SCALING_NETNS:-}" ]; then
  if [ ! -f "$CGROUP/cpu.cfs_quota_us" ]; then
    echo "needs the cgroup v1 cpu controller at $CGROUP (CFS bandwidth per thread)" >&2
    exit 1
  fi
  exec unshare -n env SHARD_SCALING_NETNS=1 "$0" "$@"
fi
ip link set lo up
mkdir -p "$OUT"
# The shard cgroups go away with the bench, also when it stops early (they are empty by then).
trap 'rmdir "$CGROUP"/sfu-bench-shard-* 2>/dev/null || true' EXIT

# shellcheck source=benches/lib.sh
. "$(dirname "$0")/lib.sh"

# Puts each shard thread of process $1 in a cgroup of its own, capped at QUOTA % of a core.
cap_shards() {
  local found=0
  for task in /proc/"$1"/task/*; do
    local name
    name=$(cat "$task/comm" 2>/dev/null || true)
    case "$name" in
      media-shard-*)
        local group="$CGROUP/sfu-bench-${name#media-}"
        mkdir -p "$group"
        local tid=${task##*/} core=$(( ${name#media-shard-} % 2 ))
        echo $PERIOD_US >"$group/cpu.cfs_period_us" &&
          echo $(( QUOTA >= 100 ? -1 : QUOTA * PERIOD_US / 100 )) >"$group/cpu.cfs_quota_us" &&
          echo "$tid" >"$group/tasks" &&
          taskset -p -c $core "$tid" >/dev/null &&
          renice -n -20 -p "$tid" >/dev/null || return 1
        found=$((found + 1))
        ;;
    esac
  done
  echo "$found"
}

# run SHARDS SUBS: one server, one harness run; prints "pass|fail pps" and keeps the JSON.
run() {
  local shards=$1 subs=$2 json="$OUT/shard-scaling-$1-$2.json"
  SFU_LOG=warn SFU_HTTP_PORT=$PORT SFU_RTC__UDP_PORT_START=$((PORT + 2)) SFU_RTC__SHARDS=$shards SFU_RTC__BANDWIDTH_ESTIMATION=${BANDWIDTH_ESTIMATION:-false} \
    taskset -c 0 ./target/release/sfu >"$OUT/shard-scaling-server.log" 2>&1 &
  local server=$!
  wait_for_port 127.0.0.1 $PORT
  local capped
  capped=$(cap_shards $server)
  if [ "$capped" != "$shards" ]; then
    echo "expected $shards shard threads, capped $capped" >&2
    kill $server
    return 1
  fi
  taskset -c ${HARNESS_CORES:-0,1} ./target/release/sfu-loadtest livestream --url "http://127.0.0.1:$PORT" --subscribers "$subs" \
    --layer high --ramp 20/s --duration "${HOLD}s" --server-pid $server --json "$json" >/dev/null 2>&1 || true
  local sheds
  sheds=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^sfu_shed_level_changes_total/ {s += $2} END {print s + 0}')
  kill $server
  wait $server 2>/dev/null || true
  python3 - "$json" "$subs" "$sheds" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
subs, sheds = int(sys.argv[2]), float(sys.argv[3])
hold = [p for p in d["timeline"] if p["phase"] == "hold" and p["subscribers_receiving"]]
# The top layer with audio is about 1600 kbit/s, the middle one about 600.
kbps = sum(p["rx_kbps"] / p["subscribers_receiving"] for p in hold) / max(len(hold), 1)
# A shard that keeps up forwards within a few ms; a median over 20 ms is a queue growing.
ok = (d["subscribers_with_media"] == subs and d["loss_pct_hold"] < 0.5 and sheds == 0 and kbps >= 1400
      and d["latency_ms"]["p50"] < 20)
print("pass" if ok else "fail", round(d["forwarded_pps"]), f'loss {d["loss_pct_hold"]:.3f} %, with media {d["subscribers_with_media"]}/{subs}, '
      f'shed changes {sheds:.0f}, {kbps:.0f} kbit/s per subscriber, latency p50/p99 {d["latency_ms"]["p50"]:.1f}/{d["latency_ms"]["p99"]:.1f} ms '
      f'(server forward delay {d["server_forward_delay_ms"]["p50"]:.2f}/{d["server_forward_delay_ms"]["p99"]:.2f}), server CPU {d["server_cpu_pct"]:.1f} %, harness CPU {d["harness_cpu_pct"]:.1f} %, bottleneck {d["bottleneck"]}')
PY
}

declare -A saturation
for shards in ${SHARD_COUNTS:-1 2}; do
  echo "== $shards shard(s), each capped at $QUOTA % of a core; harness on cores ${HARNESS_CORES:-0,1}"
  subs=$((shards * START))
  best=0
  while :; do
    result=$(run "$shards" "$subs")
    echo "   $subs subscribers: $result"
    read -r verdict pps _ <<<"$result"
    [ "$verdict" = pass ] || break
    best=$pps
    [ "$STEP" -gt 0 ] || break
    subs=$((subs + shards * STEP))
  done
  saturation[$shards]=$best
  echo "   saturation: $best forwarded packets/s"
done
if [ "${saturation[1]:-0}" -gt 0 ] && [ -n "${saturation[2]:-}" ]; then
  python3 -c "print(f'scaling {${saturation[2]} / ${saturation[1]}:.2f}')"
elif [ -n "${saturation[1]:-}" ] && [ -n "${saturation[2]:-}" ]; then
  echo "scaling unknown: one shard did not pass its first run"
fi
