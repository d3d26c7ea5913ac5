--[[
  addJobs: add one or more jobs atomically, producing the same Redis state and
  events as the official package's addStandardJob, addDelayedJob and
  addPrioritizedJob scripts (each job picks its path: delay > 0 -> delayed,
  else priority > 0 -> prioritized, else standard).

  KEYS[1]  wait         KEYS[6]  prioritized
  KEYS[2]  paused       KEYS[7]  pc
  KEYS[3]  meta         KEYS[8]  active
  KEYS[4]  id           KEYS[9]  events
  KEYS[5]  delayed      KEYS[10] marker

  ARGV[1]  queue base "P:Q:"
  ARGV[2]  opts.maxLenEvents to write into meta (used only with ARGV[3])
  ARGV[3]  library version to write into meta ("" = leave meta alone)
  ARGV[4]  number of jobs n
  then, for job i (0-based), 8 arguments from ARGV[5 + 8*i]:
    +0 custom job id ("" = automatic)   +4 timestamp (ms)
    +1 name                             +5 delay (ms, 0 = none)
    +2 data (JSON text)                 +6 priority (0 = none)
    +3 opts (JSON text)                 +7 lifo ("1" or "")

  Returns a flat array {jobId1, status1, jobId2, status2, ...}; status is 0
  for an added job and 1 for a duplicate custom id (nothing added, a
  `duplicated` event written). The id counter is INCRed for every job,
  duplicates included, as the official package does. Only custom ids are
  checked for an existing job (automatic ids never name one), as there.

  Go sends several jobs in one call for AddBulk and for concurrent Adds; the
  state and events are those of adding the jobs one by one, in order.
]]
local rcall = redis.call
local base = ARGV[1]
local kWait, kPaused, kMeta, kId = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local kDelayed, kPrio, kPc, kActive = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local kEvents, kMarker = KEYS[9], KEYS[10]

if ARGV[3] ~= "" then
  rcall("HSET", kMeta, "opts.maxLenEvents", ARGV[2], "version", ARGV[3])
end
-- One read of meta: the events cap, paused (the field exists) and the global
-- concurrency (maxed when that many jobs are active).
local flags = rcall("HMGET", kMeta, "opts.maxLenEvents", "paused", "concurrency")
local maxEvents = flags[1]
if not maxEvents then
  maxEvents = 10000
  rcall("HSET", kMeta, "opts.maxLenEvents", maxEvents)
end
local paused = flags[2] ~= false
local pausedOrMaxed = paused
if not pausedOrMaxed and flags[3] then
  pausedOrMaxed = rcall("LLEN", kActive) >= tonumber(flags[3])
end

local n = tonumber(ARGV[4])
-- With several jobs, events are added untrimmed and the stream is trimmed
-- once at the end (one XTRIM instead of one per event). Approximate trimming
-- only ever drops whole stream nodes from the head while the rest still
-- holds maxEvents entries, so the resulting stream is the same.
local trimEach = n == 1
local function addEvent(...)
  if trimEach then
    rcall("XADD", kEvents, "MAXLEN", "~", maxEvents, "*", ...)
  else
    rcall("XADD", kEvents, "*", ...)
  end
end

local baseMarker = false
local function addBaseMarker()
  if not pausedOrMaxed and not baseMarker then
    rcall("ZADD", kMarker, 0, "0")
    baseMarker = true
  end
end

local function addDelayed(jobId, due)
  local lo = due * 4096
  local hi = lo + 4095
  local score = lo
  local last = rcall("ZREVRANGEBYSCORE", kDelayed, hi, lo, "WITHSCORES", "LIMIT", 0, 1)
  if #last > 0 then
    score = math.min(tonumber(last[2]) + 1, hi)
  end
  rcall("ZADD", kDelayed, score, jobId)
  addEvent("event", "delayed", "jobId", jobId, "delay", string.format("%.0f", due))
  local first = rcall("ZRANGE", kDelayed, 0, 0, "WITHSCORES")
  if #first > 0 then
    rcall("ZADD", kMarker, tonumber(first[2]) / 4096, "1")
  end
end

local out = {}
-- One INCRBY gives the same counter values as one INCR per job.
local firstCounter = rcall("INCRBY", kId, n) - n + 1
-- Standard jobs are pushed at the end, in order: LPUSH a b c gives the same
-- list as LPUSH a, LPUSH b, LPUSH c, and LPUSH and RPUSH touch different ends.
local target = kWait
if paused then
  target = kPaused
end
local pushLeft, pushRight = {}, {}
for i = 0, n - 1 do
  local a = 5 + 8 * i
  local customId, name, data, opts = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local timestamp, delay, priority = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  local lifo = ARGV[a + 7] == "1"

  -- Only a custom id can name an existing job (custom ids are never
  -- integers), so only a custom id is checked, as in the official package.
  local jobId, dup = customId, false
  if jobId == "" then
    jobId = string.format("%d", firstCounter + i)
  else
    dup = rcall("EXISTS", base .. jobId) == 1
  end
  local jobKey = base .. jobId

  if dup then
    addEvent("event", "duplicated", "jobId", jobId)
    out[#out + 1] = jobId
    out[#out + 1] = 1
  else
    rcall("HMSET", jobKey, "name", name, "data", data, "opts", opts,
      "timestamp", ARGV[a + 4], "delay", ARGV[a + 5], "priority", ARGV[a + 6])
    rcall("XADD", kEvents, "*", "event", "added", "jobId", jobId, "name", name)

    if delay > 0 then
      addDelayed(jobId, timestamp + delay)
    elseif priority > 0 then
      local c = rcall("INCR", kPc)
      rcall("ZADD", kPrio, priority * 4294967296 + (c % 4294967296), jobId)
      addBaseMarker()
      addEvent("event", "waiting", "jobId", jobId)
    else
      if lifo then
        pushRight[#pushRight + 1] = jobId
      else
        pushLeft[#pushLeft + 1] = jobId
      end
      addBaseMarker()
      addEvent("event", "waiting", "jobId", jobId)
    end
    out[#out + 1] = jobId
    out[#out + 1] = 0
  end
end
for i = 1, #pushLeft, 1000 do
  rcall("LPUSH", target, unpack(pushLeft, i, math.min(i + 999, #pushLeft)))
end
for i = 1, #pushRight, 1000 do
  rcall("RPUSH", target, unpack(pushRight, i, math.min(i + 999, #pushRight)))
end
if not trimEach then
  rcall("XTRIM", kEvents, "MAXLEN", "~", maxEvents)
end
return out
