package task

// Status is the life-cycle state of a task.
type Status string

// The statuses a task can be in. Pending, Queued and Running are live;
// Completed, Failed and Cancelled are terminal: no transition leaves them.
const (
	// StatusPending: stored in the database, not yet added to the queue.
	StatusPending Status = "pending"
	// StatusQueued: a job for the task waits in the queue (first attempt or retry).
	StatusQueued Status = "queued"
	// StatusRunning: a worker holds the task's job.
	StatusRunning Status = "running"
	// StatusCompleted: a worker finished the task successfully.
	StatusCompleted Status = "completed"
	// StatusFailed: the task failed for good (retries exhausted or unrecoverable).
	StatusFailed Status = "failed"
	// StatusCancelled: a client cancelled the task.
	StatusCancelled Status = "cancelled"
)

// Statuses lists every status, in life-cycle order.
var Statuses = []Status{StatusPending, StatusQueued, StatusRunning, StatusCompleted, StatusFailed, StatusCancelled}

// liveStatuses are the statuses a task can still leave.
var liveStatuses = []Status{StatusPending, StatusQueued, StatusRunning}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// Terminal reports whether s is a final status (completed, failed, cancelled).
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// ParseStatus returns the Status named by s, or ErrInvalidStatus.
func ParseStatus(s string) (Status, error) {
	st := Status(s)
	if !st.Valid() {
		return "", ErrInvalidStatus
	}
	return st, nil
}
