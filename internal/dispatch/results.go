package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// ResultsOptions configures a ResultConsumer. The zero value is valid.
type ResultsOptions struct {
	// Concurrency is how many result jobs are processed at once; each
	// waits mostly on a database commit, so more than the CPU count pays.
	// Defaults to 32.
	Concurrency int
	// RetryFor bounds how long one result is retried inside the processor
	// while the database fails, before the job attempt fails (and BullMQ
	// retries it if its attempts allow). Defaults to 10 minutes.
	RetryFor time.Duration
	// WorkerName is the BullMQ worker name (the job's pb). Defaults to
	// "orchestrator".
	WorkerName string
	// KeepCompleted and KeepFailed bound the processed result jobs kept
	// in Redis when the job sets no removeOn* itself. Default to 1000
	// completed jobs and 7 days / 10000 failed jobs.
	KeepCompleted *bullmq.KeepJobs
	KeepFailed    *bullmq.KeepJobs
	// LockDuration is the lock of a result job being applied, and the
	// stalled-check period. Defaults to 10s.
	LockDuration time.Duration
	// ShutdownTimeout bounds how long Run waits, once ctx is cancelled,
	// for the results in flight. Defaults to 5s.
	ShutdownTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// Metrics, when set, counts results by outcome.
	Metrics *Metrics
}

// ResultConsumer processes the result jobs workers add to the results
// queue and finishes the tasks: completed or failed, with worker id,
// result, error message and execution time.
//
// A result is applied only when it matches the task's job in the task
// queue (see verifyResult): a worker took the job, the worker named in the
// result (workerId) is the one that took its latest attempt (the job's
// pb), and the result is not for an attempt the job has not started. A
// result that does not match (forged, or stale: a worker that lost its
// lock) is rejected: its job fails as unrecoverable with the reason, stays
// in the results queue's failed set for inspection, is counted
// (orchestrator_dead_letters_total{loop="results",reason="unverified"})
// and never changes the task.
//
// It is idempotent: a result for a task that is already finished changes
// nothing and succeeds (delivered twice, or after the events listener
// failed the task). A result for a cancelled task is recorded without
// changing its status. A malformed result (not a JSON object, no or bad
// taskId, unknown task, wrong status) fails its job as unrecoverable,
// with the reason, and the consumer goes on. A result whose data the store
// refuses for good (task.ErrInvalidData) fails the task with
// task.UnstorableReason and its job as unrecoverable. When the database or
// Redis does not answer, the processor retries with a growing delay (up to
// RetryFor), and then fails the attempt so that BullMQ retries it; a
// result that keeps failing while both answer is dead-lettered after
// maxItemTries. At shutdown the job is left active for the stalled checker
// to give back: no result is lost.
type ResultConsumer struct {
	client redis.UniversalClient
	tasks  *bullmq.Queue // the task queue: attempts of a task's job
	svc    *task.Service
	names  taskqueue.Names
	o      ResultsOptions
	log    *slog.Logger
}

