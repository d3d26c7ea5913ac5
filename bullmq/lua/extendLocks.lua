--[[
  extendLocks: renew the locks of all jobs a worker holds, in one call.

  For each (jobId, token) pair whose lock still holds that token, sets the
  lock again with PX duration and removes the job from the stalled suspects.

  KEYS[1] stalled

  ARGV[1] queue base "P:Q:"
  ARGV[2] lock duration (ms)
  ARGV[3], ARGV[4], ... pairs: jobId, token

  Returns the ids whose lock could not be renewed (missing or held by another token).
]]
local base, duration = ARGV[1], ARGV[2]
local lost = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local lockKey = base .. id .. ":lock"
  if redis.call("GET", lockKey) == token then
    redis.call("SET", lockKey, token, "PX", duration)
    redis.call("SREM", KEYS[1], id)
  else
    lost[#lost + 1] = id
  end
end
return lost
