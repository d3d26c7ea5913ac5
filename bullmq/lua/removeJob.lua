--[[
  removeJob: remove one job from whatever state it is in, with all its keys,
  unless a worker holds its lock. Emits `removed` with the previous state.
  (needs include/admin.lua)

  KEYS[1] job hash "P:Q:<id>"    KEYS[6]  wait
  KEYS[2] job lock               KEYS[7]  paused
  KEYS[3] events                 KEYS[8]  delayed
  KEYS[4] meta                   KEYS[9]  prioritized
  KEYS[5] active                 KEYS[10] completed
                                 KEYS[11] failed
                                 KEYS[12] waiting-children

  ARGV[1] queue base "P:Q:"
  ARGV[2] job id

  Returns 1 when removed, -1 when the job does not exist, -20 when it is
  locked, -8 when it is the current iteration of a job scheduler.
]]
local base, jobId = ARGV[1], ARGV[2]
local jobKey = KEYS[1]
if rcall("EXISTS", jobKey) == 0 then
  return -1
end
if rcall("EXISTS", KEYS[2]) == 1 then
  return -20
end
if isSchedulerIteration(base, jobKey, jobId) then
  return -8
end

local prev = "unknown"
local lists = { { KEYS[5], "active" }, { KEYS[6], "wait" }, { KEYS[7], "paused" } }
local sets = { { KEYS[8], "delayed" }, { KEYS[9], "prioritized" }, { KEYS[10], "completed" },
  { KEYS[11], "failed" }, { KEYS[12], "waiting-children" } }
for _, s in ipairs(sets) do
  if rcall("ZREM", s[1], jobId) > 0 then
    prev = s[2]
  end
end
for _, l in ipairs(lists) do
  if rcall("LREM", l[1], 0, jobId) > 0 then
    prev = l[2]
  end
end

deleteJob(base, jobId)
local maxEvents = maxEventsOf(KEYS[4])
rcall("XADD", KEYS[3], "MAXLEN", "~", maxEvents, "*", "event", "removed", "jobId", jobId, "prev", prev)
return 1