// NewResultConsumer returns a consumer of the results queue of names that
// applies results (taskqueue.Result) to the tasks of svc.
func NewResultConsumer(client redis.UniversalClient, svc *task.Service, names taskqueue.Names, o ResultsOptions) (*ResultConsumer, error) {
	if client == nil || svc == nil {
		return nil, errors.New("new result consumer: nil client or service")
	}
	if o.Concurrency < 0 || o.RetryFor < 0 || o.LockDuration < 0 || o.ShutdownTimeout < 0 {
		return nil, errors.New("new result consumer: options must not be negative")
	}
	if o.Concurrency == 0 {
		o.Concurrency = 32
	}
	if o.RetryFor == 0 {
		o.RetryFor = 10 * time.Minute
	}
	if o.LockDuration == 0 {
		o.LockDuration = 10 * time.Second
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	if o.WorkerName == "" {
		o.WorkerName = "orchestrator"
	}
	if o.KeepCompleted == nil {
		o.KeepCompleted = bullmq.KeepLast(1000)
	}
	if o.KeepFailed == nil {
		o.KeepFailed = bullmq.KeepFor(7*24*time.Hour, 10000)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	names = names.WithDefaults()
	tasks, err := bullmq.NewQueue(client, names.Tasks(), &bullmq.QueueOptions{Prefix: names.Prefix, Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("new result consumer: %w", err)
	}
	return &ResultConsumer{client: client, tasks: tasks, svc: svc, names: names, o: o,
		log: o.Logger.With("loop", "results")}, nil
}

// Run processes result jobs until ctx is cancelled, then stops taking
// jobs, lets the results in flight finish (up to ShutdownTimeout) and
// returns nil. A result still in flight after that is left active; its
// lock expires and the stalled checker of a consumer gives it back.
func (c *ResultConsumer) Run(ctx context.Context) error {
	w, err := bullmq.NewWorker(c.client, c.names.Results(), c.Process, &bullmq.WorkerOptions{
		Prefix: c.names.Prefix, Name: c.o.WorkerName, Concurrency: c.o.Concurrency,
		LockDuration: c.o.LockDuration, StalledInterval: c.o.LockDuration,
		// Applying a result twice is harmless; failing it for stalling
		// (orchestrator killed while applying it) would lose it.
		MaxStalledCount:  1000,
		RemoveOnComplete: c.o.KeepCompleted, RemoveOnFail: c.o.KeepFailed, Logger: c.o.Logger,
	})
	if err != nil {
		return fmt.Errorf("result consumer: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- w.Run(runCtx) }()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("result consumer: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.ShutdownTimeout)
	defer ccancel()
	if err := w.Close(cctx); err != nil {
		c.log.Warn("results worker did not stop cleanly", "err", err)
	}
	cancel()
	<-errc
	return nil
}

// Process applies one result job. It is the bullmq Processor of the
// consumer and may be called directly (tests, other transports).
func (c *ResultConsumer) Process(ctx context.Context, job *bullmq.Job) (any, error) {
	r, id, err := taskqueue.ParseResult(job.Data)
	if err != nil {
		return nil, c.deadLetter(ctx, job, ResultRejected, DeadMalformed, fmt.Errorf("malformed result: %w", err))
	}
	deadline := c.o.Now().Add(c.o.RetryFor)
	b := newBackoff(100*time.Millisecond, 5*time.Second)
	tries := 0
	for {
		outcome, err := c.apply(ctx, job.ID, id, r)
		var unverified *unverifiedError
		switch {
		case err == nil:
			c.o.Metrics.result(outcome)
			return map[string]string{"taskId": id.String(), "outcome": string(outcome)}, nil
		case errors.Is(err, task.ErrNotFound):
			return nil, c.deadLetter(ctx, job, ResultRejected, DeadUnknownTask, fmt.Errorf("malformed result: unknown taskId %s", id))
		case errors.As(err, &unverified):
			return nil, c.deadLetter(ctx, job, ResultUnverified, DeadUnverified, fmt.Errorf("result rejected: %w", err))
		case outcome == ResultUnstorable:
			return nil, c.deadLetter(ctx, job, ResultUnstorable, DeadInvalidData, err)
		}
		c.o.Metrics.result(ResultRetry)
		if !dependencyDown(ctx, c.svc, err) {
			if tries++; tries >= maxItemTries {
				return nil, c.deadLetter(ctx, job, ResultRejected, DeadPersistent,
					fmt.Errorf("apply result of task %s failed %d times: %w", id, tries, err))
			}
		}
		wait := b.fail()
		if c.o.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("apply result of task %s: %w", id, err)
		}
		c.log.WarnContext(ctx, "cannot apply result, will retry", "task_id", id, "job_id", job.ID, "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return nil, fmt.Errorf("apply result of task %s: %w", id, context.Cause(ctx))
		}
	}
}

// deadLetter counts and logs a result job set aside for inspection and
// returns the unrecoverable error that leaves it in the failed set with
// err as its failedReason.
func (c *ResultConsumer) deadLetter(ctx context.Context, job *bullmq.Job, outcome, reason Outcome, err error) error {
	c.o.Metrics.result(outcome)
	c.o.Metrics.deadLetter(LoopResults, reason)
	c.log.WarnContext(ctx, "result job dead-lettered", "job_id", job.ID, "reason", reason, "err", err)
	return bullmq.Unrecoverable(err)
}

// apply verifies the result against the task's job, stores it and names
// the outcome: ResultCompleted, ResultFailed, ResultLate (recorded on a
// cancelled task) or ResultDuplicate (already finished). An
// *unverifiedError says the result does not match its job; ResultUnstorable
// with an error says the store refused the data and the task was failed
// with task.UnstorableReason instead.
func (c *ResultConsumer) apply(ctx context.Context, resultJobID string, id uuid.UUID, r taskqueue.Result) (Outcome, error) {
	now := c.o.Now()
	o := outcomeOf(r)
	// The result does not say which attempt produced it; the task's job
	// does. A worker posts its result while the attempt runs (atm not yet
	// counted, ats counted), so the larger of the two is the attempt. The
	// events listener may not have applied that attempt's start yet, and
	// once the task is finished it no longer can.
	attempts, err := c.verify(ctx, resultJobID, id, r)
	if errors.Is(err, errEarlierRun) {
		return ResultStale, nil
	}
	if err != nil {
		return "", err
	}
	o.Attempts = attempts
	change, outcome := task.MarkCompleted(id, o, now), ResultCompleted
	if r.Status == taskqueue.ResultFailed {
		change, outcome = task.MarkFailed(id, o, now), ResultFailed
	}
	_, unstorable, err := applyOrUnstorable(ctx, c.svc, change)
	switch {
	case err == nil && unstorable != nil:
		return ResultUnstorable, unstorable
	case err == nil:
		return outcome, nil
	case !errors.Is(err, task.ErrConflict):
		return "", err
	}
	// Finished already, or cancelled: record a late result on a cancelled
	// task; anything else is a duplicate.
	_, unstorable, err = applyOrUnstorable(ctx, c.svc, task.RecordLateResult(id, o, now))
	switch {
	case err == nil && unstorable != nil:
		return ResultUnstorable, unstorable
	case err == nil:
		return ResultLate, nil
	case errors.Is(err, task.ErrConflict):
		return ResultDuplicate, nil
	}
	return "", err
}

// verify applies the result rule (see verifyResult) with the task's job
// as Redis holds it, or, when the job is gone from the task queue, with
// the task as stored. It returns the attempt the result is about (counted
// from the job's attempt offset: a retried task's job), an
// *unverifiedError, errEarlierRun, task.ErrNotFound, or a temporary error.
// The job is read whole (its data holds the attempt offset).
func (c *ResultConsumer) verify(ctx context.Context, resultJobID string, id uuid.UUID, r taskqueue.Result) (int, error) {
	job, err := c.tasks.GetJob(ctx, id.String())
	switch {
	case err == nil:
		off := jobOffset(job)
		if err := verifyResult(resultJobID, id, r, runOf(job), off); err != nil {
			return 0, err
		}
		return off + max(job.AttemptsMade, job.AttemptsStarted), nil
	case !errors.Is(err, bullmq.ErrJobNotFound):
		return 0, fromRedis(err)
	}
	t, err := c.svc.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	if err := verifyResultWithoutJob(resultJobID, id, r, t); err != nil {
		return 0, err
	}
	return t.Attempts, nil
}
