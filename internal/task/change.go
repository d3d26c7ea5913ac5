package task

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// AttemptGuard orders events by attempt number so that an older event never
// overwrites a newer state.
type AttemptGuard int

const (
	// AnyAttempt applies the change whatever the stored attempts.
	AnyAttempt AttemptGuard = iota
	// NewerAttempt applies the change only when stored attempts < Change.Attempts
	// (a worker took a new attempt: running).
	NewerAttempt
	// SameOrNewerAttempt applies the change only when stored attempts <= Change.Attempts
	// (the attempt the task is on, or a later one, failed and will be retried).
	SameOrNewerAttempt
)

// Change is a conditional update of one task, built by the functions of
// this file, never by hand. A Store applies it atomically: only when the
// task's current status is in From and its attempts satisfy Guard; then it
// sets Status to To and every non-nil field. Otherwise it changes nothing
// and returns ErrConflict (or ErrNotFound when no task has the id).
type Change struct {
	ID    uuid.UUID
	To    Status
	From  []Status
	Guard AttemptGuard
	// Attempts, when > 0, is the attempt the event is about; the stored
	// attempts become max(stored, Attempts).
	Attempts      int
	WorkerID      *string
	Result        json.RawMessage
	ErrorMessage  *string
	ExecutionTime *int64
	StartedAt     *time.Time
	CompletedAt   *time.Time
	// Sanitized is true when the sanitising rules (see SanitizeText)
	// changed the data the change carries; the store then sets the task's
	// Sanitized flag (never clears it).
	Sanitized bool
	// At is the time of the change; it becomes UpdatedAt.
	At time.Time
}

// Allows reports whether the change may apply to a task in status s with
// the given stored attempts. Stores use the same rule in their conditional
// update; this method is the reference for tests and for stores that check
// in Go inside a transaction.
func (c Change) Allows(s Status, attempts int) bool {
	ok := false
	for _, f := range c.From {
		if f == s {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	switch c.Guard {
	case NewerAttempt:
		return attempts < c.Attempts
	case SameOrNewerAttempt:
		return attempts <= c.Attempts
	}
	return true
}

func ptr[T any](v T) *T { return &v }

// MarkQueued: a job for the pending task was added to the queue.
func MarkQueued(id uuid.UUID, at time.Time) Change {
	return Change{ID: id, To: StatusQueued, From: []Status{StatusPending}, At: at}
}

// MarkRunning: a worker took attempt number attempt (1-based) at startedAt.
// workerID may be empty when the worker has no name. A stale event (for an
// attempt already seen) is refused with ErrConflict.
func MarkRunning(id uuid.UUID, attempt int, workerID string, startedAt time.Time) Change {
	c := Change{ID: id, To: StatusRunning, From: liveStatuses, Guard: NewerAttempt,
		Attempts: attempt, StartedAt: ptr(startedAt.UTC()), At: startedAt}
	if workerID != "" {
		c.WorkerID = ptr(workerID)
	}
	c.sanitize()
	return c
}

// MarkRetrying: attempt number attempt failed with errMsg and the queue will
// try again; the task goes back to queued, keeping the error. This is the
// only way out of running other than a terminal status.
func MarkRetrying(id uuid.UUID, attempt int, errMsg string, at time.Time) Change {
	c := Change{ID: id, To: StatusQueued, From: liveStatuses, Guard: SameOrNewerAttempt,
		Attempts: attempt, ErrorMessage: ptr(errMsg), At: at}
	c.sanitize()
	return c
}

// Outcome is the final result of a task as reported by a worker or the queue.
type Outcome struct {
	WorkerID      string          // empty: unknown
	Result        json.RawMessage // nil: none
	ErrorMessage  string          // empty: none
	ExecutionTime *int64          // milliseconds, nil: unknown
	Attempts      int             // 0: unknown
}

func finish(id uuid.UUID, to Status, o Outcome, at time.Time) Change {
	c := Change{ID: id, To: to, From: liveStatuses, Attempts: o.Attempts,
		Result: o.Result, ExecutionTime: o.ExecutionTime, CompletedAt: ptr(at.UTC()), At: at}
	if o.WorkerID != "" {
		c.WorkerID = ptr(o.WorkerID)
	}
	if o.ErrorMessage != "" {
		c.ErrorMessage = ptr(o.ErrorMessage)
	}
	c.sanitize()
	return c
}

// MarkCompleted: the task finished successfully.
func MarkCompleted(id uuid.UUID, o Outcome, at time.Time) Change {
	return finish(id, StatusCompleted, o, at)
}

// MarkFailed: the task failed for good.
func MarkFailed(id uuid.UUID, o Outcome, at time.Time) Change {
	return finish(id, StatusFailed, o, at)
}

// MarkCancelled: a client cancelled the live task.
func MarkCancelled(id uuid.UUID, at time.Time) Change {
	return Change{ID: id, To: StatusCancelled, From: liveStatuses, CompletedAt: ptr(at.UTC()), At: at}
}

// RecordLateResult stores the outcome of a task that was cancelled while it
// ran, without changing its status.
func RecordLateResult(id uuid.UUID, o Outcome, at time.Time) Change {
	c := finish(id, StatusCancelled, o, at)
	c.From = []Status{StatusCancelled}
	c.CompletedAt = nil
	return c
}
