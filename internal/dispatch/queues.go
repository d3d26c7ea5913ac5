package dispatch

// Queues names the two BullMQ queues the orchestrator uses.
type Queues struct {
	// Prefix is the BullMQ key prefix. Defaults to "bull".
	Prefix string
	// Tasks is the task queue. Defaults to "claude-tasks".
	Tasks string
}

// Defaults for Queues.
const (
	DefaultPrefix    = "bull"
	DefaultTaskQueue = "claude-tasks"
	// ResultsSuffix is appended to the task queue's name to name the
	// results queue.
	ResultsSuffix = "-results"
)

func (q Queues) withDefaults() Queues {
	if q.Prefix == "" {
		q.Prefix = DefaultPrefix
	}
	if q.Tasks == "" {
		q.Tasks = DefaultTaskQueue
	}
	return q
}

// Results returns the name of the results queue: Tasks + "-results".
func (q Queues) Results() string { return q.withDefaults().Tasks + ResultsSuffix }

// CancelChannel returns the Redis Pub/Sub channel on which cancel requests
// for running tasks are published: "<prefix>:<task queue>:cancel". Each
// message is the id of a cancelled task (which is its job id). Workers
// subscribe to it and stop the task if they run it.
func (q Queues) CancelChannel() string {
	q = q.withDefaults()
	return q.Prefix + ":" + q.Tasks + ":cancel"
}

// checkpointName is the name under which the events listener stores the
// last stream id it applied.
func (q Queues) checkpointName() string {
	q = q.withDefaults()
	return "events:" + q.Prefix + ":" + q.Tasks
}
