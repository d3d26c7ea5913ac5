package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/agentorch/orchestrator/bullmq"
)

// CleanerOptions configures a Cleaner. The zero value is valid.
type CleanerOptions struct {
	// Interval is the time between cleans. Defaults to 5 minutes.
	Interval time.Duration
	// CompletedAge: completed jobs older than this are removed. Defaults
	// to 1 hour (QUEUE_CLEAN_COMPLETED_AGE).
	CompletedAge time.Duration
	// FailedAge: failed jobs older than this are removed. Defaults to 7
	// days (QUEUE_CLEAN_FAILED_AGE).
	FailedAge time.Duration
	// Limit is the most jobs removed per queue and state per clean.
	// Defaults to 10000.
	Limit int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, when set, counts removed jobs.
	Metrics *Metrics
}

// Cleaner periodically removes old completed and failed jobs from the
// given queues (the task queue and the results queue), on top of the
// removeOnComplete/removeOnFail options of each job. Task rows stay in the
// database. The events stream stays capped by BullMQ itself (meta
// opts.maxLenEvents, trimmed on every finish). Clean is idempotent, so
// several replicas may run a Cleaner.
type Cleaner struct {
	queues []*bullmq.Queue
	o      CleanerOptions
	log    *slog.Logger
}

// NewCleaner returns a Cleaner of queues.
func NewCleaner(queues []*bullmq.Queue, o CleanerOptions) (*Cleaner, error) {
	if len(queues) == 0 {
		return nil, errors.New("new cleaner: no queue")
	}
	if o.Interval < 0 || o.CompletedAge < 0 || o.FailedAge < 0 || o.Limit < 0 {
		return nil, errors.New("new cleaner: options must not be negative")
	}
	if o.Interval == 0 {
		o.Interval = 5 * time.Minute
	}
	if o.CompletedAge == 0 {
		o.CompletedAge = time.Hour
	}
	if o.FailedAge == 0 {
		o.FailedAge = 7 * 24 * time.Hour
	}
	if o.Limit == 0 {
		o.Limit = 10000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Cleaner{queues: queues, o: o, log: o.Logger.With("loop", "cleaner")}, nil
}

// Run cleans at once and then every Interval until ctx is cancelled, then
// returns nil.
func (c *Cleaner) Run(ctx context.Context) error {
	b := newBackoff(10*time.Second, c.o.Interval)
	for {
		wait := c.o.Interval
		if err := c.Clean(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait = b.fail()
			c.log.WarnContext(ctx, "clean failed", "err", err, "retry_in", wait)
		} else {
			b.reset()
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// Clean removes old completed and failed jobs from every queue once.
func (c *Cleaner) Clean(ctx context.Context) error {
	for _, q := range c.queues {
		for _, s := range []struct {
			state bullmq.JobState
			age   time.Duration
		}{{bullmq.StateCompleted, c.o.CompletedAge}, {bullmq.StateFailed, c.o.FailedAge}} {
			ids, err := q.Clean(ctx, s.age, c.o.Limit, s.state)
			if err != nil {
				return fmt.Errorf("clean %s jobs of %s: %w", s.state, q.Name(), err)
			}
			c.o.Metrics.clean(q.Name(), s.state, len(ids))
			if len(ids) > 0 {
				c.log.InfoContext(ctx, "cleaned old jobs", "queue", q.Name(), "state", s.state, "count", len(ids))
			}
		}
	}
	return nil
}
