--[[
  moveToFinishedBatch: moveToFinished for several jobs of one worker in one
  call (needs include/worker.lua and include/finish.lua). Entry i is
  finished, then (fetch next) the next job fetched, before entry i+1: the
  same writes, events and replies as that many moveToFinished calls in a
  row, minus the per-call overhead.

  KEYS[1..11] as moveToActive (wait, active, prioritized, events, limiter,
              delayed, paused, meta, pc, marker, stalled)
  KEYS[12] completed set      KEYS[13] failed set
  KEYS[13+i] job hash of entry i

  ARGV[1] queue base "P:Q:"   ARGV[4] limiter max (0 = none)
  ARGV[2] now (ms)            ARGV[5] limiter duration (ms)
  ARGV[3] lock duration (ms)  ARGV[6] worker name
  then 13 ARGV per entry, from ARGV[7 + 13*(i-1)]:
    job id, lock token, "completed" | "failed", return value JSON | failed
    reason, stacktrace JSON ("" = leave), keep count, keep age (ms), keep
    limit, opts.attempts, fetch next "1" | "0", next fetch token, "1" when
    the next field is the deduplication id as fetched, deduplication id.

  Returns one reply per entry, each as moveToFinished's, or the error that
  entry raised.
]]
local k = workerKeys()
local base, now = ARGV[1], tonumber(ARGV[2])
local lockMs, limMax, limDur, workerName = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local n = (#ARGV - 6) / 13
local out = {}
for i = 1, n do
  local o = 6 + 13 * (i - 1)
  local target = ARGV[o + 3]
  local targetKey = KEYS[12]
  if target == "failed" then
    targetKey = KEYS[13]
  end
  local a = {
    token = ARGV[o + 2], target = target, value = ARGV[o + 4], stack = ARGV[o + 5],
    keepCount = tonumber(ARGV[o + 6]), keepAge = tonumber(ARGV[o + 7]), keepLimit = tonumber(ARGV[o + 8]),
    attempts = tonumber(ARGV[o + 9]) or 0, fetchNext = ARGV[o + 10] == "1", nextToken = ARGV[o + 11],
    lockMs = lockMs, limMax = limMax, limDur = limDur, workerName = workerName,
    deidKnown = ARGV[o + 12] == "1", deid = ARGV[o + 13],
  }
  -- An error (a failed redis.call, say) fails only its own entry, as it
  -- would fail only its own moveToFinished call.
  local ok, res = pcall(finishJob, k, base, now, ARGV[o + 1], targetKey, KEYS[13 + i], a)
  if ok then
    out[i] = res
  elseif type(res) == "table" and res.err then
    out[i] = {err = res.err}
  else
    out[i] = {err = "ERR " .. tostring(res)}
  end
end
return out
