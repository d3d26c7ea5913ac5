--[[
  moveToFinished: complete or fail a job for good (needs include/worker.lua),
  optionally fetching the worker's next job in the same call.

  Checks the job exists (-1), has no pending (-4) or failed (-9) children when
  completing, and that the token holds its lock (-2 missing, -6 other owner);
  takes it out of active (-3), increments atm, writes the result, applies
  retention, emits completed | failed (+ retries-exhausted), drops the
  deduplication key, then fetches the next job or emits drained.

  KEYS[1..11] as moveToActive (wait, active, prioritized, events, limiter,
              delayed, paused, meta, pc, marker, stalled)
  KEYS[12] target set: completed | failed
  KEYS[13] job hash

  ARGV[1]  queue base "P:Q:"     ARGV[10] keep limit (max removed by age per call)
  ARGV[2]  job id                ARGV[11] job opts.attempts
  ARGV[3]  now (ms)              ARGV[12] fetch next "1" | "0"
  ARGV[4]  lock token            ARGV[13] next fetch token
  ARGV[5]  "completed" | "failed" ARGV[14] lock duration (ms)
  ARGV[6]  return value JSON | failed reason   ARGV[15] limiter max (0 = none)
  ARGV[7]  stacktrace JSON ("" = leave as is)  ARGV[16] limiter duration (ms)
  ARGV[8]  keep count (-1 = all, 0 = none)     ARGV[17] worker name
  ARGV[9]  keep age (ms, 0 = no age limit)

  Returns a negative error code, 0, or (fetch next) the moveToActive tuple.
]]
local k = workerKeys()
local base, id, now, token, target = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local targetKey, jobKey = KEYS[12], KEYS[13]

if redis.call("EXISTS", jobKey) == 0 then
  return -1
end
if target == "completed" and redis.call("EXISTS", jobKey .. ":dependencies", jobKey .. ":unsuccessful") > 0 then
  if redis.call("SCARD", jobKey .. ":dependencies") > 0 then
    return -4
  end
  return -9
end
local rc = checkLock(k, jobKey, id, token)
if rc ~= 0 then
  return rc
end
if ARGV[7] ~= "" then
  redis.call("HSET", jobKey, "stacktrace", ARGV[7])
end
if target == "failed" then
  redis.call("HSET", jobKey, "failedReason", ARGV[6])
end
if redis.call("LREM", k.active, -1, id) == 0 then
  return -3
end

local paused, maxed, _, _, _, maxEv = queueFlags(k)
redis.call("XTRIM", k.events, "MAXLEN", "~", maxEv)

local deid = redis.call("HGET", jobKey, "deid")
if deid then
  local dedupKey = base .. "de:" .. deid
  if redis.call("GET", dedupKey) == id then
    redis.call("DEL", dedupKey)
  end
end

local atm = redis.call("HINCRBY", jobKey, "atm", 1)

local keepCount, keepAge, keepLimit = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
if keepCount ~= 0 then
  redis.call("ZADD", targetKey, now, id)
  if target == "completed" then
    redis.call("HSET", jobKey, "returnvalue", ARGV[6], "finishedOn", now)
  else
    redis.call("HSET", jobKey, "finishedOn", now)
    redis.call("HDEL", jobKey, "defa")
  end
  if keepAge > 0 then
    if keepLimit <= 0 then
      keepLimit = 1000
    end
    local old = redis.call("ZRANGEBYSCORE", targetKey, "-inf", now - keepAge, "LIMIT", 0, keepLimit)
    for _, oldId in ipairs(old) do
      removeJobKeys(base, oldId)
    end
    if #old > 0 then
      redis.call("ZREM", targetKey, unpack(old))
    end
  end
  if keepCount > 0 then
    local extra = redis.call("ZRANGE", targetKey, 0, -(keepCount + 1))
    for _, oldId in ipairs(extra) do
      removeJobKeys(base, oldId)
    end
    if #extra > 0 then
      redis.call("ZREM", targetKey, unpack(extra))
    end
  end
else
  removeJobKeys(base, id)
end

if target == "completed" then
  redis.call("XADD", k.events, "*", "event", "completed", "jobId", id, "returnvalue", ARGV[6], "prev", "active")
else
  redis.call("XADD", k.events, "*", "event", "failed", "jobId", id, "failedReason", ARGV[6], "prev", "active")
  if atm >= (tonumber(ARGV[11]) or 0) then
    redis.call("XADD", k.events, "*", "event", "retries-exhausted", "jobId", id, "attemptsMade", atm)
  end
end

local result = 0
if ARGV[12] == "1" then
  result = fetchJob(k, base, now, ARGV[13], tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16]), ARGV[17])
  if result[2] ~= 0 then
    return result
  end
end
local ready = redis.call("LLEN", k.wait) + redis.call("ZCARD", k.prioritized)
if ready == 0 and redis.call("LLEN", k.active) == 0 then
  redis.call("XADD", k.events, "*", "event", "drained")
elseif ready > 0 then
  -- This worker takes nothing more: wake another one if it may fetch (a
  -- global concurrency slot was just freed, or this worker is closing).
  if not paused and not maxed then
    redis.call("ZADD", k.marker, 0, "0")
  end
end
return result
