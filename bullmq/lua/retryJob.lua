--[[
  retryJob: end a failed attempt that will be retried (needs include/worker.lua),
  optionally fetching the worker's next job in the same call.

  Checks the job exists (-1) and that the token holds its lock (-2 missing,
  -6 other owner), writes failedReason/stacktrace, takes it out of active (-3),
  increments atm, then either
    delay > 0: adds it to delayed with score due*4096+n, sets the `delay`
               field, emits `delayed` (delay = due ms) and refreshes marker "1";
    delay = 0: pushes it back to wait (paused list while paused; RPUSH when
               lifo) or prioritized, emits `waiting` prev=active, marker "0".

  KEYS[1..11] as moveToActive (wait, active, prioritized, events, limiter,
              delayed, paused, meta, pc, marker, stalled)
  KEYS[12] job hash

  ARGV[1] queue base "P:Q:"       ARGV[8]  lifo "1" | "0"
  ARGV[2] job id                  ARGV[9]  fetch next "1" | "0"
  ARGV[3] now (ms)                ARGV[10] next fetch token
  ARGV[4] lock token              ARGV[11] lock duration (ms)
  ARGV[5] backoff delay (ms)      ARGV[12] limiter max (0 = none)
  ARGV[6] failed reason (text)    ARGV[13] limiter duration (ms)
  ARGV[7] stacktrace JSON ("" = leave as is)   ARGV[14] worker name

  Returns a negative error code, 0, or (fetch next) the moveToActive tuple.
]]
local k = workerKeys()
local base, id, now, token, delay = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local jobKey = KEYS[12]

if redis.call("EXISTS", jobKey) == 0 then
  return -1
end
local rc = checkLock(k, jobKey, id, token)
if rc ~= 0 then
  return rc
end
redis.call("HSET", jobKey, "failedReason", ARGV[6])
if ARGV[7] ~= "" then
  redis.call("HSET", jobKey, "stacktrace", ARGV[7])
end
if redis.call("LREM", k.active, -1, id) == 0 then
  return -3
end
redis.call("HINCRBY", jobKey, "atm", 1)

local paused, maxed, _, _, _, maxEv = queueFlags(k)
if delay > 0 then
  local due = now + delay
  redis.call("HSET", jobKey, "delay", delay)
  redis.call("ZADD", k.delayed, delayedScore(k, due), id)
  redis.call("XADD", k.events, "MAXLEN", "~", maxEv, "*", "event", "delayed", "jobId", id, "delay", due)
else
  local priority = tonumber(redis.call("HGET", jobKey, "priority")) or 0
  if priority > 0 then
    pushPrioritized(k, id, priority)
  else
    local list = k.wait
    if paused then
      list = k.paused
    end
    if ARGV[8] == "1" then
      redis.call("RPUSH", list, id)
    else
      redis.call("LPUSH", list, id)
    end
  end
  redis.call("XADD", k.events, "MAXLEN", "~", maxEv, "*", "event", "waiting", "jobId", id, "prev", "active")
  if not paused and not maxed then
    redis.call("ZADD", k.marker, 0, "0")
  end
end

if ARGV[9] == "1" then
  local result = fetchJob(k, base, now, ARGV[10], ARGV[11], tonumber(ARGV[12]), tonumber(ARGV[13]), ARGV[14])
  if result[2] ~= 0 then
    return result
  end
  if delay > 0 and not paused then
    setDelayMarker(k)
  end
  return result
end
if delay > 0 and not paused then
  setDelayMarker(k)
end
return 0
