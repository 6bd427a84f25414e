-- Event batches of BATCH events for assigned subjects, each with a fresh event id.
-- TIMES=ms (default) stamps each batch with the instant it is built, to the
-- millisecond, as SDKs do (JavaScript's toISOString); TIMES=s to the whole
-- second, the worst case for a table in time order: a second's events then
-- share one occurrence and interleave by subject hash.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } pg_timeval;
int gettimeofday(pg_timeval *tv, void *tz);
]]
local clock = ffi.new("pg_timeval")
local whole_seconds = os.getenv("TIMES") == "s"
local pool = tonumber(os.getenv("REPEAT_POOL"))
local batch = tonumber(os.getenv("BATCH") or "500")
-- RUN tells runs on the same database apart: a repeated id is a duplicate, which stores nothing.
local run = os.getenv("RUN") or "0"
local counter = 0
local threads = {}
local tag = "0"

function setup(thread)
  thread:set("tag", tostring(#threads))
  table.insert(threads, thread)
end

function init(args)
  tag = wrk.thread:get("tag")
end

function request()
  local parts = {}
  ffi.C.gettimeofday(clock, nil)
  local now = os.date("!%Y-%m-%dT%H:%M:%S", tonumber(clock.tv_sec))
  if whole_seconds then
    now = now .. "Z"
  else
    now = now .. string.format(".%03dZ", math.floor(tonumber(clock.tv_usec) / 1000))
  end
  for i = 1, batch do
    counter = counter + 1
    parts[i] = '{"event_id":"t' .. run .. '-' .. tag .. '-' .. counter .. '","user_id":"u' .. ((counter * 7919) % pool + 1) ..
      '","name":"purchase","value":12.5,"occurred_at":"' .. now .. '"}'
  end
  local body = '{"events":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/api/v1/events", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("TOKEN")}, body)
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("events: HTTP " .. status .. "\n")
  end
end
