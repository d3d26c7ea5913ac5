// Package bullmq is a Go client for BullMQ queues on Redis that speaks the
// official Node package's wire protocol (BullMQ 5.x and 6.x), so Go and Node
// producers, workers and observers share one queue.
//
// A Queue adds jobs (Add, AddBulk) and writes exactly what the official
// Queue.add writes: the job hash, its "opts" JSON, the id counter, the wait
// list, the delayed and prioritized sets with their score encodings, the
// marker that wakes blocked workers, the meta hash and the events. It also
// reads jobs and counts (GetJob, GetJobState, GetJobCounts, Count) and
// administers the queue (Remove, Clean, Pause, Resume, Drain, Obliterate).
// A Worker takes jobs and processes them; QueueEvents reads the events
// stream.
//
// Every multi-key change runs as one of the package's own Lua scripts
// (embedded from lua/, loaded with EVALSHA and re-sent with EVAL after a
// NOSCRIPT reply), so each change is atomic. Errors that callers branch on
// are sentinels (ErrJobNotFound, ErrJobLocked, …) to test with errors.Is.
//
// Any redis.UniversalClient works: single node, Sentinel or Cluster. With
// Cluster, put a hash tag in the prefix or the queue name ("{bull}") exactly
// as the Node side does; the package never adds one itself. Key strings are
// "<prefix>:<queue>:<suffix>", with the prefix "bull" by default.
package bullmq
