--[[
  updateProgress: store a job's progress and emit a `progress` event.

  KEYS[1] job hash
  KEYS[2] events
  KEYS[3] meta

  ARGV[1] job id
  ARGV[2] progress as JSON text

  Returns 0, or -1 when the job does not exist.
]]
if redis.call("EXISTS", KEYS[1]) == 0 then
  return -1
end
local maxEv = tonumber(redis.call("HGET", KEYS[3], "opts.maxLenEvents")) or 10000
redis.call("HSET", KEYS[1], "progress", ARGV[2])
redis.call("XADD", KEYS[2], "MAXLEN", "~", maxEv, "*", "event", "progress", "jobId", ARGV[1], "data", ARGV[2])
return 0
