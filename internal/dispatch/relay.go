package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/task"
)

// RelayOptions configures a Relay. The zero value is valid.
type RelayOptions struct {
	// Interval is the time between sweeps. Defaults to 1s.
	Interval time.Duration
	// MinAge skips tasks created (or retried) less than MinAge ago, which
	// the request that created (or retried) them is still enqueueing.
	// Defaults to 2s.
	MinAge time.Duration
	// Batch is the most pending tasks handled per sweep. Defaults to 500.
	Batch int
	// Parallel is how many tasks are enqueued at once. Defaults to 8.
	Parallel int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// Metrics, when set, receives the backlog.
	Metrics *Metrics
	// Canceller, when set, stops the job of a task that was cancelled
	// while the relay added it (normally the Enqueuer).
	Canceller task.JobCanceller
}

// Relay queues the tasks that stayed pending because Redis was down when
// they were created (the database is the outbox). Each sweep lists the
// oldest pending tasks and enqueues them through the Service.
//
// Several replicas may run a Relay at once without a lock: the job id is
// the task id, so a second add of the same task adds nothing, and
// MarkQueued is a conditional update that only one replica wins. The
// remaining window (a task whose job already ran and was removed from
// Redis while its MarkQueued failed) is narrowed by MinAge and by reading
// the task again just before adding its job.
type Relay struct {
	svc *task.Service
	o   RelayOptions
	log *slog.Logger
}

// NewRelay returns a Relay on svc, which must have an Enqueuer.
func NewRelay(svc *task.Service, o RelayOptions) (*Relay, error) {
	if svc == nil {
		return nil, errors.New("new relay: nil service")
	}
	if o.Interval < 0 || o.MinAge < 0 || o.Batch < 0 || o.Parallel < 0 {
		return nil, errors.New("new relay: options must not be negative")
	}
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.MinAge == 0 {
		o.MinAge = 2 * time.Second
	}
	if o.Batch == 0 {
		o.Batch = 500
	}
	if o.Parallel == 0 {
		o.Parallel = 8
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Relay{svc: svc, o: o, log: o.Logger.With("loop", "relay")}, nil
}

// Run sweeps every Interval until ctx is cancelled, then returns nil. A
// sweep that fails is retried with a growing delay (up to 5s).
func (r *Relay) Run(ctx context.Context) error {
	b := newBackoff(r.o.Interval, 5*time.Second)
	for {
		wait := r.o.Interval
		if n, err := r.Sweep(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait = b.fail()
			r.log.WarnContext(ctx, "relay sweep failed", "err", err, "retry_in", wait)
		} else {
			b.reset()
			if n == r.o.Batch {
				wait = 0 // more are waiting
			}
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// Sweep enqueues the oldest pending tasks (up to Batch) and returns how
// many it found. It stops at the first enqueue error (Redis is probably
// down) and returns it; a task the queue refuses for good is failed and
// skipped (see relay).
func (r *Relay) Sweep(ctx context.Context) (int, error) {
	tasks, err := r.svc.ListOldest(ctx, task.StatusPending, r.o.Batch)
	if err != nil {
		return 0, fmt.Errorf("list pending tasks: %w", err)
	}
	r.o.Metrics.backlog(len(tasks))
	cutoff := r.o.Now().Add(-r.o.MinAge)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, r.o.Parallel)
	)
	for _, t := range tasks {
		// UpdatedAt is CreatedAt for a new task; for a retried one it is
		// the retry, whose request is still enqueueing it.
		if t.CreatedAt.After(cutoff) || t.UpdatedAt.After(cutoff) {
			continue
		}
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(t *task.Task) {
			defer func() { <-sem; wg.Done() }()
			if err := r.relay(ctx, t); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}(t)
	}
	wg.Wait()
	return len(tasks), firstErr
}

// UnqueueableReason starts the error of a pending task whose job the queue
// refuses for good (invalid job options or id, or data the store refuses).
const UnqueueableReason = "task could not be queued: "

// unqueueable reports whether an enqueue error is permanent for the task:
// the queue refused the job itself (not Redis being away).
func unqueueable(err error) bool {
	return permanent(err) || errors.Is(err, bullmq.ErrInvalidOptions) || errors.Is(err, bullmq.ErrInvalidJobID)
}

// relay enqueues one pending task, after checking it is still pending. A
// task the queue refuses for good is failed with UnqueueableReason (and
// counted); any other error is returned: Redis is probably down, and the
// sweep stops.
func (r *Relay) relay(ctx context.Context, t *task.Task) error {
	cur, err := r.svc.Get(ctx, t.ID)
	if err != nil {
		return fmt.Errorf("get task %s: %w", t.ID, err)
	}
	if cur.Status != task.StatusPending {
		return nil
	}
	queued, err := r.svc.Enqueue(ctx, cur)
	if errors.Is(err, ErrOldRunActive) {
		// A retried task whose previous run's worker has not stopped yet:
		// this task waits, the others go on.
		r.log.InfoContext(ctx, "retried task waits for its previous run to stop", "task_id", t.ID)
		return nil
	}
	if err != nil && unqueueable(err) {
		// The task can never be queued as it is: fail it with the reason
		// rather than retry it on every sweep.
		r.o.Metrics.deadLetter(LoopRelay, DeadInvalidData)
		r.log.ErrorContext(ctx, "pending task cannot be queued; failed", "task_id", t.ID, "err", err)
		_, _, ferr := applyOrUnstorable(ctx, r.svc, task.MarkFailed(t.ID, task.Outcome{ErrorMessage: UnqueueableReason + err.Error()}, r.o.Now()))
		if ferr != nil && !errors.Is(ferr, task.ErrConflict) {
			return ferr
		}
		return nil
	}
	if err != nil {
		return err
	}
	if queued.Status == task.StatusCancelled {
		// Cancelled while we added its job: take the job back out.
		if r.o.Canceller != nil {
			if err := r.o.Canceller.CancelJob(ctx, t.ID); err != nil {
				r.log.WarnContext(ctx, "could not remove the job of a task cancelled while relayed", "task_id", t.ID, "err", err)
			}
		}
	}
	r.log.DebugContext(ctx, "relayed pending task", "task_id", t.ID, "status", queued.Status)
	return nil
}
