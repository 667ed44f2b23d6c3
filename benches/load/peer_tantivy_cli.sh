#!/usr/bin/env bash
# Measures a peer on deflect's own benchmark catalog: tantivy-cli's `serve`, the raw
# tantivy server step 1 quotes at "about 3,900 requests/s" on another corpus. The same
# catalog, the same drafts (as plain words: tantivy-cli has no draft normalizer and its
# query parser rejects some punctuation) and the same wrk scenarios as run.sh, so the
# ratio of the two shows how much harder this catalog is than the one the peers' figures
# came from.
#
# Needs the `tantivy` binary of tantivy-cli 0.24 (tantivy 0.24):
#   cargo install tantivy-cli --version 0.24.0 --root /tmp/tantivy-cli
#   TANTIVY_CLI=/tmp/tantivy-cli/bin/tantivy bash benches/load/peer_tantivy_cli.sh
# and the catalog and drafts run.sh generates (it generates them when missing).
#
# The peer's index has title, summary and body, stored, with term frequencies and
# tantivy's English stemmer, and no positions (deflect keeps none either). Its server
# parses each query with tantivy's query parser over the three fields (OR), collects
# the top 3 by BM25 and counts all matches, and returns the stored documents. The typing
# mix is sent once more without deflect's English stop words, which deflect itself scores
# only for drafts with few content words.
#
# Environment: as run.sh (DEFLECT_LOAD_WORK, DEFLECT_LOAD_SECONDS,
# DEFLECT_LOAD_DOCUMENTS), plus TANTIVY_CLI (default: `tantivy` on PATH).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
load_dir="$repo_root/benches/load"
# shellcheck source=benches/load/common.sh
source "$load_dir/common.sh"
work="${DEFLECT_LOAD_WORK:-$repo_root/target/bench-load}"
seconds="${DEFLECT_LOAD_SECONDS:-20}"
documents="${DEFLECT_LOAD_DOCUMENTS:-100000}"
tantivy_cli="${TANTIVY_CLI:-tantivy}"
catalog="$work/catalog-$documents.ndjson"
drafts="$work/drafts-$documents.tsv"

log() { printf '[peer %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

command -v "$tantivy_cli" >/dev/null || {
  echo "tantivy-cli not found (TANTIVY_CLI=$tantivy_cli); see the top of this script" >&2
  exit 1
}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
if [[ ! -s "$catalog" || ! -s "$drafts" ]]; then
  mkdir -p "$work"
  log "generating the catalog"
  python3 "$load_dir/generate_catalog.py" --documents "$documents" \
    --catalog "$catalog" --drafts "$drafts"
fi

peer="$(mktemp -d "$work/peer.XXXXXX")"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$peer"
}
trap cleanup EXIT

# The peer's documents and its queries (kind, tab, request path), from deflect's files.
python3 - "$catalog" "$drafts" "$peer/documents.json" "$peer/queries.tsv" \
  "$repo_root/index_schema/stopwords/en.txt" "$peer/queries-without-stop-words.tsv" <<'PYTHON'
import json, re, sys, urllib.parse
catalog, drafts, documents_out, queries_out, stop_words_file, content_queries_out = sys.argv[1:]
stop_words = {
    line.strip() for line in open(stop_words_file) if line.strip() and not line.startswith("#")
}
with open(catalog) as source, open(documents_out, "w") as out:
    for line in source:
        document = json.loads(line)
        out.write(json.dumps({
            "title": document["title"],
            "summary": document.get("summary") or "",
            "body": document.get("body") or "",
        }) + "\n")
def write_query(out, kind, words):
    if words:
        out.write(f"{kind}\t/api/?q={urllib.parse.quote(' '.join(words))}&nhits=3\n")
