--[[
  include/admin.lua: helper functions shared by the queue administration
  scripts (removeJob, cleanJobs, drain, obliterate). The Go loader prepends
  this text to those scripts; it is not a script on its own and reads no KEYS
  or ARGV.
]]
local rcall = redis.call

-- maxEventsOf returns meta "opts.maxLenEvents", writing the default 10000
-- when it is missing.
local function maxEventsOf(metaKey)
  local n = rcall("HGET", metaKey, "opts.maxLenEvents")
  if not n then
    rcall("HSET", metaKey, "opts.maxLenEvents", 10000)
    return 10000
  end
  return tonumber(n)
end

-- isSchedulerIteration reports whether jobId is the current iteration of a
-- job scheduler that still exists ("repeat:<schedulerId>:<nextMillis>").
local function isSchedulerIteration(base, jobKey, jobId)
  local rjk = rcall("HGET", jobKey, "rjk")
  if not rjk then
    return false
  end
  local score = rcall("ZSCORE", base .. "repeat", rjk)
  if not score then
    return false
  end
  return jobId == ("repeat:" .. rjk .. ":" .. score)
end

-- deleteJob deletes every key of job jobId (hash, logs, flow keys), its
-- deduplication key when it still points to this job, and its link in the
-- parent's dependencies. It does not touch the state lists and sets.
local function deleteJob(base, jobId)
  local jobKey = base .. jobId
  local f = rcall("HMGET", jobKey, "deid", "parentKey")
  if f[1] then
    local dk = base .. "de:" .. f[1]
    if rcall("GET", dk) == jobId then
      rcall("DEL", dk)
    end
  end
  if f[2] then
    rcall("SREM", f[2] .. ":dependencies", jobKey)
  end
  rcall("DEL", jobKey, jobKey .. ":logs", jobKey .. ":dependencies",
    jobKey .. ":processed", jobKey .. ":failed", jobKey .. ":unsuccessful")
end
