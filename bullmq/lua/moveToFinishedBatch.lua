--[[
  moveToFinishedBatch: moveToFinished for several jobs of one worker in one
  call (needs include/worker.lua and include/finish.lua).

  Each entry gets the checks, writes, retention and events of its own
  moveToFinished call, and the same reply; the queue ends in the same state
  as after that many moveToFinished calls in a row. What differs is only the
  order of the events of different jobs in the stream (all completed/failed
  events of the batch come before its `active` events; each job's own
  events keep their order) and the cost: the work that one call per job
  repeats (reading locks, releasing them, adding to the finished set,
  retention, popping from wait, the marker) is done once for the batch,
  with multi-key commands.

  KEYS[1..11] as moveToActive (wait, active, prioritized, events, limiter,
              delayed, paused, meta, pc, marker, stalled)
  KEYS[12] completed set      KEYS[13] failed set
  KEYS[13+i] job hash of entry i

  ARGV[1] queue base "P:Q:"   ARGV[4] limiter max (0 = none)
  ARGV[2] now (ms)            ARGV[5] limiter duration (ms)
  ARGV[3] lock duration (ms)  ARGV[6] worker name
  ARGV[7] "1" when all entries share keep count, keep age (ms), keep limit
          and opts.attempts, which then follow in ARGV[8..11]; else "0"
  then per entry, from ARGV[8] ("0") or ARGV[12] ("1"):
    job id, lock token, "completed" | "failed", return value JSON | failed
    reason, stacktrace JSON ("" = leave), [keep count, keep age (ms), keep
    limit, opts.attempts: only when not shared], fetch next "1" | "0",
    next fetch token (11 ARGV per entry, or 7 when shared).

  Returns one reply per entry, each as moveToFinished's; if a command fails
  (a wrong key type, say), the entries not answered yet get that error.
]]
local k = workerKeys()
local base, now = ARGV[1], tonumber(ARGV[2])
local lockMs, limMax, limDur, workerName = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local shared = ARGV[7] == "1"
local first, stride = 8, 11
if shared then
  first, stride = 12, 7
end
local n = (#ARGV - first + 1) / stride
local out = {}

-- failed reports whether r is an error reply of redis.pcall. Commands on
-- one entry's own keys run with pcall, so that an error (a wrong key type,
-- say) fails that entry only, as it would fail only its own call.
local function failed(r)
  return type(r) == "table" and r.err ~= nil
end

