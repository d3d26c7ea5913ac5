--[[
  include/finish.lua: finishJob, the body of moveToFinished, shared by
  moveToFinished (one job) and moveToFinishedBatch (several jobs, one after
  the other, exactly as that many moveToFinished calls in a row). Needs
  include/worker.lua before it; reads no KEYS or ARGV.
]]

-- trimFinished applies a retention policy to finished set targetKey:
-- removes (set entry, hash, side keys, deduplication key) up to keepLimit
-- (1000 when <= 0) jobs finished more than keepAge ms before now (keepAge
-- > 0), then all but the newest keepCount (keepCount > 0).
local function trimFinished(base, now, targetKey, keepCount, keepAge, keepLimit)
  if keepAge > 0 then
    if keepLimit <= 0 then
      keepLimit = 1000
    end
    local old = redis.call("ZRANGEBYSCORE", targetKey, "-inf", now - keepAge, "LIMIT", 0, keepLimit)
    removeFinished(base, targetKey, old)
  end
  if keepCount > 0 then
    removeFinished(base, targetKey, redis.call("ZRANGE", targetKey, 0, -(keepCount + 1)))
  end
end

-- finishJob completes or fails job id (hash jobKey, target set targetKey)
-- and optionally fetches the next job. a holds the call's arguments:
-- token, target ("completed" | "failed"), value (return value JSON | failed
-- reason), stack (stacktrace JSON, "" = leave), keepCount, keepAge,
-- keepLimit, attempts (numbers), fetchNext (bool), nextToken, lockMs,
-- limMax, limDur (numbers), workerName.
-- Returns a negative error code, 0, or (fetch next) the moveToActive tuple.
local function finishJob(k, base, now, id, targetKey, jobKey, a)
  local token, target, value, stack = a.token, a.target, a.value, a.stack

  -- One read for existence (every BullMQ producer writes "timestamp"), the
  -- attempts made so far and the deduplication id.
  local job = redis.call("HMGET", jobKey, "timestamp", "atm", "deid")
  if not job[1] then
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
  if redis.call("LREM", k.active, "-1", id) == 0 then
    return -3
  end

  -- Read after the LREM, so maxed counts this job as gone; fetchJob reuses it.
  local flags = {queueFlags(k)}
  local paused, maxed, maxEv = flags[1], flags[2], flags[6]

  local deid = job[3]
  if deid then
    local dedupKey = base .. "de:" .. deid
    if redis.call("GET", dedupKey) == id then
      redis.call("DEL", dedupKey)
    end
  end

  -- The lock holder is the only writer of atm, so atm + 1 is what HINCRBY
  -- would give.
  local atm = string.format("%d", (tonumber(job[2]) or 0) + 1)
  local nowStr = string.format("%d", now)

  local keepCount = a.keepCount
  if keepCount ~= 0 then
    redis.call("ZADD", targetKey, nowStr, id)
    local fields
    if target == "completed" then
      fields = {"returnvalue", value, "finishedOn", nowStr, "atm", atm}
    else
      fields = {"failedReason", value, "finishedOn", nowStr, "atm", atm}
      redis.call("HDEL", jobKey, "defa")
    end
    if stack ~= "" then
      fields[#fields + 1] = "stacktrace"
      fields[#fields + 1] = stack
    end
    redis.call("HSET", jobKey, unpack(fields))
    trimFinished(base, now, targetKey, keepCount, a.keepAge, a.keepLimit)
  else
    -- Its deduplication key is handled above.
    redis.call("DEL", unpack(appendJobKeys({}, jobKey)))
  end

  if target == "completed" then
    redis.call("XADD", k.events, "MAXLEN", "~", maxEv, "*", "event", "completed", "jobId", id,
      "returnvalue", value, "prev", "active")
  else
    redis.call("XADD", k.events, "MAXLEN", "~", maxEv, "*", "event", "failed", "jobId", id,
      "failedReason", value, "prev", "active")
    if tonumber(atm) >= a.attempts then
      redis.call("XADD", k.events, "MAXLEN", "~", maxEv, "*", "event", "retries-exhausted", "jobId", id,
        "attemptsMade", atm)
    end
  end

  local result = 0
  if a.fetchNext then
    result = fetchJob(k, base, now, a.nextToken, a.lockMs, a.limMax, a.limDur, a.workerName, flags)
    if result[2] ~= 0 then
      return result
    end
  end
  local ready = redis.call("LLEN", k.wait) + redis.call("ZCARD", k.prioritized)
  if ready == 0 and redis.call("LLEN", k.active) == 0 then
    redis.call("XADD", k.events, "MAXLEN", "~", maxEv, "*", "event", "drained")
  elseif ready > 0 then
    -- This worker takes nothing more: wake another one if it may fetch (a
    -- global concurrency slot was just freed, or this worker is closing).
    if not paused and not maxed then
      addMarker(k)
    end
  end
  return result
end
