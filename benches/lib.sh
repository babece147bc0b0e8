# Shell helpers shared by the bench scripts (sourced, not run).

# wait_for_port HOST PORT: returns once something accepts TCP connections there (10 s at most).
wait_for_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1:$2" >&2
  return 1
}
