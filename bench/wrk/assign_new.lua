-- First-time assignments: every request asks for a subject never seen before.
-- Thread i walks user ids i*10^7, i*10^7+1, ...; all of them have a granted consent.
local counter = tonumber(os.getenv("START") or "0")
local base = 0
local threads = {}

function setup(thread)
  thread:set("base", #threads * 10000000)
  table.insert(threads, thread)
end

function init(args)
  base = tonumber(wrk.thread:get("base"))
end

function request()
  counter = counter + 1
  local body = '{"experiment":"load","user_id":"u' .. (base + counter) .. '"}'
  return wrk.format("POST", "/api/v1/assign", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("TOKEN")}, body)
end
