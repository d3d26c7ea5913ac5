--[[
  pause: pause the queue globally, in the BullMQ v5 layout, which BullMQ v6
  workers also honour (they test meta.paused; their resume drains `paused`).
  Sets meta.paused, moves the wait list to `paused` (a RENAME, or a merge when
  a `paused` list already exists, so no id is ever overwritten), deletes the
  marker so blocked workers do not wake, and emits `paused`.

  KEYS[1] wait     KEYS[4] marker
  KEYS[2] paused   KEYS[5] events
  KEYS[3] meta

  ARGV: none. Returns 1.
]]
local rcall = redis.call
local kWait, kPaused = KEYS[1], KEYS[2]
rcall("HSET", KEYS[3], "paused", 1)
if rcall("EXISTS", kWait) == 1 then
  -- Older ids sit at the right end. Append the paused ids (older) to the
  -- right of wait, then make that the paused list.
  while true do
    local ids = rcall("LRANGE", kPaused, 0, 6999)
    if #ids == 0 then
      break
    end
    rcall("RPUSH", kWait, unpack(ids))
    rcall("LTRIM", kPaused, #ids, -1)
  end
  rcall("RENAME", kWait, kPaused)
end
rcall("DEL", KEYS[4])
rcall("XADD", KEYS[5], "*", "event", "paused")
return 1
