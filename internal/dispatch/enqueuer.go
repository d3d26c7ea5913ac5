package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// EnqueuerOptions configures an Enqueuer. The zero value is valid.
type EnqueuerOptions struct {
	// Attempts is how many times a job is tried. Defaults to 3.
	Attempts int
	// Backoff is the first delay of the exponential retry backoff.
	// Defaults to 2s; a negative value means no backoff.
	Backoff time.Duration
	// KeepCompleted says how long and how many completed jobs stay in
	// Redis. Defaults to 1 hour and 1000 jobs.
	KeepCompletedAge   time.Duration
	KeepCompletedCount int
	// KeepFailed says how long and how many failed jobs stay in Redis.
	// Defaults to 7 days and 10000 jobs.
	KeepFailedAge   time.Duration
	KeepFailedCount int
	// Metrics, when set, counts the adds.
	Metrics *Metrics
	// FailFastFor is how long Enqueue fails at once with
	// ErrQueueUnavailable after an add failed. Defaults to 1s; a negative
	// value disables it.
	FailFastFor time.Duration
	// RetryOnTimeout is written into every job's data
	// (taskqueue.Job.RetryOnTimeout): whether a worker may retry a run
	// stopped by its timeout. Defaults to false (TASK_RETRY_ON_TIMEOUT).
	RetryOnTimeout bool
	// Gate, when set, is asked before every add; an error refuses the add
	// (the task stays pending for the relay). The Dispatcher sets its
	// eviction-policy gate here. Defaults to none.
	Gate func(ctx context.Context) error
	// Now defaults to time.Now.
	Now func() time.Time
}

// Defaults of EnqueuerOptions.
const (
	DefaultAttempts           = 3
	DefaultBackoff            = 2 * time.Second
	DefaultKeepCompletedAge   = time.Hour
	DefaultKeepCompletedCount = 1000
	DefaultKeepFailedAge      = 7 * 24 * time.Hour
	DefaultKeepFailedCount    = 10000
)

// Enqueuer adds task jobs (taskqueue.Job, named taskqueue.JobName) to the
// task queue. It implements task.Enqueuer
// and task.JobCanceller. It is safe for concurrent use.
type Enqueuer struct {
	queue   *bullmq.Queue
	pub     CancelRequester
	names   taskqueue.Names
	opts    bullmq.JobOptions
	metrics *Metrics
	pause   time.Duration
	now     func() time.Time
	retryTO bool
	gate    func(ctx context.Context) error
	// downUntil (Unix ns) is set after a failed add: until then Enqueue
	// fails at once instead of waiting on an unreachable Redis, so that
	// creating tasks stays fast while Redis is down (the relay queues them).
	downUntil atomic.Int64
}

// ErrQueueUnavailable is returned by Enqueue, without trying Redis, for a
// short time after an add failed.
var ErrQueueUnavailable = errors.New("task queue unavailable")

var (
	_ task.Enqueuer     = (*Enqueuer)(nil)
	_ task.JobCanceller = (*Enqueuer)(nil)
	_ task.JobRetrier   = (*Enqueuer)(nil)
)

// CancelRequester is the part of a Redis client the Enqueuer uses to
// record and publish cancel requests; redis.UniversalClient implements it.
type CancelRequester interface {
	Publish(ctx context.Context, channel string, message any) *redis.IntCmd
	ZAdd(ctx context.Context, key string, members ...redis.Z) *redis.IntCmd
	ZRemRangeByScore(ctx context.Context, key, min, max string) *redis.IntCmd
}

