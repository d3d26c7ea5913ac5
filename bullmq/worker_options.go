package bullmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Processor runs one job. Its return value is stored as the job's return
// value, JSON-encoded (a json.RawMessage is stored as is, nil as "null").
// A non-nil error fails the attempt: the job is retried while attempts and
// backoff allow, unless the error wraps ErrUnrecoverable. A panic fails the
// attempt with the panic message. ctx is cancelled when the job's lock is
// lost (context.Cause wraps ErrLockLost) or when the worker stops without
// waiting for it; an error returned after that leaves the job active for the
// stalled checker instead of failing it.
type Processor func(ctx context.Context, job *Job) (any, error)

// Limiter is a worker-side rate limit: at most Max jobs start per Duration,
// counted for the whole queue in its "limiter" key (the same key Node
// workers use). The queue's global rate limit (meta max/duration), when set,
// overrides it.
type Limiter struct {
	// Max is the number of jobs allowed per Duration; must be > 0.
	Max int
	// Duration is the window length; must be at least 1ms.
	Duration time.Duration
}

// BackoffFunc computes the delay before retry number attemptsMade (1-based
// number of the attempt that just failed) for a custom backoff type. A
// negative result means "do not retry": the job fails for good.
type BackoffFunc func(attemptsMade int, backoffType string, err error, job *Job) time.Duration

// WorkerOptions configure a Worker. The zero value (or nil) gives the same
// defaults as the official Node worker.
type WorkerOptions struct {
	// Prefix is the key prefix. Defaults to "bull".
	Prefix string
	// Name is the worker name: written as "pb" on every job it takes and
	// used in its connection name ("P:<base64(Q)>:w:<Name>"), so Node's
	// Queue.getWorkers() lists it. Empty means unnamed.
	Name string
	// Concurrency is the number of jobs processed at once. Defaults to 1.
	Concurrency int
	// LockDuration is how long a job's lock lives without renewal. Locks of
	// all jobs in flight are renewed together every LockDuration/2.
	// Defaults to 30s; must be at least 10ms.
	LockDuration time.Duration
	// StalledInterval is the period of the stalled-job check (shared by the
	// whole fleet through the "stalled-check" key). Defaults to 30s; must be
	// at least 10ms.
	StalledInterval time.Duration
	// MaxStalledCount is how many times a job may stall before the next
	// worker that takes it fails it without running it. Defaults to 1;
	// negative is invalid. Use NoStalls for 0.
	MaxStalledCount int
	// NoStalls sets MaxStalledCount to 0 (a single stall fails the job).
	NoStalls bool
	// SkipStalledCheck disables this worker's stalled checker (other
	// workers of the fleet still run theirs).
	SkipStalledCheck bool
	// Limiter is the worker's rate limit; nil means none.
	Limiter *Limiter
	// RemoveOnComplete is the retention of completed jobs whose own options
	// have none; nil keeps them all.
	RemoveOnComplete *KeepJobs
	// RemoveOnFail is the retention of failed jobs whose own options have
	// none; nil keeps them all.
	RemoveOnFail *KeepJobs
	// DrainDelay is the longest a blocked fetch waits on the marker before
	// looking again. Defaults to 5s; must be at least 1ms.
	DrainDelay time.Duration
	// BackoffStrategy handles backoff types other than "fixed" and
	// "exponential". Nil means such jobs are retried at once.
	BackoffStrategy BackoffFunc
	// NoAutoPipeline stops a worker with Concurrency > 1 from sending its
	// fetch and finish scripts through the client's shared go-redis
	// AutoPipeline (created on first use and owned by the client), and from
	// finishing the jobs that complete close together in one script call
	// (moveToFinishedBatch, which writes exactly what as many
	// moveToFinished calls would): each job is then finished by a call of
	// its own.
	NoAutoPipeline bool
	// Logger receives diagnostics. Defaults to slog.Default().
	Logger *slog.Logger
	// Clock returns the current time; it stamps processedOn, finishedOn and
	// delayed due times. Defaults to time.Now.
	Clock func() time.Time

	// OnCompleted is called after a job completed, with its JSON result.
	OnCompleted func(job *Job, result json.RawMessage)
	// OnFailed is called after every failed attempt (retried or final);
	// job.AttemptsMade includes that attempt.
	OnFailed func(job *Job, err error)
	// OnError is called for errors that are not a job's own failure (Redis
	// errors, a finish refused because the lock was lost, …).
	OnError func(err error)
	// OnStalled is called for each job this worker's stalled checker moved
	// back to wait.
	OnStalled func(jobID string)
	// OnLockLost is called when the lock of a job in flight was lost; the
	// job's context is cancelled and its result will not be written.
	OnLockLost func(job *Job)
	// OnMissingJob is called for each job id a fetch found in the queue
	// without its job hash (evicted by a Redis whose maxmemory-policy is not
	// noeviction, or deleted by hand). Such an id is never run: the fetch
	// removes it from the queue and takes the next job. The worker also logs
	// it as a warning.
	OnMissingJob func(jobID string)
}

