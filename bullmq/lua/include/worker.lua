--[[
  include/worker.lua: helper functions shared by the worker scripts
  (moveToActive, moveToFinished, retryJob). The Go loader prepends this text
  to those scripts; it is not a script on its own and reads no KEYS or ARGV.

  The key table `k` passed to the helpers has the fields
  wait, active, prioritized, events, limiter, delayed, paused, meta, pc,
  marker, stalled (all full key names of one queue). It also caches, for the
  rest of one script call, what a helper learnt and nothing in these
  scripts changes: the meta fields (metaFields), "no delayed job due at
  now" (noneDueAt) and "marker member 0 is set" (markerSet). A batch
  (moveToFinishedBatch) thus reads them once, with the same results.
]]

-- addMarker makes marker member "0" (score 0) wake blocked workers. Once
-- set, no worker script removes it, so later calls of the same script call
-- skip it: the ZADD would change nothing.
local function addMarker(k)
  if not k.markerSet then
    redis.call("ZADD", k.marker, "0", "0")
    k.markerSet = true
  end
end

-- queueFlags reads, in one HMGET, the meta fields a fetch depends on:
-- paused (field exists), maxed (global concurrency reached), the global rate
-- limit, the global concurrency and the events cap (a string; written when
-- missing).
local function queueFlags(k)
  local m = k.metaFields
  if not m then
    m = redis.call("HMGET", k.meta, "paused", "concurrency", "max", "duration", "opts.maxLenEvents")
    k.metaFields = m
  end
  local paused = m[1] ~= false
  local concurrency = tonumber(m[2])
  local maxed = false
  if concurrency then
    maxed = redis.call("LLEN", k.active) >= concurrency
  end
  -- The events cap stays a string: it is only passed on to XADD, and a
  -- Lua number costs Redis a float formatting on every call.
  local maxEv = m[5]
  if not tonumber(maxEv) then
    maxEv = "10000"
    redis.call("HSET", k.meta, "opts.maxLenEvents", maxEv)
    m[5] = maxEv
  end
  return paused, maxed, tonumber(m[3]), tonumber(m[4]), concurrency, maxEv
end

-- pushPrioritized adds id to the prioritized set with a FIFO-within-priority
-- score: priority * 2^32 + (pc counter mod 2^32).
local function pushPrioritized(k, id, priority)
  local c = redis.call("INCR", k.pc)
  redis.call("ZADD", k.prioritized, priority * 4294967296 + (c % 4294967296), id)
end

-- delayedScore returns the delayed-set score for a job due at dueMs:
-- dueMs * 4096 plus its rank among jobs due in the same millisecond.
local function delayedScore(k, dueMs)
  local low = dueMs * 4096
  local top = redis.call("ZREVRANGEBYSCORE", k.delayed, low + 4095, low, "WITHSCORES", "LIMIT", 0, 1)
  if #top == 0 then
    return low
  end
  return math.min(tonumber(top[2]) + 1, low + 4095)
end

-- nextDelayedDue returns the due time (ms) of the earliest delayed job, or 0.
local function nextDelayedDue(k)
  local first = redis.call("ZRANGE", k.delayed, 0, 0, "WITHSCORES")
  if #first == 0 then
    return 0
  end
  return math.floor(tonumber(first[2]) / 4096)
end

-- setDelayMarker makes marker member "1" carry the earliest delayed due time.
local function setDelayMarker(k)
  local due = nextDelayedDue(k)
  if due > 0 then
    redis.call("ZADD", k.marker, due, "1")
  end
end

-- promoteDelayed moves up to 1000 due delayed jobs to wait (paused list while
-- the queue is paused) or to prioritized, with a `waiting` event each.
local function promoteDelayed(k, base, now, paused, maxed, maxEv)
  if k.noneDueAt == now then
    return
  end
  local ids = redis.call("ZRANGEBYSCORE", k.delayed, 0, (now + 1) * 4096 - 1, "LIMIT", 0, 1000)
  if #ids < 1000 then
    -- All due jobs are promoted below; none becomes due at the same now
    -- within this script call.
    k.noneDueAt = now
  end
  if #ids == 0 then
    return
  end
  redis.call("ZREM", k.delayed, unpack(ids))
  local target = k.wait
  if paused then
    target = k.paused
  end
  for _, id in ipairs(ids) do
    local jobKey = base .. id
    local priority = tonumber(redis.call("HGET", jobKey, "priority")) or 0
    if priority > 0 then
      pushPrioritized(k, id, priority)
    else
      redis.call("LPUSH", target, id)
    end
    redis.call("XADD", k.events, "MAXLEN", "~", maxEv, "*", "event", "waiting", "jobId", id, "prev", "delayed")
    redis.call("HSET", jobKey, "delay", 0)
  end
  if not paused and not maxed then
    addMarker(k)
  end