with open(drafts) as source, open(queries_out, "w") as out, \
        open(content_queries_out, "w") as content_out:
    for line in source:
        kind, body = line.rstrip("\n").split("\t", 1)
        words = re.findall(r"[a-z0-9]+", json.loads(body)["text"].lower())
        write_query(out, kind, words)
        write_query(content_out, kind, [word for word in words if word not in stop_words])
PYTHON
grep -v '^long' "$peer/queries.tsv" >"$peer/typing-queries.tsv"
grep -v '^long' "$peer/queries-without-stop-words.tsv" >"$peer/typing-queries-without-stop-words.tsv"

# tantivy-cli asks for the schema field by field.
field_answers() { printf '%s\nText\nY\nN\nY\nY\nY\nN\n' "$1"; }
{ field_answers title; echo Y; field_answers summary; echo Y; field_answers body; echo N; } |
  "$tantivy_cli" new -i "$peer/index" >/dev/null

start="$(now_ns)"
/usr/bin/time -f "%M" -o "$peer/index-peak-kb" \
  "$tantivy_cli" index -i "$peer/index" -f "$peer/documents.json" -t 2 >/dev/null 2>&1
log "tantivy index: $documents documents in $(elapsed_s "$start") s, $(( $(tail -n1 "$peer/index-peak-kb") / 1024 )) MiB peak RSS; index $(du -sm "$peer/index" | cut -f1) MiB"

port="$(free_port)"
"$tantivy_cli" serve -i "$peer/index" --host 127.0.0.1 -p "$port" >"$peer/server.log" 2>&1 &
server_pid=$!
base_url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -sf --max-time 1 "$base_url/api/?q=password&nhits=1" >/dev/null 2>&1 && break
  sleep 0.2
done
log "server: pid $server_pid on $base_url; sample: $(curl -sf "$base_url$(sed -n '3p' "$peer/queries.tsv" | cut -f2)" | python3 -c 'import json, sys; a = json.load(sys.stdin); print("hits=%d of %d" % (len(a["hits"]), a["num_hits"]))')"

# Runs one wrk scenario against the peer and logs its result: scenario NAME QUERIES SECONDS ARGS...
scenario() {
  local name="$1"
  shift
  log "$(printf '%-34s' "$name") $(DEFLECT_LOAD_METHOD=GET measure_scenario "$@")"
}

DEFLECT_LOAD_DRAFTS="$peer/typing-queries.tsv" DEFLECT_LOAD_METHOD=GET \
  timeout 30 wrk -t1 -c4 -d5s -s "$load_dir/suggest.lua" "$base_url" >/dev/null
log "== scenarios ($seconds s each; latencies in ms)"
scenario "typing: one typist (1 conn)" "$peer/typing-queries.tsv" "$seconds" -t1 -c1
scenario "typing: saturation (2x32 conns)" "$peer/typing-queries.tsv" "$seconds" -t2 -c32
scenario "full: saturation (2x32 conns)" "$peer/queries.tsv" "$seconds" -t2 -c32
# Without keep-alive: each request on a new connection, so the server's ~44 ms stall of a
# kept-alive connection (see step 1) does not bound its rate.
scenario "typing: saturation, no keep-alive (2x32)" "$peer/typing-queries.tsv" "$seconds" -t2 -c32 -H "Connection: close"
scenario "typing: one typist, no keep-alive" "$peer/typing-queries.tsv" "$seconds" -t1 -c1 -H "Connection: close"
# The same drafts without deflect's English stop words: deflect scores stop words only
# for drafts with few content words, so this is the peer's cost for the words that decide.
scenario "no stop words: saturation, no keep-alive" "$peer/typing-queries-without-stop-words.tsv" "$seconds" -t2 -c32 -H "Connection: close"
scenario "no stop words: one typist, no keep-alive" "$peer/typing-queries-without-stop-words.tsv" "$seconds" -t1 -c1 -H "Connection: close"
log "memory after load: $(awk '/^VmRSS:/ { printf "%d MiB", $2 / 1024 }' "/proc/$server_pid/status")"
