--[[
  drain: remove every job that has not run yet (wait, paused, prioritized
  and, optionally, delayed), with all its keys. Current job-scheduler
  iterations are kept. Active, completed and failed jobs are untouched. No
  event is emitted, as in the official package. (needs include/admin.lua)

  KEYS[1] wait      KEYS[3] delayed
  KEYS[2] paused    KEYS[4] prioritized

  ARGV[1] queue base "P:Q:"
  ARGV[2] "1" to drain delayed jobs too

  Returns the number of jobs removed.
]]
local base = ARGV[1]
local count = 0

local function drainList(key)
  local ids = rcall("LRANGE", key, 0, -1)
  local kept = {}
  for _, id in ipairs(ids) do
    if isSchedulerIteration(base, base .. id, id) then
      kept[#kept + 1] = id
    else
      deleteJob(base, id)
      count = count + 1
    end
  end
  rcall("DEL", key)
  for i = 1, #kept, 5000 do
    rcall("RPUSH", key, unpack(kept, i, math.min(i + 4999, #kept)))
  end
end

local function drainSet(key)
  local ids = rcall("ZRANGE", key, 0, -1)
  for _, id in ipairs(ids) do
    if not isSchedulerIteration(base, base .. id, id) then
      deleteJob(base, id)
      rcall("ZREM", key, id)
      count = count + 1
    end
  end
end

drainList(KEYS[1])
drainList(KEYS[2])
drainSet(KEYS[4])
if ARGV[2] == "1" then
  drainSet(KEYS[3])
end
return count
