--[[
  moveToActive: take the next job for a worker (needs include/worker.lua).

  Promotes due delayed jobs, honours meta.paused, global concurrency
  (meta.concurrency) and the rate limiter (meta.max/duration, else the
  worker's limiter), pops from wait (then prioritized), locks the job with the
  fetch token, writes processedOn/pb/ats, emits `active`, keeps the marker.
  An id whose job hash is missing (no "timestamp" field) is never run: it
  is removed from the queue and reported, and the next id is taken.

  KEYS[1]  wait          KEYS[7]  paused
  KEYS[2]  active        KEYS[8]  meta
  KEYS[3]  prioritized   KEYS[9]  pc
  KEYS[4]  events        KEYS[10] marker
  KEYS[5]  limiter       KEYS[11] stalled
  KEYS[6]  delayed

  ARGV[1] queue base "P:Q:"     ARGV[5] limiter max (0 = none)
  ARGV[2] now (ms)              ARGV[6] limiter duration (ms)
  ARGV[3] lock token            ARGV[7] worker name ("" = none)
  ARGV[4] lock duration (ms)

  Returns {jobFields (flat HGETALL) or 0, jobId or 0, rateLimitTtlMs,
  nextDelayedDueMs, skippedIds (ids dropped for a missing hash, maybe empty)}.
]]
local k = workerKeys()
return fetchJob(k, ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4],
  tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7])
