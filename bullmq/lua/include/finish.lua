--[[
  include/finish.lua: finishJob, the body of moveToFinished, shared by
  moveToFinished (one job) and moveToFinishedBatch (several jobs, one after
  the other, exactly as that many moveToFinished calls in a row). Needs
  include/worker.lua before it; reads no KEYS or ARGV.
]]

-- finishJob completes or fails job id (hash jobKey, target set targetKey)
-- and optionally fetches the next job. a holds the call's arguments:
-- token, target ("completed" | "failed"), value (return value JSON | failed
-- reason), stack (stacktrace JSON, "" = leave), keepCount, keepAge,
-- keepLimit, attempts (numbers), deidKnown (bool) and deid, fetchNext
-- (bool), nextToken, lockMs, limMax, limDur (numbers), workerName.
-- Returns a negative error code, 0, or (fetch next) the moveToActive tuple.
local function finishJob(k, base, now, id, targetKey, jobKey, a)
  local token, target, value, stack = a.token, a.target, a.value, a.stack

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
  if stack ~= "" then
    redis.call("HSET", jobKey, "stacktrace", stack)
  end
  if target == "failed" then
    redis.call("HSET", jobKey, "failedReason", value)
  end
  if redis.call("LREM", k.active, -1, id) == 0 then
    return -3
  end

  -- Read after the LREM, so maxed counts this job as gone; fetchJob reuses it.
  local flags = {queueFlags(k)}
  local paused, maxed, maxEv = flags[1], flags[2], flags[6]

  local deid
  if a.deidKnown then
    if a.deid ~= "" then
      deid = a.deid
    end
  else
    deid = redis.call("HGET", jobKey, "deid")
  end
  if deid then
    local dedupKey = base .. "de:" .. deid
    if redis.call("GET", dedupKey) == id then
      redis.call("DEL", dedupKey)
    end
  end

  local atm = redis.call("HINCRBY", jobKey, "atm", 1)

  local keepCount, keepAge, keepLimit = a.keepCount, a.keepAge, a.keepLimit
  if keepCount ~= 0 then
    redis.call("ZADD", targetKey, now, id)
    if target == "completed" then
      redis.call("HSET", jobKey, "returnvalue", value, "finishedOn", now)
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
    redis.call("XADD", k.events, "MAXLEN", "~", maxEv, "*", "event", "completed", "jobId", id,
      "returnvalue", value, "prev", "active")
  else
    redis.call("XADD", k.events, "MAXLEN", "~", maxEv, "*", "event", "failed", "jobId", id,
      "failedReason", value, "prev", "active")
    if atm >= a.attempts then
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
