--[[
  resume: resume a globally paused queue, safely for BullMQ v5 and v6 data:
  deletes meta.paused, then merges the `paused` list into `wait` (a RENAME
  when `wait` does not exist, otherwise the paused ids are appended at the
  head end of wait, so they still run first and nothing in wait is lost).
  Adds marker "0" when jobs are ready, otherwise refreshes the delayed
  marker "1", and emits `resumed`.

  KEYS[1] wait     KEYS[5] delayed
  KEYS[2] paused   KEYS[6] marker
  KEYS[3] meta     KEYS[7] events
  KEYS[4] prioritized

  ARGV: none. Returns 1.
]]
local rcall = redis.call
local kWait, kPaused = KEYS[1], KEYS[2]
rcall("HDEL", KEYS[3], "paused")
if rcall("EXISTS", kPaused) == 1 then
  if rcall("EXISTS", kWait) == 0 then
    rcall("RENAME", kPaused, kWait)
  else
    while true do
      local ids = rcall("LRANGE", kPaused, 0, 6999)
      if #ids == 0 then
        break
      end
      rcall("RPUSH", kWait, unpack(ids))
      rcall("LTRIM", kPaused, #ids, -1)
    end
  end
end
if rcall("LLEN", kWait) + rcall("ZCARD", KEYS[4]) > 0 then
  rcall("ZADD", KEYS[6], 0, "0")
else
  local first = rcall("ZRANGE", KEYS[5], 0, 0, "WITHSCORES")
  if #first > 0 then
    rcall("ZADD", KEYS[6], tonumber(first[2]) / 4096, "1")
  end
end
rcall("XADD", KEYS[7], "*", "event", "resumed")
return 1
