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
// task's current status is in From, its attempts satisfy Guard and the
// change is about the task's current run (AllowsRun); then it sets Status
// to To and every non-nil field. Otherwise it changes nothing and returns
// ErrConflict (or ErrNotFound when no task has the id).
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
	// NewRun starts a new run of a finished task (a client retried it):
	// Retries grows by one; AttemptOffset becomes the attempts after the
	// change (max(stored, Attempts)); Result, ExecutionTime and
	// CompletedAt are cleared (ErrorMessage stays, as the last error,
	// until the new run sets its own); a webhook delivery goes back to
	// WebhookWaiting with no attempts.
	NewRun bool
	// Notify says the task reaches a final status: when the task has a
	// webhook (Webhook != nil), its delivery becomes WebhookDue in the same
	// update (the outbox of the webhook relay).
	Notify bool
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

// AllowsRun reports whether the change is about the task's current run,
// given the task's stored AttemptOffset: a change about attempt n (Attempts
// > 0) applies only when n > offset, since attempts up to the offset were
// made by the job of an earlier run (a late event or result of a job that
// a retry replaced). Changes with unknown attempts (0) and NewRun always
// pass. Stores check it together with Allows.
func (c Change) AllowsRun(offset int) bool {
	return c.NewRun || c.Attempts == 0 || c.Attempts > offset
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
		Result: o.Result, ExecutionTime: o.ExecutionTime, CompletedAt: ptr(at.UTC()), Notify: true, At: at}
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
	return Change{ID: id, To: StatusCancelled, From: liveStatuses, CompletedAt: ptr(at.UTC()), Notify: true, At: at}
}

// RecordLateResult stores the outcome of a task that was cancelled while it
// ran, without changing its status (and without a second notification).
func RecordLateResult(id uuid.UUID, o Outcome, at time.Time) Change {
	c := finish(id, StatusCancelled, o, at)
	c.From = []Status{StatusCancelled}
	c.CompletedAt = nil
	c.Notify = false
	return c
}

// MarkRetried: a client retries the failed or cancelled task. It becomes
// pending for a new run (NewRun) whose job counts its attempts from
// attempts, the attempts the task's jobs made so far (the stored attempts
// when larger): the relay or the Service then adds the new job and marks
// it queued.
func MarkRetried(id uuid.UUID, attempts int, at time.Time) Change {
	return Change{ID: id, To: StatusPending, From: []Status{StatusFailed, StatusCancelled},
		Attempts: max(attempts, 0), NewRun: true, At: at}
}

// WebhookChange is a conditional update of the webhook delivery of one
// task, built by the functions of this file. A Store applies it atomically,
// only when the task's Retries equals Run (the delivery is about the
// current run) and its webhook state is in From; then it sets the state to
// To and, when Attempt is set, the attempt's outcome. Otherwise it changes
// nothing and returns ErrConflict (ErrNotFound when no task has the id).
// It does not change UpdatedAt: the task itself does not change.
type WebhookChange struct {
	ID   uuid.UUID
	Run  int
	From []WebhookState
	To   WebhookState
	// Attempt, when set, is the outcome of a delivery attempt: the stored
	// attempts become max(stored, Attempt.Number) and the last status,
	// last error and delivery time are replaced by the attempt's.
	Attempt *WebhookAttempt
}

// WebhookAttempt is the outcome of one delivery attempt.
type WebhookAttempt struct {
	Number      int        // 1-based
	Status      *int       // the HTTP status answered, nil when none
	Error       *string    // why the attempt failed, nil on success
	DeliveredAt *time.Time // set on success
}

// Allows reports whether the webhook change may apply to a task of run
// run whose delivery is in state s (nil when the task has no webhook).
func (c WebhookChange) Allows(run int, s *WebhookState) bool {
	if s == nil || run != c.Run {
		return false
	}
	for _, f := range c.From {
		if f == *s {
			return true
		}
	}
	return false
}

// MarkWebhookQueued: the relay added the delivery job of the due webhook
// of run run.
func MarkWebhookQueued(id uuid.UUID, run int) WebhookChange {
	return WebhookChange{ID: id, Run: run, From: []WebhookState{WebhookDue}, To: WebhookQueued}
}

// RecordWebhookFailure: delivery attempt number of run run failed (status
// is the HTTP status, nil when none came back) and will be tried again.
func RecordWebhookFailure(id uuid.UUID, run, number int, status *int, reason string) WebhookChange {
	return WebhookChange{ID: id, Run: run, From: []WebhookState{WebhookDue, WebhookQueued}, To: WebhookQueued,
		Attempt: &WebhookAttempt{Number: number, Status: status, Error: ptr(reason)}}
}

// MarkWebhookFailed: delivery attempt number of run run failed and no
// attempt is left (or the target is refused): the delivery failed for good.
func MarkWebhookFailed(id uuid.UUID, run, number int, status *int, reason string) WebhookChange {
	c := RecordWebhookFailure(id, run, number, status, reason)
	c.To = WebhookFailed
	return c
}

// MarkWebhookDelivered: delivery attempt number of run run got a 2xx
// answer (status) at at.
func MarkWebhookDelivered(id uuid.UUID, run, number, status int, at time.Time) WebhookChange {
	return WebhookChange{ID: id, Run: run, From: []WebhookState{WebhookDue, WebhookQueued}, To: WebhookDelivered,
		Attempt: &WebhookAttempt{Number: number, Status: ptr(status), DeliveredAt: ptr(at.UTC())}}
}
