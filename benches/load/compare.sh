#!/usr/bin/env bash
# Compares deflect builds under the same load, alternately: the machines these benchmarks
# run on change speed by tens of percent from one minute to the next, so only runs
# interleaved in time can be compared. Each round starts every build in turn on its own
# index, warms it for 3 s, drives POST /v1/suggest at saturation (2 threads, 32
# connections) for SECONDS with the drafts of DRAFTS, and prints the request rate and the
# server's CPU time per request (from /proc, as run.sh reports it).
#
# Usage: compare.sh DRAFTS SECONDS ROUNDS BINARY=INDEX_DIRECTORY...
#
#   bash benches/load/compare.sh target/bench-load/typing-drafts-2000.tsv 5 6 \
#     /tmp/deflect-before=/tmp/index-before /tmp/deflect-after=/tmp/index-after
#
# Build the indexes first with each binary's `deflect index` (an index is the build's
# own when the change touches what is indexed). Loopback only, Redis at a closed port
# (suggestions do not need it), every wait bounded, each server stopped after its run.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
load_dir="$repo_root/benches/load"
# shellcheck source=benches/load/common.sh
source "$load_dir/common.sh"
cd "$repo_root"

if [[ $# -lt 4 ]]; then
  sed -n '2,16p' "$0" >&2
  exit 2
fi
drafts="$1"
seconds="$2"
rounds="$3"
shift 3

export DEFLECT_DEMO__LOAD_WHEN_EMPTY=false
export DEFLECT_LOG__FILTER=warn
export DEFLECT_CONTENT_LOG__ENABLED=false
export DEFLECT_REDIS__URL="redis://127.0.0.1:9/"
export DEFLECT_SERVER__HOST=127.0.0.1

server_pid=""
spool_dir="$(mktemp -d)"
stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
trap 'stop_server; rm -rf "$spool_dir"' EXIT INT TERM

for round in $(seq 1 "$rounds"); do
  for build in "$@"; do
    binary="${build%%=*}"
    export DEFLECT_INDEX__PATH="${build#*=}"
    # A missing directory would be created empty, and an empty index answers fast.
    if [[ ! -d "$DEFLECT_INDEX__PATH" ]]; then
      echo "no index at $DEFLECT_INDEX__PATH: build it with $binary index first" >&2
      exit 1
    fi
    export DEFLECT_EVENTS__SPOOL_PATH="$spool_dir/events.spool"
    start_server "$binary" "$spool_dir/server.log"
    wait_until_ready "$spool_dir/server.log"
    DEFLECT_LOAD_DRAFTS="$drafts" timeout 30 wrk -t1 -c4 -d3s -s "$load_dir/suggest.lua" "$base_url" >/dev/null
    line="$(DEFLECT_LOAD_KEY=demo-suggest-key measure_scenario "$drafts" "$seconds" -t2 -c32)"
    printf 'round=%s binary=%s index=%s rate=%s server_cpu_ms_per_request=%s non_2xx=%s\n' \
      "$round" "$binary" "$DEFLECT_INDEX__PATH" "$(result_field rate "$line")" \
      "$(result_field server_cpu_ms_per_request "$line")" "$(result_field non_2xx "$line")"
    stop_server
    rm -f "$spool_dir"/events.spool*
  done
done
