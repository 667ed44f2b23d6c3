# Shared by run.sh, compare.sh and peer_tantivy_cli.sh (sourced, not run): timing, a free
# port, waiting for readiness and one wrk scenario against a server, so that deflect and
# its peer are measured the same way.
#
# The sourcing script sets `load_dir` (this directory), `base_url` and `server_pid`
# before calling `measure_scenario`.

now_ns() { date +%s%N; }
elapsed_s() { awk -v start="$1" -v end="$(now_ns)" 'BEGIN { printf "%.2f", (end - start) / 1e9 }'; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts `BINARY serve` on a free loopback port, its output in LOG_FILE, and sets
# `base_url` and `server_pid`. Usage: start_server BINARY LOG_FILE
start_server() {
  local port
  port="$(free_port)"
  export DEFLECT_SERVER__PORT="$port"
  base_url="http://127.0.0.1:$port"
  "$1" serve >"$2" 2>&1 &
  server_pid=$!
}

# Waits up to 60 s for `deflect serve` at $base_url (pid $server_pid) to answer /readyz;
# on failure prints LOG_FILE and returns 1. Usage: wait_until_ready LOG_FILE
wait_until_ready() {
  local log_file="$1"
  for _ in $(seq 1 300); do
    if curl -sf --max-time 1 "$base_url/readyz" >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "the server did not become ready; its log:" >&2
  cat "$log_file" >&2
  return 1
}

# Prints the value of KEY in a result line of `key=value` fields (measure_scenario's).
# Usage: result_field KEY LINE
result_field() {
  printf '%s\n' "$2" | tr ' ' '\n' | awk -F= -v key="$1" '$1 == key { print $2 }'
}

server_cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$server_pid/stat"
}

# Runs wrk with suggest.lua for DURATION seconds, sending the drafts of DRAFTS, and prints
# suggest.lua's result fields followed by the server's CPU time per request.
# Usage: measure_scenario DRAFTS DURATION WRK_ARGS...
# suggest.lua's other settings (DEFLECT_LOAD_KEY, DEFLECT_LOAD_RATE, DEFLECT_LOAD_METHOD)
# pass through the environment.
measure_scenario() {
  local scenario_drafts="$1" duration="$2"
  shift 2
  local ticks_before output line requests ticks_used cpu_ms
  ticks_before="$(server_cpu_ticks)"
  output="$(DEFLECT_LOAD_DRAFTS="$scenario_drafts" \
    timeout "$((duration + 30))" wrk "$@" -d"${duration}s" --timeout 5s -s "$load_dir/suggest.lua" "$base_url")"
  ticks_used="$(( $(server_cpu_ticks) - ticks_before ))"
  line="$(printf '%s\n' "$output" | grep '^DEFLECT_RESULT' | sed 's/^DEFLECT_RESULT //')"
  requests="$(result_field requests "$line")"
  cpu_ms="$(awk -v ticks="$ticks_used" -v hz="$(getconf CLK_TCK)" -v requests="$requests" \
    'BEGIN { printf "%.3f", (requests > 0 ? ticks * 1000 / hz / requests : 0) }')"
  printf '%s server_cpu_ms_per_request=%s\n' "$line" "$cpu_ms"
}
