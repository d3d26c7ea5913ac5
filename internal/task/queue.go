package task

// QueueCounts are the job counts of the task queue by state, as the queue
// adapter reports them for the statistics.
type QueueCounts struct {
	Waiting     int64 `json:"waiting" doc:"Jobs waiting for a worker."`
	Active      int64 `json:"active" doc:"Jobs a worker holds."`
	Completed   int64 `json:"completed" doc:"Completed jobs still kept in the queue."`
	Failed      int64 `json:"failed" doc:"Failed jobs still kept in the queue."`
	Delayed     int64 `json:"delayed" doc:"Jobs waiting for their retry backoff."`
	Prioritized int64 `json:"prioritized" doc:"Jobs waiting with a priority."`
	Paused      int64 `json:"paused" doc:"Jobs waiting while the queue is paused."`
}

// QueueHealth is the health of the queue's Redis, as the queue adapter
// reports it for the health check.
type QueueHealth struct {
	Connected bool `json:"connected"`
	// LatencyMs is the PING round trip in milliseconds.
	LatencyMs float64 `json:"latencyMs" doc:"Round-trip time of a PING."`
	// MaxmemoryPolicy is Redis' maxmemory-policy ("" when unknown).
	MaxmemoryPolicy string `json:"maxmemoryPolicy,omitempty" doc:"Redis maxmemory-policy; queues need noeviction."`
	// Warning says what is wrong with a Redis that answers (eviction
	// policy), or why it does not answer.
	Warning string `json:"warning,omitempty" doc:"A problem worth fixing, e.g. a maxmemory-policy other than noeviction."`
	// Refused is true when the orchestrator adds no job to this Redis
	// (its maxmemory-policy is not noeviction, and REDIS_ALLOW_EVICTION is
	// not set); the health check is then unhealthy.
	Refused bool `json:"refused,omitempty" doc:"True while no job is added to Redis because its maxmemory-policy may evict queue keys."`
}
