-- Mixed traffic for the soak: out of every 1000 requests, 700 repeat and 100
-- first-time assignments, 150 event batches of 50, 30 consent grants, 19
-- withdrawals, 1 read of the results (the dashboards' rate is people's).
-- Tokens: INGEST and ANALYST; subjects u1..uPOOL hold consent and an
-- assignment already.
local pool = tonumber(os.getenv("POOL"))
local ingest = "Bearer " .. os.getenv("INGEST")
local analyst = "Bearer " .. os.getenv("ANALYST")
local json = {["Content-Type"] = "application/json", ["Authorization"] = ingest}
-- ROUND tells the wrk runs of one soak apart, so event ids stay unique.
local round = os.getenv("ROUND") or "0"
local counter = 0
local threads = {}
local tag = "0"
local counts = {}

function setup(thread)
  thread:set("tag", tostring(#threads))
  table.insert(threads, thread)
end

function init(args)
  tag = wrk.thread:get("tag")
  math.randomseed(1000 + tonumber(tag))
end

local function consent(user, status, now)
  return '{"user_id":"' .. user .. '","purpose":"personalize.content","basis":"consent","status":"' .. status ..
    '","notice_id":"pn","notice_version":1,"source":{"channel":"api","method":"click"},"collected_at":"' .. now .. '"}'
end

function request()
  counter = counter + 1
  local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local pick = counter % 1000
  if pick < 700 then
    local user = "u" .. math.random(1, pool)
    return wrk.format("POST", "/api/v1/assign", json, '{"experiment":"soak","user_id":"' .. user .. '"}')
  elseif pick < 800 then
    -- New people: some granted consent below, most never asked.
    local user = "n" .. tag .. "-" .. math.random(1, 1000000)
    return wrk.format("POST", "/api/v1/assign", json, '{"experiment":"soak","user_id":"' .. user .. '"}')
  elseif pick < 950 then
    local parts = {}
    for i = 1, 50 do
      parts[i] = '{"event_id":"s' .. round .. '-' .. tag .. '-' .. counter .. '-' .. i .. '","user_id":"u' .. math.random(1, pool) ..
        '","name":"purchase","value":9.5,"occurred_at":"' .. now .. '"}'
    end
    return wrk.format("POST", "/api/v1/events", json, '{"events":[' .. table.concat(parts, ",") .. ']}')
  elseif pick < 980 then
    return wrk.format("POST", "/api/v1/consents", json, consent("n" .. tag .. "-" .. math.random(1, 1000000), "granted", now))
  elseif pick < 999 then
    return wrk.format("POST", "/api/v1/consents", json, consent("u" .. math.random(1, pool), "withdrawn", now))
  else
    return wrk.format("GET", "/api/v1/experiments/soak/results", {["Authorization"] = analyst}, nil)
  end
end

function response(status, headers, body)
  if status >= 300 then
    counts[status] = (counts[status] or 0) + 1
    if counts[status] <= 3 then
      io.stderr:write("soak: HTTP " .. status .. " " .. string.sub(body, 1, 200) .. "\n")
    end
  end
end
