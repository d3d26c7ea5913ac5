--[[
  obliterate: delete a queue and all its jobs, in steps of at most `count`
  jobs per call; the caller pauses the queue first and calls again while
  this returns 1. (needs include/admin.lua)

  KEYS[1]  meta          KEYS[9]  waiting-children  KEYS[17] limiter
  KEYS[2]  active        KEYS[10] repeat            KEYS[18] delay (legacy)
  KEYS[3]  delayed       KEYS[11] events            KEYS[19] metrics:completed
  KEYS[4]  wait          KEYS[12] id                KEYS[20] metrics:failed
  KEYS[5]  paused        KEYS[13] pc                KEYS[21] metrics:completed:data
  KEYS[6]  prioritized   KEYS[14] marker            KEYS[22] metrics:failed:data
  KEYS[7]  completed     KEYS[15] stalled
  KEYS[8]  failed        KEYS[16] stalled-check

  ARGV[1] queue base "P:Q:"
  ARGV[2] count: the most jobs deleted in this call
  ARGV[3] "1" to delete even while jobs are active

  Returns 1 while jobs remain, 0 when the queue is gone, -21 when jobs are
  active and ARGV[3] is not "1".
]]
local base = ARGV[1]
local budget = tonumber(ARGV[2])

if ARGV[3] ~= "1" and rcall("LLEN", KEYS[2]) > 0 then
  return -21
end

local function wipe(id)
  local jobKey = base .. id
  rcall("DEL", jobKey, jobKey .. ":logs", jobKey .. ":dependencies",
    jobKey .. ":processed", jobKey .. ":failed", jobKey .. ":unsuccessful",
    jobKey .. ":lock")
end

local function wipeList(key)
  while budget > 0 do
    local ids = rcall("LRANGE", key, -math.min(budget, 1000), -1)
    if #ids == 0 then
      return
    end
    for _, id in ipairs(ids) do
      wipe(id)
    end
    rcall("LTRIM", key, 0, -#ids - 1)
    budget = budget - #ids
  end
end

local function wipeSet(key)
  while budget > 0 do
    local ids = rcall("ZRANGE", key, 0, math.min(budget, 1000) - 1)
    if #ids == 0 then
      return
    end
    for _, id in ipairs(ids) do
      wipe(id)
    end
    rcall("ZREM", key, unpack(ids))
    budget = budget - #ids
  end
end

wipeList(KEYS[2])
wipeSet(KEYS[3])
-- Job schedulers: their definition hashes.
while budget > 0 do
  local ids = rcall("ZRANGE", KEYS[10], 0, math.min(budget, 1000) - 1)
  if #ids == 0 then
    break
  end
  for _, id in ipairs(ids) do
    rcall("DEL", base .. "repeat:" .. id)
  end
  rcall("ZREM", KEYS[10], unpack(ids))
  budget = budget - #ids
end
wipeSet(KEYS[7])
wipeList(KEYS[5])
wipeSet(KEYS[6])
wipeSet(KEYS[8])
wipeList(KEYS[4])
wipeSet(KEYS[9])

if budget <= 0 then
  return 1
end
for i = 11, 22 do
  rcall("DEL", KEYS[i])
end
rcall("DEL", KEYS[1])
return 0
