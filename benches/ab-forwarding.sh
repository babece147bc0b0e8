#!/usr/bin/env bash
# Two server builds side by side on docs/performance.md's pinned run ("Forwarding throughput
# per server core"): the server alone on core 0, the harness alone on core 1, 640 top-layer
# subscribers joining at 20/s, a 20 s hold. The builds alternate, RUNS times each, so a VM whose
# speed drifts during the bench drifts for both; each run prints its forwarded packets per
# server CPU-second (the harness's forwarded_pps over the server's CPU share), and the last
# line is the ratio of the means (B over A). Reports and plots go to target/loadtest/ab/.
#
# Usage (as root, from the repository root):
#   benches/ab-forwarding.sh BINARY_A BINARY_B [RUNS] [SUBSCRIBERS]
# defaults: 3 runs each, 640 subscribers. The harness is ./target/release/sfu-loadtest.
set -euo pipefail
A=${1:?binary A}
B=${2:?binary B}
RUNS=${3:-3}
SUBSCRIBERS=${4:-640}
OUT=target/loadtest/ab
mkdir -p "$OUT"

if [ -z "${AB_NETNS:-}" ]; then
  # Everything in a network namespace of its own, where only loopback exists.
  exec unshare -n env AB_NETNS=1 "$0" "$@"
fi
ip link set lo up
. "$(dirname "$0")/lib.sh"

run_one() { # binary label -> prints packets per server CPU-second
  local bin=$1 label=$2 json=$OUT/$2.json
  SFU_LOG=warn SFU_HTTP_PORT=17880 SFU_RTC__UDP_PORT_START=17882 taskset -c 0 "$bin" serve >/dev/null 2>&1 &
  local pid=$!
  wait_for_port 127.0.0.1 17880
  timeout 300 taskset -c 1 ./target/release/sfu-loadtest livestream --url http://127.0.0.1:17880 \
    --subscribers "$SUBSCRIBERS" --layer high --ramp 20/s --duration 20s --server-pid "$pid" \
    --json "$json" >"$OUT/$label.txt" 2>&1 || true
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  python3 - "$json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
    cpu = r["server_cpu_pct"] / 100
    print(f'{r["forwarded_pps"] / cpu:.0f} {r["forwarded_pps"]:.0f} {r["server_cpu_pct"]:.1f} {r["loss_pct"]:.3f}' if cpu > 0 else "0 - - -")
except (OSError, KeyError, ValueError, TypeError):
    print("0 - - -")
PY
}

declare -a a_runs b_runs
for i in $(seq "$RUNS"); do
  read -r a pps cpu loss < <(run_one "$A" "a$i")
  echo "run $i A: $a pkt per server CPU-second ($pps pkt/s at $cpu % CPU, loss $loss %)"
  read -r b pps cpu loss < <(run_one "$B" "b$i")
  echo "run $i B: $b pkt per server CPU-second ($pps pkt/s at $cpu % CPU, loss $loss %)"
  a_runs+=("$a"); b_runs+=("$b")
done
mean() { local s=0; for v in "$@"; do s=$((s + v)); done; echo $((s / $#)); }
ma=$(mean "${a_runs[@]}"); mb=$(mean "${b_runs[@]}")
echo "mean A $ma, mean B $mb"
awk -v a="$ma" -v b="$mb" 'BEGIN { if (a > 0) printf "ratio B/A %.3f\n", b / a; else print "ratio B/A ?" }'
