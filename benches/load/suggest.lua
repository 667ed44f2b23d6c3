-- wrk script for POST /v1/suggest: sends the drafts of a drafts file in turn (every
-- thread from its own starting point) and prints one DEFLECT_RESULT line with the
-- request rate and latency percentiles when wrk is done.
--
-- Environment (read by every thread's Lua state):
--   DEFLECT_LOAD_DRAFTS  drafts file: per line a kind, a tab and the JSON request body
--   DEFLECT_LOAD_KEY     API key with the suggest scope (default demo-suggest-key)
--   DEFLECT_LOAD_RATE    when set, each wrk thread paces its requests to this many per
--                        second (Debian's wrk 4 has no -R): every request, on whichever
--                        connection is free, claims the next slot of a fixed schedule and
--                        waits for it. Latency is then measured from the moment a request
--                        is written, not from its slot, so time a request spends waiting
--                        for a free connection is not counted (no coordinated-omission
--                        correction); run with enough connections that one is always free.
--   DEFLECT_LOAD_METHOD  GET sends the drafts file's second column as a request path
--                        without a body, for a peer's query API (peer_tantivy_cli.sh);
--                        default POST to /v1/suggest

local drafts_path = os.getenv("DEFLECT_LOAD_DRAFTS") or "drafts.tsv"
local api_key = os.getenv("DEFLECT_LOAD_KEY") or "demo-suggest-key"
local rate_per_thread = tonumber(os.getenv("DEFLECT_LOAD_RATE") or "")
local sends_paths = os.getenv("DEFLECT_LOAD_METHOD") == "GET"

local thread_count = 0

-- Runs in the main state, once per thread, before the threads start.
function setup(thread)
  thread:set("thread_number", thread_count)
  thread_count = thread_count + 1
end

local bodies = {}
local next_body = 1

function init(args)
  for line in io.lines(drafts_path) do
    local tab = line:find("\t", 1, true)
    if tab then
      bodies[#bodies + 1] = line:sub(tab + 1)
    end
  end
  if #bodies == 0 then
    error("no drafts in " .. drafts_path)
  end
  -- Threads start far apart in the list so they do not send the same drafts together.
  next_body = ((thread_number or 0) * 7919) % #bodies + 1
  if sends_paths then
    wrk.method = "GET"
  else
    wrk.method = "POST"
    wrk.path = "/v1/suggest"
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Authorization"] = "Bearer " .. api_key
  end
end

function request()
  local line = bodies[next_body]
  next_body = next_body % #bodies + 1
  if sends_paths then
    return wrk.format(nil, line)
  end
  return wrk.format(nil, nil, nil, line)
end

if rate_per_thread and rate_per_thread > 0 then
  local ffi = require("ffi")
  ffi.cdef([[
    typedef struct { long tv_sec; long tv_nsec; } deflect_timespec;
    int clock_gettime(int clock_id, deflect_timespec *time);
  ]])
  local CLOCK_MONOTONIC = 1
  local timespec = ffi.new("deflect_timespec")
  local function now_ms()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
    return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
  end

  local interval_ms = 1000 / rate_per_thread
  local next_slot_ms = nil

  -- wrk calls this after each response, before the connection sends its next request;
  -- it returns how many milliseconds to wait.
  function delay()
    local now = now_ms()
    local slot = next_slot_ms or now
    if slot < now then
      slot = now
    end
    next_slot_ms = slot + interval_ms
    return math.floor(slot - now)
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  local function ms(microseconds)
    return microseconds / 1000
  end
  io.write(string.format(
    "DEFLECT_RESULT requests=%d seconds=%.2f rate=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
      .. "p999_ms=%.3f max_ms=%.3f mean_ms=%.3f non_2xx=%d connect_errors=%d read_errors=%d "
      .. "write_errors=%d timeouts=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
    ms(latency:percentile(99.9)), ms(latency.max), ms(latency.mean),
    errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end