// Default worker settings, the same as the Node package's.
const (
	defaultLockDuration    = 30 * time.Second
	defaultStalledInterval = 30 * time.Second
	defaultDrainDelay      = 5 * time.Second
	maxRateLimitWait       = 30 * time.Second
	maxDelayedBlock        = 10 * time.Second
	errorRetryMin          = 100 * time.Millisecond
	errorRetryMax          = 15 * time.Second
)

// withDefaults validates o and returns a copy with the defaults filled in.
func (o *WorkerOptions) withDefaults() (WorkerOptions, error) {
	var w WorkerOptions
	if o != nil {
		w = *o
	}
	if w.Concurrency == 0 {
		w.Concurrency = 1
	}
	if w.LockDuration == 0 {
		w.LockDuration = defaultLockDuration
	}
	if w.StalledInterval == 0 {
		w.StalledInterval = defaultStalledInterval
	}
	if w.DrainDelay == 0 {
		w.DrainDelay = defaultDrainDelay
	}
	if w.MaxStalledCount == 0 && !w.NoStalls {
		w.MaxStalledCount = 1
	}
	if w.Logger == nil {
		w.Logger = slog.Default()
	}
	if w.Clock == nil {
		w.Clock = time.Now
	}
	var errs []error
	if w.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency %d is negative", w.Concurrency))
	}
	if w.LockDuration < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("lock duration %s is below 10ms", w.LockDuration))
	}
	if w.StalledInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("stalled interval %s is below 10ms", w.StalledInterval))
	}
	if w.DrainDelay < time.Millisecond {
		errs = append(errs, fmt.Errorf("drain delay %s is below 1ms", w.DrainDelay))
	}
	if w.MaxStalledCount < 0 {
		errs = append(errs, fmt.Errorf("max stalled count %d is negative", w.MaxStalledCount))
	}
	if w.NoStalls && w.MaxStalledCount != 0 {
		errs = append(errs, errors.New("NoStalls set together with MaxStalledCount"))
	}
	if l := w.Limiter; l != nil && (l.Max <= 0 || l.Duration < time.Millisecond) {
		errs = append(errs, fmt.Errorf("limiter max %d per %s: need max > 0 and duration >= 1ms", l.Max, l.Duration))
	}
	if err := errors.Join(errs...); err != nil {
		return w, fmt.Errorf("%w: worker: %w", ErrInvalidOptions, err)
	}
	return w, nil
}

// limiterArgs returns the worker limiter as the (max, duration ms) script
// arguments; 0, 0 means none.
func (o *WorkerOptions) limiterArgs() (int, int64) {
	if o.Limiter == nil {
		return 0, 0
	}
	return o.Limiter.Max, o.Limiter.Duration.Milliseconds()
}
