--[[
  moveStalledJobsToWait: the fleet-wide stalled-job check.

  Runs at most once per interval for the whole fleet (guard key
  stalled-check, PX interval). Every suspect in `stalled` that is still active
  and has no lock is put back at the head of wait (paused list while paused),
  its stc incremented; past maxStalledCount it gets `defa` so the next worker
  fails it without running it (unless it is the current iteration of a live
  job scheduler). Emits `waiting` prev=active and `stalled` for each. Then the
  current active list becomes the suspects of the next check.

  KEYS[1] stalled         KEYS[5] meta
  KEYS[2] wait            KEYS[6] paused
  KEYS[3] active          KEYS[7] marker
  KEYS[4] stalled-check   KEYS[8] events

  ARGV[1] maxStalledCount
  ARGV[2] queue base "P:Q:"
  ARGV[3] now (ms)
  ARGV[4] stalled interval (ms)

  Returns the ids moved back to wait (empty when another worker ran the check).
]]
local stalledKey, waitKey, activeKey, guardKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local metaKey, pausedKey, markerKey, eventsKey = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local maxStalled, base, now, interval = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]

if redis.call("EXISTS", guardKey) == 1 then
  return {}
end
redis.call("SET", guardKey, now, "PX", interval)

local maxEv = tonumber(redis.call("HGET", metaKey, "opts.maxLenEvents"))
if not maxEv then
  maxEv = 10000
  redis.call("HSET", metaKey, "opts.maxLenEvents", maxEv)
end
redis.call("XTRIM", eventsKey, "MAXLEN", "~", maxEv)

local flags = redis.call("HMGET", metaKey, "paused", "concurrency")
local paused = flags[1] ~= false
local target = waitKey
if paused then
  target = pausedKey
end

local moved = {}
local suspects = redis.call("SMEMBERS", stalledKey)
redis.call("DEL", stalledKey)
for _, id in ipairs(suspects) do
  if string.sub(id, 1, 2) == "0:" then
    redis.call("LREM", activeKey, 1, id)
  else
    local jobKey = base .. id
    if redis.call("EXISTS", jobKey .. ":lock") == 0 and redis.call("LREM", activeKey, 1, id) > 0 then
      if redis.call("EXISTS", jobKey) == 1 then
        local stc = redis.call("HINCRBY", jobKey, "stc", 1)
        if stc > maxStalled then
          local rjk = redis.call("HGET", jobKey, "rjk")
          if not (rjk and redis.call("EXISTS", base .. "repeat:" .. rjk) == 1) then
            redis.call("HSET", jobKey, "defa", "job stalled more than allowable limit")
          end
        end
        redis.call("RPUSH", target, id)
        redis.call("XADD", eventsKey, "MAXLEN", "~", maxEv, "*", "event", "waiting", "jobId", id, "prev", "active")
        redis.call("XADD", eventsKey, "MAXLEN", "~", maxEv, "*", "event", "stalled", "jobId", id)
        moved[#moved + 1] = id
      end
    end
  end
end

if #moved > 0 and not paused then
  local maxed = false
  if flags[2] then
    maxed = redis.call("LLEN", activeKey) >= tonumber(flags[2])
  end
  if not maxed then
    redis.call("ZADD", markerKey, 0, "0")
  end
end

local active = redis.call("LRANGE", activeKey, 0, -1)
for i = 1, #active, 7000 do
  redis.call("SADD", stalledKey, unpack(active, i, math.min(i + 6999, #active)))
end
return moved