// NewEnqueuer returns an Enqueuer adding jobs to queue (the task queue of
// names) and requesting cancels with client (see CancelJob). It returns an
// error for invalid options.
func NewEnqueuer(queue *bullmq.Queue, client CancelRequester, names taskqueue.Names, o EnqueuerOptions) (*Enqueuer, error) {
	if queue == nil {
		return nil, fmt.Errorf("new enqueuer: nil queue")
	}
	if o.Attempts < 0 || o.KeepCompletedCount < 0 || o.KeepFailedCount < 0 {
		return nil, fmt.Errorf("new enqueuer: attempts and keep counts must not be negative")
	}
	if err := nonNegative("keep completed age", o.KeepCompletedAge); err != nil {
		return nil, fmt.Errorf("new enqueuer: %w", err)
	}
	if err := nonNegative("keep failed age", o.KeepFailedAge); err != nil {
		return nil, fmt.Errorf("new enqueuer: %w", err)
	}
	if o.Attempts == 0 {
		o.Attempts = DefaultAttempts
	}
	if o.Backoff == 0 {
		o.Backoff = DefaultBackoff
	}
	if o.KeepCompletedAge == 0 {
		o.KeepCompletedAge = DefaultKeepCompletedAge
	}
	if o.KeepCompletedCount == 0 {
		o.KeepCompletedCount = DefaultKeepCompletedCount
	}
	if o.KeepFailedAge == 0 {
		o.KeepFailedAge = DefaultKeepFailedAge
	}
	if o.KeepFailedCount == 0 {
		o.KeepFailedCount = DefaultKeepFailedCount
	}
	if o.FailFastFor == 0 {
		o.FailFastFor = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	jo := bullmq.JobOptions{
		Attempts:         o.Attempts,
		RemoveOnComplete: bullmq.KeepFor(o.KeepCompletedAge, o.KeepCompletedCount),
		RemoveOnFail:     bullmq.KeepFor(o.KeepFailedAge, o.KeepFailedCount),
	}
	if o.Backoff > 0 {
		jo.Backoff = &bullmq.Backoff{Type: "exponential", Delay: o.Backoff}
	}
	return &Enqueuer{queue: queue, pub: client, names: names.WithDefaults(), opts: jo, metrics: o.Metrics,
		pause: o.FailFastFor, now: o.Now, retryTO: o.RetryOnTimeout, gate: o.Gate}, nil
}

// Enqueue adds the job of t, with job id = task id, the task's priority
// (BullMQ's) and, in its data, the attempt offset of the task's current
// run (taskqueue.Job.AttemptOffset). It is idempotent: when a job with
// that id exists, BullMQ adds nothing. For a retried task it first removes
// the job of the previous run, if still in Redis (ErrOldRunActive while a
// worker holds it). For FailFastFor after a failed add it returns
// ErrQueueUnavailable without trying.
func (e *Enqueuer) Enqueue(ctx context.Context, t *task.Task) error {
	if e.pause > 0 && e.now().UnixNano() < e.downUntil.Load() {
		e.metrics.enqueue(EnqueueSkipped)
		return fmt.Errorf("add job %s: %w", t.ID, ErrQueueUnavailable)
	}
	if e.gate != nil {
		if err := e.gate(ctx); err != nil {
			e.metrics.enqueue(EnqueueSkipped)
			return fmt.Errorf("add job %s: %w", t.ID, err)
		}
	}
	if t.Retries > 0 {
		// A retried task: the job of its previous run may still be in
		// Redis under the same id.
		if err := e.clearOldRun(ctx, t); err != nil {
			if !errors.Is(err, ErrOldRunActive) {
				e.metrics.enqueue(EnqueueError)
			}
			return fmt.Errorf("add job %s: %w", t.ID, err)
		}
	}
	opts := e.opts
	opts.JobID = t.ID.String()
	if t.Priority != nil {
		opts.Priority = *t.Priority
	}
	data := taskqueue.Job{TaskID: t.ID.String(), Code: t.Code, Prompt: t.Prompt, Timeout: t.Timeout,
		RetryOnTimeout: e.retryTO, AttemptOffset: t.AttemptOffset}
	if _, err := e.queue.Add(ctx, taskqueue.JobName, data, &opts); err != nil {
		e.metrics.enqueue(EnqueueError)
		if e.pause > 0 && ctx.Err() == nil {
			e.downUntil.Store(e.now().Add(e.pause).UnixNano())
		}
		return fmt.Errorf("add job %s: %w", t.ID, err)
	}
	e.metrics.enqueue(EnqueueOK)
	return nil
}

// nonNegative checks that an option's duration is not negative.
func nonNegative(name string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("%s must not be negative, got %s", name, d)
	}
	return nil
}
