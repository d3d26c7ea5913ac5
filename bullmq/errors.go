package bullmq

import (
	"errors"
	"fmt"
)

// Errors returned by the package. Callers branch on them with errors.Is; the
// returned errors wrap them with the operation and job id.
var (
	// ErrJobNotFound means the job hash does not exist (Lua code -1).
	ErrJobNotFound = errors.New("bullmq: job not found")
	// ErrMissingLock means the job's lock is gone, so the caller lost it
	// (Lua code -2).
	ErrMissingLock = errors.New("bullmq: job lock missing")
	// ErrJobNotActive means the job is not in the state the operation expects,
	// for example not in the active list when a worker finishes it (Lua code -3).
	ErrJobNotActive = errors.New("bullmq: job not in expected state")
	// ErrPendingChildren means a flow parent cannot complete while children
	// are pending (Lua code -4).
	ErrPendingChildren = errors.New("bullmq: job has pending children")
	// ErrParentMissing means the parent job given at add time does not exist
	// (Lua code -5).
	ErrParentMissing = errors.New("bullmq: parent job not found")
	// ErrLockMismatch means the job's lock is held by another token (Lua code -6).
	ErrLockMismatch = errors.New("bullmq: job lock held by another token")
	// ErrParentCannotBeReplaced means a custom job id exists with another live
	// parent (Lua code -7).
	ErrParentCannotBeReplaced = errors.New("bullmq: job parent cannot be replaced")
	// ErrJobBelongsToScheduler means the job is the current iteration of a
	// job scheduler and cannot be removed (Lua code -8).
	ErrJobBelongsToScheduler = errors.New("bullmq: job belongs to a job scheduler")
	// ErrFailedChildren means a flow parent cannot complete because children
	// failed (Lua code -9).
	ErrFailedChildren = errors.New("bullmq: job has failed children")
	// ErrSchedulerJobIDCollision means the next scheduler job id already
	// exists (Lua code -10).
	ErrSchedulerJobIDCollision = errors.New("bullmq: scheduler job id collision")
	// ErrSchedulerSlotsBusy means both scheduler time slots are taken
	// (Lua code -11).
	ErrSchedulerSlotsBusy = errors.New("bullmq: scheduler job slots busy")

	// ErrJobLocked means the job is active and locked by a worker, so it
	// cannot be removed (Lua code -20, ours).
	ErrJobLocked = errors.New("bullmq: job is locked by a worker")
	// ErrActiveJobs means the queue still has active jobs and the operation
	// was not forced (Lua code -21, ours; Obliterate).
	ErrActiveJobs = errors.New("bullmq: queue has active jobs")

	// ErrInvalidOptions means job or queue options were rejected before any
	// Redis call; the message says which option.
	ErrInvalidOptions = errors.New("bullmq: invalid options")
	// ErrInvalidJobID means a custom job id breaks the Node package's rules:
	// not "0", not starting with "0:", not an integer, and no ":" unless it
	// has exactly three parts.
	ErrInvalidJobID = errors.New("bullmq: invalid job id")
	// ErrClosed means the Queue, Worker or QueueEvents was closed.
	ErrClosed = errors.New("bullmq: closed")
)

// Lua error codes of our scripts. -1 … -11 are the codes of the official
// package (protocol section 5.17); -20 and below are our own.
const (
	codeJobNotFound            = -1
	codeMissingLock            = -2
	codeNotInState             = -3
	codePendingChildren        = -4
	codeParentMissing          = -5
	codeLockMismatch           = -6
	codeParentCannotBeReplaced = -7
	codeBelongsToScheduler     = -8
	codeFailedChildren         = -9
	codeSchedulerCollision     = -10
	codeSchedulerSlotsBusy     = -11
	codeJobLocked              = -20
	codeActiveJobs             = -21
)

// scriptError is the one function that maps a negative code returned by a
// Lua script to a Go error. op names the operation and jobID the job (may be
// empty); both go into the message. The result wraps the matching sentinel,
// or describes an unknown code. Codes >= 0 are not errors: it returns nil.
func scriptError(op, jobID string, code int64) error {
	if code >= 0 {
		return nil
	}
	var sentinel error
	switch code {
	case codeJobNotFound:
		sentinel = ErrJobNotFound
	case codeMissingLock:
		sentinel = ErrMissingLock
	case codeNotInState:
		sentinel = ErrJobNotActive
	case codePendingChildren:
		sentinel = ErrPendingChildren
	case codeParentMissing:
		sentinel = ErrParentMissing
	case codeLockMismatch:
		sentinel = ErrLockMismatch
	case codeParentCannotBeReplaced:
		sentinel = ErrParentCannotBeReplaced
	case codeBelongsToScheduler:
		sentinel = ErrJobBelongsToScheduler
	case codeFailedChildren:
		sentinel = ErrFailedChildren
	case codeSchedulerCollision:
		sentinel = ErrSchedulerJobIDCollision
	case codeSchedulerSlotsBusy:
		sentinel = ErrSchedulerSlotsBusy
	case codeJobLocked:
		sentinel = ErrJobLocked
	case codeActiveJobs:
		sentinel = ErrActiveJobs
	default:
		if jobID == "" {
			return fmt.Errorf("%s: unknown script error code %d", op, code)
		}
		return fmt.Errorf("%s job %s: unknown script error code %d", op, jobID, code)
	}
	if jobID == "" {
		return fmt.Errorf("%s: %w", op, sentinel)
	}
	return fmt.Errorf("%s job %s: %w", op, jobID, sentinel)
}