end

-- checkLock verifies that token holds the job's lock and releases it.
-- Returns 0 on success, -6 when another token holds it, -2 when it is gone.
local function checkLock(k, jobKey, id, token)
  local lockKey = jobKey .. ":lock"
  local holder = redis.call("GET", lockKey)
  if holder == token then
    redis.call("DEL", lockKey)
    redis.call("SREM", k.stalled, id)
    return 0
  end
  if holder then
    return -6
  end
  return -2
end

-- activateJob does the per-job part of a fetch, once id is in active: sets
-- the lock with token, emits `active`, writes processedOn, pb (workerName,
-- unless "") and ats + 1, and returns the job's fields as HGETALL would
-- after those writes.
local function activateJob(k, jobKey, id, now, token, lockMs, workerName, maxEv)
  redis.call("SET", jobKey .. ":lock", token, "PX", lockMs)
  redis.call("XADD", k.events, "MAXLEN", "~", maxEv, "*", "event", "active", "jobId", id, "prev", "waiting")

  -- Read the job, then write processedOn, pb and ats (+1) in one HSET and
  -- patch the reply to what HGETALL would return after that write.
  local fields = redis.call("HGETALL", jobKey)
  local ats, atsAt, pbAt, procAt = 0, nil, nil, nil
  for i = 1, #fields, 2 do
    local f = fields[i]
    if f == "ats" then
      ats, atsAt = tonumber(fields[i + 1]) or 0, i + 1
    elseif f == "processedOn" then
      procAt = i + 1
    elseif f == "pb" then
      pbAt = i + 1
    end
  end
  -- Replies are strings, as HGETALL's.
  ats = tostring(ats + 1)
  local nowStr = string.format("%d", now)
  local n = #fields
  if procAt then fields[procAt] = nowStr else fields[n + 1], fields[n + 2], n = "processedOn", nowStr, n + 2 end
  if atsAt then fields[atsAt] = ats else fields[n + 1], fields[n + 2], n = "ats", ats, n + 2 end
  if workerName ~= "" then
    if pbAt then fields[pbAt] = workerName else fields[n + 1], fields[n + 2] = "pb", workerName end
    redis.call("HSET", jobKey, "processedOn", nowStr, "pb", workerName, "ats", ats)
  else
    redis.call("HSET", jobKey, "processedOn", nowStr, "ats", ats)
  end

  return fields
end

-- hasJob reports whether jobKey holds a job: every job hash has a
-- "timestamp" (written by every add). A job id whose hash is gone (evicted
-- under a maxmemory-policy other than noeviction, deleted by hand) must
-- not run: activating it would recreate a hash with only the fetch's
-- fields, and the worker would run it with empty data.
local function hasJob(jobKey)
  return redis.call("HEXISTS", jobKey, "timestamp") == 1
end

-- maxSkips bounds how many ids without a job hash one fetch drops before it
-- gives up for this call (the script stays short; the worker fetches again
-- at once, the marker being set).
local maxSkips = 100

-- popReady moves the next ready job id from wait (else prioritized) to the
-- head of active and returns it, or nil when none is ready.
local function popReady(k)
  local id = redis.call("RPOPLPUSH", k.wait, k.active)
  if id and string.sub(id, 1, 2) == "0:" then
    -- A legacy (BullMQ <= 4) marker id: drop it and try once more.
    redis.call("LREM", k.active, 1, id)
    id = redis.call("RPOPLPUSH", k.wait, k.active)
  end
  if not id then
    local popped = redis.call("ZPOPMIN", k.prioritized)
    if #popped > 0 then
      id = popped[1]
      redis.call("LPUSH", k.active, id)
    else
      redis.call("DEL", k.pc)
    end
  end
  return id
