package task

import (
	"errors"
	"fmt"
)

// Errors callers branch on with errors.Is.
var (
	// ErrNotFound: no task has the given id.
	ErrNotFound = errors.New("task not found")
	// ErrConflict: the requested transition is not allowed from the task's
	// current state (terminal task, stale event, lost race).
	ErrConflict = errors.New("task state conflict")
	// ErrInvalidCursor: a pagination cursor that this service did not issue.
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrInvalidStatus: a status name that is not one of Statuses.
	ErrInvalidStatus = errors.New("invalid status")
	// ErrInvalid is matched by every *ValidationError.
	ErrInvalid = errors.New("invalid task")
	// ErrInvalidData: the store refused the data a change or task carries
	// for good (PostgreSQL SQLSTATE classes 22 and 23, SQLite constraint,
	// too big and mismatch errors), or the data breaks a domain limit (see
	// MaxResultBytes). Retrying the same change cannot succeed; the loops
	// treat it as permanent (see MarkUnstorable). Every other store error
	// (a connection lost, a timeout) is temporary.
	ErrInvalidData = errors.New("invalid data")
)

// ValidationError says which input field is wrong and why.
type ValidationError struct {
	Field  string // JSON name of the field, e.g. "timeout"
	Reason string // human-readable reason
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Is makes errors.Is(err, ErrInvalid) true for every ValidationError.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func isConflict(err error) bool { return errors.Is(err, ErrConflict) }

// ConflictError is an ErrConflict with a reason the client may read (e.g.
// why a task cannot be retried now).
type ConflictError struct {
	Reason string
}

func (e *ConflictError) Error() string { return e.Reason + ": " + ErrConflict.Error() }

// Is makes errors.Is(err, ErrConflict) true for every ConflictError.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
