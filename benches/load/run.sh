#!/usr/bin/env bash
# Load benchmark of `deflect serve`: builds the release binary, generates the 100,000-document
# benchmark catalog, loads it with `deflect index` (timed), starts the server on a free
# loopback port with a temporary index, and drives POST /v1/suggest with wrk:
#
#   1. keep-alive probe: 1 connection for 5 s; a p99 near 40-44 ms would mean Nagle /
#      delayed-ACK stalls on a kept-alive connection
#   2. one typist:       1 thread, 1 connection
#   3. fixed rate:       1,000 requests/s paced by suggest.lua (Debian's wrk has no -R)
#   4. saturation:       2 threads, 32 and then 64 connections
#
# with two sets of drafts: the full mix (40% as-you-type, 35% short, 15% long, 10% with a
# typo) and the typing mix (the same without the long drafts), and reports the server's
# resident memory (VmRSS, VmHWM) before and after the load.
# Loopback only; every wait and every wrk run is bounded in time; the server is stopped on
# exit. Results are printed and appended to $WORK/results.txt.
#
# Environment:
#   DEFLECT_LOAD_WORK      work directory (default target/bench-load); the generated
#                          catalog is kept there and reused while the generator is unchanged
#   DEFLECT_LOAD_SECONDS   duration of each measured scenario (default 20)
#   DEFLECT_LOAD_DOCUMENTS catalog size (default 100000)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
load_dir="$repo_root/benches/load"
# shellcheck source=benches/load/common.sh
source "$load_dir/common.sh"
cd "$repo_root"

work="${DEFLECT_LOAD_WORK:-$repo_root/target/bench-load}"
seconds="${DEFLECT_LOAD_SECONDS:-20}"
documents="${DEFLECT_LOAD_DOCUMENTS:-100000}"
tenant="demo"
api_key="demo-suggest-key"
mkdir -p "$work"
results="$work/results.txt"

log() { printf '%s\n' "$*" | tee -a "$results"; }

server_pid=""
index_dir=""
spool_dir=""
last_line=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  if [[ -n "$index_dir" ]]; then
    rm -rf "$index_dir"
  fi
  if [[ -n "$spool_dir" ]]; then
    rm -rf "$spool_dir"
  fi
}
trap cleanup EXIT INT TERM

log "== deflect load benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ)"
log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"

if ! command -v wrk >/dev/null; then
  echo "wrk is missing; installing Debian's wrk" >&2
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "run as root or install wrk (apt-get install -y wrk) first" >&2
    exit 1
  fi
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
log "wrk: $(wrk -v 2>&1 | head -n1)"

echo "building the release binary" >&2
cargo build --release --quiet --bin deflect
deflect="$repo_root/target/release/deflect"

