--[[
  addLog: append one line to a job's log, keeping the last keepLogs lines.

  KEYS[1] job hash
  KEYS[2] job logs list

  ARGV[1] job id
  ARGV[2] log line
  ARGV[3] keepLogs ("" = keep all)

  Returns the number of log lines, or -1 when the job does not exist.
]]
if redis.call("EXISTS", KEYS[1]) == 0 then
  return -1
end
local n = redis.call("RPUSH", KEYS[2], ARGV[2])
local keep = tonumber(ARGV[3])
if keep and keep > 0 then
  redis.call("LTRIM", KEYS[2], -keep, -1)
  n = math.min(n, keep)
end
return n
