package dispatch

// Outcome names what a loop did with one item (an add, an event, a result,
// a repair). It is the value of the "outcome" or "action" label of the
// loops' metrics.
type Outcome string

// Outcomes of an enqueue (Enqueuer).
const (
	// EnqueueOK: the job was added (or already existed).
	EnqueueOK Outcome = "ok"
	// EnqueueError: Redis refused or did not answer.
	EnqueueError Outcome = "error"
	// EnqueueSkipped: not tried, Redis failed a moment ago (fail fast).
	EnqueueSkipped Outcome = "skipped"
)

// Outcomes of an event (EventsListener.Apply).
const (
	// EventApplied: the task moved.
	EventApplied Outcome = "applied"
	// EventStale: the task is already past the event.
	EventStale Outcome = "stale"
	// EventGone: the job or the task no longer exists.
	EventGone Outcome = "gone"
	// EventIgnored: the event cannot change a task.
	EventIgnored Outcome = "ignored"
	// EventRejected: the event does not match its job (a failed event for
	// a job that is not failed, an active event for a job no worker took):
	// forged or corrupt; the task is not changed (dead-lettered as
	// DeadUnverified).
	EventRejected Outcome = "rejected"
	// EventError: Redis or the database failed; the event is retried.
	EventError Outcome = "error"
)

// Outcomes of a result (ResultConsumer.Process).
const (
	// ResultCompleted: the task completed.
	ResultCompleted Outcome = "completed"
	// ResultFailed: the task failed.
	ResultFailed Outcome = "failed"
	// ResultLate: recorded on a task cancelled while it ran.
	ResultLate Outcome = "late"
	// ResultDuplicate: the task was already finished.
	ResultDuplicate Outcome = "duplicate"
	// ResultStale: the result of a run that a retry replaced (its attempt
	// is at or below the attempt offset of the task's job); not applied.
	ResultStale Outcome = "stale"
	// ResultRejected: malformed, or for an unknown task.
	ResultRejected Outcome = "rejected"
	// ResultUnverified: the result does not match the task's job (see
	// ResultConsumer); the task is not changed.
	ResultUnverified Outcome = "unverified"
	// ResultUnstorable: the store refused the result's data; the task
	// failed with task.UnstorableReason.
	ResultUnstorable Outcome = "unstorable"
	// ResultRetry: the database failed; the result is retried.
	ResultRetry Outcome = "retry"
)

// RepairReEnqueued is the reconciler's action for a queued task whose job
// was missing and was added again. Its other actions are
// "<job state>-><task status>" (see repairOf).
const RepairReEnqueued Outcome = "re-enqueued"
