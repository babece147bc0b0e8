#!/usr/bin/env bash
# Runs every fuzz target (or those named) under libFuzzer for SECONDS each, JOBS at a time,
# growing fuzz/corpus/<target>; crashes land in fuzz/artifacts/<target>/.
#   fuzz/run.sh [SECONDS] [JOBS] [TARGET...]       e.g. fuzz/run.sh 600 2
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on stable Rust, RUSTC_BOOTSTRAP=1 lets it pass
# its flags. No sanitizer: the targets are safe Rust, where AddressSanitizer finds nothing the
# panics do not, and it made the shard target 20 times slower. Logs: fuzz/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
jobs=${2:-2}
shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' Cargo.toml)
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O -s none
bin=target/x86_64-unknown-linux-gnu/release
mkdir -p logs
run_one() {
  local t=$1 rc=0
  mkdir -p "corpus/$t" "artifacts/$t"
  # -rss_limit_mb and -timeout bound each input; -max_total_time bounds the run.
  timeout $(( seconds + 60 )) "$bin/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$seconds" \
    -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 "corpus/$t" >"logs/$t.log" 2>&1 || rc=$?
  echo "$t: exit $rc, $(awk '/^stat::number_of_executed_units/ {print $2}' "logs/$t.log") runs, corpus $(ls "corpus/$t" | wc -l), crashes $(ls "artifacts/$t" | wc -l)"
}
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
done
wait