local function run()
  local e = {}
  local sCount, sAge, sLimit, sAttempts
  if shared then
    sCount, sAge, sLimit, sAttempts = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]) or 0
  end
  for i = 1, n do
    local o = first + stride * (i - 1)
    local target = ARGV[o + 2]
    local targetKey = KEYS[12]
    if target == "failed" then
      targetKey = KEYS[13]
    end
    local keepCount, keepAge, keepLimit, attempts, fetchNext, nextToken
    if shared then
      keepCount, keepAge, keepLimit, attempts = sCount, sAge, sLimit, sAttempts
      fetchNext, nextToken = ARGV[o + 5] == "1", ARGV[o + 6]
    else
      keepCount, keepAge, keepLimit = tonumber(ARGV[o + 5]), tonumber(ARGV[o + 6]), tonumber(ARGV[o + 7])
      attempts, fetchNext, nextToken = tonumber(ARGV[o + 8]) or 0, ARGV[o + 9] == "1", ARGV[o + 10]
    end
    -- One constructor, so the table is sized once (atm and deid come later).
    local en = {
      id = ARGV[o], token = ARGV[o + 1], target = target, value = ARGV[o + 3], stack = ARGV[o + 4],
      keepCount = keepCount, keepAge = keepAge, keepLimit = keepLimit, attempts = attempts,
      fetchNext = fetchNext, nextToken = nextToken, jobKey = KEYS[13 + i], targetKey = targetKey,
      atm = false, deid = false,
    }
    e[i] = en
  end

  -- Checks, in moveToFinished's order: the job exists (-1), has no pending
  -- or failed children when completing (-4, -9), the token holds its lock
  -- (-6, -2), it is in active (-3).
  local alive = {}
  local depKeys = {}
  for i = 1, n do
    local en = e[i]
    local h = redis.pcall("HMGET", en.jobKey, "timestamp", "atm", "deid")
    if failed(h) then
      out[i] = h
    elseif not h[1] then
      out[i] = -1
    else
      en.atm, en.deid = string.format("%d", (tonumber(h[2]) or 0) + 1), h[3] or false
      alive[#alive + 1] = i
      if en.target == "completed" then
        depKeys[#depKeys + 1] = en.jobKey .. ":dependencies"
        depKeys[#depKeys + 1] = en.jobKey .. ":unsuccessful"
      end
    end
  end
  if #depKeys > 0 and redis.call("EXISTS", unpack(depKeys)) > 0 then
    local keep = {}
    for _, i in ipairs(alive) do
      local jobKey = e[i].jobKey
      local deps = 0
      if e[i].target == "completed" then
        deps = redis.pcall("EXISTS", jobKey .. ":dependencies", jobKey .. ":unsuccessful")
      end
      if failed(deps) then
        out[i] = deps
      elseif deps > 0 then
        local pending = redis.pcall("SCARD", jobKey .. ":dependencies")
        if failed(pending) then
          out[i] = pending
        elseif pending > 0 then
          out[i] = -4
        else
          out[i] = -9
        end
      else
        keep[#keep + 1] = i
      end
    end
    alive = keep
  end
  if #alive > 0 then
    local lockKeys = {}
    for j, i in ipairs(alive) do
      lockKeys[j] = e[i].jobKey .. ":lock"
    end
    local holders = redis.call("MGET", unpack(lockKeys))
    local keep, held, ids = {}, {}, {}
    for j, i in ipairs(alive) do
      local holder = holders[j]
      if holder == e[i].token then
        keep[#keep + 1], held[#held + 1], ids[#ids + 1] = i, lockKeys[j], e[i].id
      elseif holder then
        out[i] = -6
      else
        out[i] = -2
      end
    end
    if #held > 0 then
      redis.call("DEL", unpack(held))
      redis.call("SREM", k.stalled, unpack(ids))
    end
    alive = keep
  end
  local done = {}
  for _, i in ipairs(alive) do
    if redis.call("LREM", k.active, "-1", e[i].id) == 0 then
      out[i] = -3
    else
      done[#done + 1] = i
    end
  end

  -- Read after the LREMs, as each moveToFinished reads them after its own.
  local flags = {queueFlags(k)}
  local paused, maxed, concurrency, maxEv = flags[1], flags[2], flags[5], flags[6]

  -- Writes: deduplication keys, result fields, finished sets, retention.
  local gone = {}
  local byTarget = {[KEYS[12]] = {}, [KEYS[13]] = {}}
  local written = {}
  for _, i in ipairs(done) do
    local en = e[i]
    local r = 0
    if en.deid then
      local dedupKey = base .. "de:" .. en.deid
      r = redis.pcall("GET", dedupKey)
      if r == en.id then
        gone[#gone + 1] = dedupKey
      end
    end
    if not failed(r) and en.keepCount ~= 0 then
      local fields
      if en.target == "completed" then
        fields = {"returnvalue", en.value, "finishedOn", ARGV[2], "atm", en.atm}
      else
        fields = {"failedReason", en.value, "finishedOn", ARGV[2], "atm", en.atm}
        r = redis.pcall("HDEL", en.jobKey, "defa")
      end
      if en.stack ~= "" then
        fields[#fields + 1] = "stacktrace"
        fields[#fields + 1] = en.stack
      end
      if not failed(r) then
        r = redis.pcall("HSET", en.jobKey, unpack(fields))
      end
      if not failed(r) then
        local t = byTarget[en.targetKey]
        t[#t + 1] = i
      end
    elseif not failed(r) then
      appendJobKeys(gone, en.jobKey)
    end
    if failed(r) then
      out[i] = r
    else
      written[#written + 1] = i
    end
  end
  done = written
  if #gone > 0 then
    redis.call("DEL", unpack(gone))
  end
  for targetKey, list in pairs(byTarget) do
    if #list > 0 then
      local first = e[list[1]]
      local same = true
      for _, i in ipairs(list) do
        local en = e[i]
        if en.keepCount ~= first.keepCount or en.keepAge ~= first.keepAge or en.keepLimit ~= first.keepLimit then
          same = false
          break
        end
      end
      if same then
        -- One policy: adding all, then trimming once, keeps the same jobs
        -- as trimming after each add (all scores are now). The age limit
        -- is per moveToFinished call, so it scales with the entries.
        local za = {}
        for _, i in ipairs(list) do
          za[#za + 1] = ARGV[2]
          za[#za + 1] = e[i].id
        end
        redis.call("ZADD", targetKey, unpack(za))
        local limit = first.keepLimit
        if limit <= 0 then
          limit = 1000
        end
        trimFinished(base, now, targetKey, first.keepCount, first.keepAge, limit * #list)
      else
        for _, i in ipairs(list) do
          local en = e[i]
          redis.call("ZADD", targetKey, ARGV[2], en.id)
          trimFinished(base, now, targetKey, en.keepCount, en.keepAge, en.keepLimit)
        end
      end
    end
  end

  -- Events, per job in entry order.
  for _, i in ipairs(done) do
    local en = e[i]
    if en.target == "completed" then
      redis.call("XADD", k.events, "MAXLEN", "~", maxEv, "*", "event", "completed", "jobId", en.id,
        "returnvalue", en.value, "prev", "active")
    else
      redis.call("XADD", k.events, "MAXLEN", "~", maxEv, "*", "event", "failed", "jobId", en.id,
        "failedReason", en.value, "prev", "active")
      if tonumber(en.atm) >= en.attempts then
        redis.call("XADD", k.events, "MAXLEN", "~", maxEv, "*", "event", "retries-exhausted", "jobId", en.id,
          "attemptsMade", en.atm)
      end
    end
    out[i] = 0
  end

  -- Fetch the next jobs of the entries that ask for one.
  local wants = {}
  for _, i in ipairs(done) do
    if e[i].fetchNext then
      wants[#wants + 1] = i
    end
  end
  local max = limMax
  if flags[3] then
    max = flags[3]
  end
  local got = 0
  if #wants > 0 and max ~= nil and max > 0 then
    -- Rate limited: one fetch after the other, each counting against the
    -- limit as it would in its own call.
    for _, i in ipairs(wants) do
      local r = fetchJob(k, base, now, e[i].nextToken, lockMs, limMax, limDur, workerName)
      out[i] = r
      if r[2] ~= 0 then
        got = got + 1
      end
    end
  elseif #wants > 0 then
    promoteDelayed(k, base, now, paused, maxed, maxEv)
    local take = #wants
    if paused then
      take = 0
    elseif concurrency then
      take = math.max(0, math.min(take, concurrency - redis.call("LLEN", k.active)))
    end
    local ids = {}
    local legacy = false
    -- Ids taken from the queue whose job hash is missing (see hasJob):
    -- dropped, never activated, and reported in the first fetch reply.
    local skipped = {}
    if take > 0 then
      local fromWait = redis.call("LRANGE", k.wait, -take, -1)
      if #fromWait > 0 then
        redis.call("LTRIM", k.wait, 0, -(#fromWait + 1))
        -- RPOPLPUSH order: the rightmost first.
        for j = #fromWait, 1, -1 do
          local id = fromWait[j]
          if string.sub(id, 1, 2) == "0:" then
            legacy = true -- a BullMQ <= 4 marker id: dropped
          elseif hasJob(base .. id) then
            ids[#ids + 1] = id
          else
            skipped[#skipped + 1] = id
          end
        end
      end
      if not legacy and #skipped == 0 and #ids < take then
        local want = take - #ids
        local popped = redis.call("ZPOPMIN", k.prioritized, want)
        for j = 1, #popped, 2 do
          local id = popped[j]
          if hasJob(base .. id) then
            ids[#ids + 1] = id
          else
            skipped[#skipped + 1] = id
          end
        end
        if #popped < 2 * want then
          redis.call("DEL", k.pc)
        end
      end
      if #ids > 0 then
        redis.call("LPUSH", k.active, unpack(ids))
      end
    end
    for j, id in ipairs(ids) do
      local i = wants[j]
      out[i] = {activateJob(k, base .. id, id, now, e[i].nextToken, lockMs, workerName, maxEv), id, 0, 0, {}}
    end
    got = #ids
    local nextDue = nil
    for j = #ids + 1, #wants do
      local i = wants[j]
      if legacy or #skipped > 0 then
        -- Fetch the rest one by one, as moveToFinished would.
        out[i] = fetchJob(k, base, now, e[i].nextToken, lockMs, limMax, limDur, workerName)
        if out[i][2] ~= 0 then
          got = got + 1
        end
      elseif paused or take < #wants then
        out[i] = {0, 0, 0, 0, {}}
      else
        if nextDue == nil then
          nextDue = nextDelayedDue(k)
        end
        out[i] = {0, 0, 0, nextDue, {}}
      end
    end
    if #ids > 0 then
      addMarker(k) -- as fetchJob
    end
    if #skipped > 0 then
      local report = out[wants[1]][5]
      for _, id in ipairs(skipped) do
        report[#report + 1] = id
      end
    end
  end

  -- Entries that took no job: drained, or wake another worker.
  if got < #done then
    local ready = redis.call("LLEN", k.wait) + redis.call("ZCARD", k.prioritized)
    if ready == 0 and redis.call("LLEN", k.active) == 0 then
      redis.call("XADD", k.events, "MAXLEN", "~", maxEv, "*", "event", "drained")
    elseif ready > 0 and not paused and not (concurrency ~= nil and redis.call("LLEN", k.active) >= concurrency) then
      addMarker(k)
    end
  end
end

local ok, err = pcall(run)
if not ok then
  if type(err) == "table" and err.err then
    err = {err = err.err}
  else
    err = {err = "ERR " .. tostring(err)}
  end
  for i = 1, n do
    if out[i] == nil then
      out[i] = err
    end
  end
end
return out