catalog="$work/catalog-$documents.ndjson"
drafts="$work/drafts-$documents.tsv"
generator_inputs=("$load_dir/generate_catalog.py" "$repo_root"/benches/catalog/*.txt)
needs_generation=false
for input in "${generator_inputs[@]}"; do
  if [[ ! -s "$catalog" || ! -s "$drafts" || "$input" -nt "$catalog" ]]; then
    needs_generation=true
  fi
done
if $needs_generation; then
  echo "generating the catalog (about a minute for 100,000 documents)" >&2
  start="$(now_ns)"
  python3 "$load_dir/generate_catalog.py" --documents "$documents" \
    --catalog "$catalog.partial" --drafts "$drafts"
  mv "$catalog.partial" "$catalog"
  log "generated the catalog in $(elapsed_s "$start") s"
fi
typing_drafts="$work/typing-drafts-$documents.tsv"
grep -v '^long' "$drafts" >"$typing_drafts"
log "catalog: $documents documents, $(du -m "$catalog" | cut -f1) MiB of NDJSON; drafts: $(wc -l <"$drafts") ($(cut -f1 "$drafts" | sort | uniq -c | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2}')); typing mix: $(wc -l <"$typing_drafts") drafts"

index_dir="$(mktemp -d "$work/index.XXXXXX")"
export DEFLECT_INDEX__PATH="$index_dir"
export DEFLECT_DEMO__LOAD_WHEN_EMPTY=false
export DEFLECT_LOG__FILTER=warn
export DEFLECT_SERVER__HOST=127.0.0.1
# An unused loopback port: the readiness probe finds Redis down at once and no Redis of
# the machine is touched. Suggestions do not need Redis.
export DEFLECT_REDIS__URL="redis://127.0.0.1:9/"
# One instance: the index is not shared through the content log in Redis.
export DEFLECT_CONTENT_LOG__ENABLED=false
# With Redis down, every suggestion's event goes to the spool. A spool of its own per run:
# the default one (data/spool/) kept the events of every earlier run, filled up to its
# 256 MiB after a few runs, and from then on the server dropped events and logged a
# warning per request, which is not the path being measured.
spool_dir="$(mktemp -d "$work/spool.XXXXXX")"
export DEFLECT_EVENTS__SPOOL_PATH="$spool_dir/events.spool"

echo "indexing" >&2
start="$(now_ns)"
if [[ -x /usr/bin/time ]]; then
  /usr/bin/time -f "%M" -o "$work/index-peak-kb" "$deflect" index --tenant "$tenant" "$catalog" >&2
  index_peak="$(( $(tail -n1 "$work/index-peak-kb") / 1024 )) MiB peak RSS"
else
  "$deflect" index --tenant "$tenant" "$catalog" >&2
  index_peak="peak RSS not measured (no /usr/bin/time)"
fi
log "deflect index: $documents documents in $(elapsed_s "$start") s, $index_peak; index $(du -sm "$index_dir" | cut -f1) MiB"

start_server "$deflect" "$work/server.log"
wait_until_ready "$work/server.log"
log "server: pid $server_pid on $base_url, $(curl -sf --max-time 2 "$base_url/readyz")"

# VmRSS counts the mapped index pages (RssFile) as well as the heap (RssAnon).
memory() {
  awk '/^(VmRSS|VmHWM|RssAnon|RssFile):/ { printf "%s %d MiB  ", $1, $2 / 1024 }
       /^Threads:/ { printf "%s %d", $1, $2 }' "/proc/$server_pid/status"
}

sample="$(curl -sf --max-time 5 -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' \
  -d "$(sed -n '3p' "$drafts" | cut -f2)" "$base_url/v1/suggest")"
log "sample answer: $(printf '%s' "$sample" | python3 -c 'import json, sys; a = json.load(sys.stdin); print("abstained=%s results=%d confidence=%s" % (a["abstained"], len(a["results"]), a["confidence"]))')"

# Warms the page cache and the process before anything is measured.
DEFLECT_LOAD_DRAFTS="$typing_drafts" timeout 30 wrk -t1 -c4 -d5s -s "$load_dir/suggest.lua" "$base_url" >/dev/null
log "memory after warm-up: $(memory)"

# Runs one wrk scenario and logs its DEFLECT_RESULT line: scenario NAME DRAFTS SECONDS ARGS...
scenario() {
  local name="$1"
  shift
  last_line="$(DEFLECT_LOAD_KEY="$api_key" measure_scenario "$@")"
  log "$(printf '%-34s' "$name") $last_line"
}

# Returns one field of the last scenario's result line.
last_result() {
  result_field "$1" "$last_line"
}

log "== scenarios ($seconds s each; latencies in ms, measured by wrk from write to response)"
scenario "typing: keep-alive probe (1 conn)" "$typing_drafts" 5 -t1 -c1
# Stalls of a kept-alive connection (Nagle's algorithm meeting delayed ACKs) cost about
# 40 ms on Linux and hit every request, so they show in the median, not just the tail.
if awk -v p50="$(last_result p50_ms)" -v p90="$(last_result p90_ms)" 'BEGIN { exit !(p50 < 30 && p90 < 30) }'; then
  log "keep-alive stalls: none seen (p50 $(last_result p50_ms) ms, p90 $(last_result p90_ms) ms)"
else
  log "keep-alive stalls: SUSPECTED (p50 $(last_result p50_ms) ms, p90 $(last_result p90_ms) ms)"
fi
scenario "typing: one typist (1 conn)" "$typing_drafts" "$seconds" -t1 -c1
scenario "full: one typist (1 conn)" "$drafts" "$seconds" -t1 -c1
DEFLECT_LOAD_RATE=1000 scenario "typing: fixed 1000/s (16 conns)" "$typing_drafts" "$seconds" -t1 -c16
DEFLECT_LOAD_RATE=1000 scenario "full: fixed 1000/s (16 conns)" "$drafts" "$seconds" -t1 -c16
scenario "typing: saturation (2x32 conns)" "$typing_drafts" "$seconds" -t2 -c32
scenario "typing: saturation (2x64 conns)" "$typing_drafts" "$seconds" -t2 -c64
scenario "full: saturation (2x32 conns)" "$drafts" "$seconds" -t2 -c32
log "memory after load: $(memory)"
log "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
