--[[
  cleanJobs: remove up to `limit` jobs of one state that are older than a
  cutoff, with all their keys, and emit one `cleaned` event with the count
  (also when it is 0, as the official package does).
  (needs include/admin.lua)

  Age is the zset score (finishedOn) for completed and failed; for lists and
  other sets it is the first set field of finishedOn, processedOn, timestamp.
  Active jobs that still hold a lock and current job-scheduler iterations are
  never removed.

  KEYS[1] the state's list or zset   KEYS[3] meta
  KEYS[2] events

  ARGV[1] queue base "P:Q:"
  ARGV[2] cutoff (ms): jobs at or before it are removed
  ARGV[3] limit (0 = unlimited)
  ARGV[4] state: completed | failed | delayed | prioritized |
          waiting-children | wait | paused | active

  Returns the removed job ids.
]]
local key, base = KEYS[1], ARGV[1]
local cutoff, limit, state = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local removed = {}
local isList = state == "wait" or state == "paused" or state == "active"

local function full()
  return limit > 0 and #removed >= limit
end

local function jobTime(jobKey)
  local f = rcall("HMGET", jobKey, "finishedOn", "processedOn", "timestamp")
  return tonumber(f[1] or f[2] or f[3] or 0)
end

local function tryRemove(jobId)
  local jobKey = base .. jobId
  if isSchedulerIteration(base, jobKey, jobId) then
    return false
  end
  if state == "active" and rcall("EXISTS", jobKey .. ":lock") == 1 then
    return false
  end
  deleteJob(base, jobId)
  removed[#removed + 1] = jobId
  return true
end

if state == "completed" or state == "failed" then
  local offset = 0
  while not full() do
    local n = 1000
    if limit > 0 then
      n = math.min(n, limit - #removed)
    end
    local ids = rcall("ZRANGEBYSCORE", key, "-inf", cutoff, "LIMIT", offset, n)
    if #ids == 0 then
      break
    end
    for _, id in ipairs(ids) do
      if tryRemove(id) then
        rcall("ZREM", key, id)
      else
        offset = offset + 1
      end
    end
  end
elseif isList then
  -- Scan from the oldest end (the right) in chunks.
  local len = rcall("LLEN", key)
  local stop = -1
  local toDrop = {}
  while stop >= -len and not full() do
    local start = math.max(stop - 999, -len)
    local ids = rcall("LRANGE", key, start, stop)
    for i = #ids, 1, -1 do
      if full() then
        break
      end
      local id = ids[i]
      if jobTime(base .. id) <= cutoff and tryRemove(id) then
        toDrop[#toDrop + 1] = id
      end
    end
    stop = start - 1
  end
  for _, id in ipairs(toDrop) do
    rcall("LREM", key, -1, id)
  end
else
  local start = 0
  while not full() do
    local ids = rcall("ZRANGE", key, start, start + 999)
    if #ids == 0 then
      break
    end
    local kept = 0
    for _, id in ipairs(ids) do
      if not full() and jobTime(base .. id) <= cutoff and tryRemove(id) then
        rcall("ZREM", key, id)
      else
        kept = kept + 1
      end
    end
    start = start + kept
  end
end

rcall("XADD", KEYS[2], "*", "event", "cleaned", "count", #removed)
return removed
