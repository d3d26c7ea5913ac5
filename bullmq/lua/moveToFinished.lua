--[[
  moveToFinished: complete or fail a job for good (needs include/worker.lua
  and include/finish.lua, which holds the body),
  optionally fetching the worker's next job in the same call.

  Checks the job exists (its "timestamp" field, -1), has no pending (-4) or failed (-9) children when
  completing, and that the token holds its lock (-2 missing, -6 other owner);
  takes it out of active (-3), writes the result with atm + 1, applies
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
local a = {
  token = ARGV[4], target = ARGV[5], value = ARGV[6], stack = ARGV[7],
  keepCount = tonumber(ARGV[8]), keepAge = tonumber(ARGV[9]), keepLimit = tonumber(ARGV[10]),
  attempts = tonumber(ARGV[11]) or 0, fetchNext = ARGV[12] == "1", nextToken = ARGV[13],
  lockMs = ARGV[14], limMax = tonumber(ARGV[15]), limDur = tonumber(ARGV[16]), workerName = ARGV[17],
}
return finishJob(workerKeys(), ARGV[1], tonumber(ARGV[3]), ARGV[2], KEYS[12], KEYS[13], a)