end

-- fetchJob is the atomic "take the next job" step. It returns the tuple
-- {jobFields or 0, jobId or 0, rateLimitTtlMs, nextDelayedDueMs, skipped}:
-- skipped lists the ids it took from the queue and dropped because their
-- job hash was missing (see hasJob), an empty table when none. flags, when
-- given, is the {queueFlags(k)} result of the calling script, still valid
-- (nothing it depends on changed since): it saves reading meta twice.
local function fetchJob(k, base, now, token, lockMs, limMax, limDur, workerName, flags)
  local paused, maxed, metaMax, metaDur, _, maxEv
  if flags then
    paused, maxed, metaMax, metaDur, maxEv = flags[1], flags[2], flags[3], flags[4], flags[6]
  else
    paused, maxed, metaMax, metaDur, _, maxEv = queueFlags(k)
  end
  promoteDelayed(k, base, now, paused, maxed, maxEv)

  local max, dur = limMax, limDur
  if metaMax then
    max, dur = metaMax, metaDur or 0
  end
  local limited = max ~= nil and max > 0
  if limited then
    local used = tonumber(redis.call("GET", k.limiter) or "0")
    if used >= max then
      local ttl = redis.call("PTTL", k.limiter)
      if ttl > 0 then
        return {0, 0, ttl, 0, {}}
      end
      redis.call("DEL", k.limiter)
    end
  end
  if paused or maxed then
    return {0, 0, 0, 0, {}}
  end

  local skipped = {}
  local id = popReady(k)
  while id and not hasJob(base .. id) do
    redis.call("LREM", k.active, 1, id)
    skipped[#skipped + 1] = id
    if #skipped >= maxSkips then
      addMarker(k)
      return {0, 0, 0, 0, skipped}
    end
    id = popReady(k)
  end
  if not id then
    return {0, 0, 0, nextDelayedDue(k), skipped}
  end

  local jobKey = base .. id
  if limited and redis.call("HEXISTS", jobKey, "defa") == 0 then
    if redis.call("INCR", k.limiter) == 1 and dur > 0 then
      redis.call("PEXPIRE", k.limiter, math.floor(dur))
    end
  end
  local fields = activateJob(k, jobKey, id, now, token, lockMs, workerName, maxEv)

  -- As the official moveToActive: marker "0" after taking a job, whatever
  -- is left, so that the next blocked worker wakes and looks (a chain).
  addMarker(k)
  return {fields, id, 0, 0, skipped}
end

-- appendJobKeys appends a job's hash and side keys (what deleting a job
-- deletes) to list, and returns list.
local function appendJobKeys(list, jobKey)
  local n = #list
  list[n + 1], list[n + 2], list[n + 3] = jobKey, jobKey .. ":logs", jobKey .. ":dependencies"
  list[n + 4], list[n + 5], list[n + 6] = jobKey .. ":processed", jobKey .. ":failed", jobKey .. ":unsuccessful"
  return list
end

-- removeFinished deletes finished jobs ids of set targetKey (retention):
-- their entries, hashes and side keys, and their deduplication keys where
-- these still point at them.
local function removeFinished(base, targetKey, ids)
  if #ids == 0 then
    return
  end
  local del = {}
  for _, id in ipairs(ids) do
    local jobKey = base .. id
    local deid = redis.call("HGET", jobKey, "deid")
    if deid then
      local dedupKey = base .. "de:" .. deid
      if redis.call("GET", dedupKey) == id then
        del[#del + 1] = dedupKey
      end
    end
    appendJobKeys(del, jobKey)
  end
  redis.call("DEL", unpack(del))
  redis.call("ZREM", targetKey, unpack(ids))
end

-- workerKeys builds the key table from KEYS[1..11] in the order shared by the
-- worker scripts.
local function workerKeys()
  return {
    wait = KEYS[1], active = KEYS[2], prioritized = KEYS[3], events = KEYS[4],
    limiter = KEYS[5], delayed = KEYS[6], paused = KEYS[7], meta = KEYS[8],
    pc = KEYS[9], marker = KEYS[10], stalled = KEYS[11],
  }
end
