-- Repeat assignments: subjects assigned before (the first REPEAT_POOL ids of thread 0's range).
local pool = tonumber(os.getenv("REPEAT_POOL"))
local counter = 0

function request()
  counter = counter + 1
  local body = '{"experiment":"load","user_id":"u' .. ((counter * 7919) % pool + 1) .. '"}'
  return wrk.format("POST", "/api/v1/assign", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("TOKEN")}, body)
end
