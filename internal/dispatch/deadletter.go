package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentorch/orchestrator/internal/task"
)

// Loop names a background loop: the "loop" label of the dead-letter
// metric.
type Loop string

// The loops that dead-letter items.
const (
	LoopRelay      Loop = "relay"
	LoopEvents     Loop = "events"
	LoopReconciler Loop = "reconciler"
	LoopResults    Loop = "results"
)

// Reasons an item (a result job, an event, a task) is dead-lettered: set
// aside for inspection instead of being applied or retried. They are the
// "reason" label of orchestrator_dead_letters_total.
const (
	// DeadMalformed: a result that cannot be decoded.
	DeadMalformed Outcome = "malformed"
	// DeadUnknownTask: a result for a task id that is not stored.
	DeadUnknownTask Outcome = "unknown_task"
	// DeadUnverified: a result or event that does not match the job it
	// names (no worker took the job, another worker holds it, the job is
	// not failed): forged or stale. The task is not changed.
	DeadUnverified Outcome = "unverified"
	// DeadInvalidData: the store refused the item's data for good
	// (task.ErrInvalidData); the task was finished with
	// task.MarkUnstorable instead.
	DeadInvalidData Outcome = "invalid_data"
	// DeadPersistent: applying the item failed maxItemTries times in a
	// row while the database and Redis answered; it is not retried again
	// (the reconciler repairs the task from Redis).
	DeadPersistent Outcome = "persistent_error"
)

// maxItemTries is how many times in a row one item may fail, while the
// database and Redis answer, before a loop gives up on it (DeadPersistent).
// Failures while a dependency does not answer are not counted: the item
// waits for it.
const maxItemTries = 8

// The error classes of the loops. An error from applying one item is
//
//   - permanent when retrying the same item cannot help: task.ErrInvalidData
//     (the store refused the data: SQLSTATE classes 22 and 23, SQLite
//     constraint/too big/mismatch, or a domain limit), a result that cannot
//     be decoded, or a result or event that does not verify. The item is
//     dead-lettered at once and the loop moves on;
//   - temporary otherwise: the item is retried with a growing delay. While
//     Redis or the database does not answer (a connection-level failure:
//     see dependencyDown) the retries go on as long as the outage; when
//     both answer and the same item still fails maxItemTries times, the
//     error is treated as permanent (DeadPersistent), so that no single
//     item stalls a loop.

// redisError marks the failure of a Redis call made while applying one
// item: the item is retried and its failure not counted towards
// maxItemTries (Redis is the loops' transport; the item cannot be decided
// without it).
type redisError struct{ err error }

func (e *redisError) Error() string { return e.err.Error() }
func (e *redisError) Unwrap() error { return e.err }

// fromRedis wraps a Redis error as a redisError; nil stays nil.
func fromRedis(err error) error {
	if err == nil {
		return nil
	}
	return &redisError{err: err}
}

// permanent reports whether err, from applying one item, cannot go away by
// retrying the item.
func permanent(err error) bool { return errors.Is(err, task.ErrInvalidData) }

// dependencyDown reports whether err is a failure of Redis, or the
// database does not answer a ping: a connection-level failure that a retry
// waits out.
func dependencyDown(ctx context.Context, svc *task.Service, err error) bool {
	var re *redisError
	if errors.As(err, &re) {
		return true
	}
	return svc.Ping(ctx) != nil
}

// applyOrUnstorable applies c; when the store refuses c's data for good
// (task.ErrInvalidData), it applies task.MarkUnstorable(c, err) instead,
// so the task still moves on, and returns the refusal as unstorable.
// err is the error of the change finally applied (nil when it applied).
func applyOrUnstorable(ctx context.Context, svc *task.Service, c task.Change) (t *task.Task, unstorable, err error) {
	t, err = svc.Apply(ctx, c)
	if !permanent(err) {
		return t, nil, err
	}
	unstorable = err
	t, err = svc.Apply(ctx, task.MarkUnstorable(c, err))
	if err != nil {
		err = fmt.Errorf("apply the unstorable outcome of task %s: %w", c.ID, err)
	}
	return t, unstorable, err
}
