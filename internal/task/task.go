package task

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Limits and defaults for a new task.
const (
	DefaultTimeoutMs int64 = 300_000
	MinTimeoutMs     int64 = 1_000
	MaxTimeoutMs     int64 = 86_400_000
	MaxCodeBytes           = 1 << 20  // 1 MiB
	MaxPromptBytes         = 64 << 10 // 64 KiB
)

// Task is one unit of work for an AI agent: a piece of code and a prompt.
// Optional fields are nil until the task's life sets them.
type Task struct {
	ID            uuid.UUID       `json:"id"`
	Code          string          `json:"code"`
	Prompt        string          `json:"prompt"`
	Timeout       int64           `json:"timeout"` // milliseconds
	Status        Status          `json:"status"`
	WorkerID      *string         `json:"workerId"`
	Result        json.RawMessage `json:"result"` // JSON, nil when none
	ErrorMessage  *string         `json:"errorMessage"`
	Attempts      int             `json:"attempts"`
	ExecutionTime *int64          `json:"executionTime"` // milliseconds
	CreatedAt     time.Time       `json:"createdAt"`
	UpdatedAt     time.Time       `json:"updatedAt"`
	StartedAt     *time.Time      `json:"startedAt"`
	CompletedAt   *time.Time      `json:"completedAt"`
	// Sanitized is true when text the task holds from outside (result,
	// error message, worker id) was changed to be stored: NUL removed,
	// invalid UTF-8 replaced, too long text cut (see SanitizeText).
	Sanitized bool `json:"sanitized"`
}

// NewTask is what a client submits. Timeout 0 means DefaultTimeoutMs.
type NewTask struct {
	Code    string
	Prompt  string
	Timeout int64
}

// Validate checks n against the limits and fills in defaults. It returns a
// *ValidationError naming the first field that is wrong.
func (n *NewTask) Validate() error {
	switch {
	case n.Code == "":
		return &ValidationError{Field: "code", Reason: "is required and must not be empty"}
	case len(n.Code) > MaxCodeBytes:
		return &ValidationError{Field: "code", Reason: "must be at most 1 MiB"}
	case strings.IndexByte(n.Code, 0) >= 0:
		// PostgreSQL text cannot hold NUL; refused for every store alike.
		return &ValidationError{Field: "code", Reason: "must not contain NUL (\\u0000) characters"}
	case n.Prompt == "":
		return &ValidationError{Field: "prompt", Reason: "is required and must not be empty"}
	case len(n.Prompt) > MaxPromptBytes:
		return &ValidationError{Field: "prompt", Reason: "must be at most 64 KiB"}
	case strings.IndexByte(n.Prompt, 0) >= 0:
		return &ValidationError{Field: "prompt", Reason: "must not contain NUL (\\u0000) characters"}
	}
	if n.Timeout == 0 {
		n.Timeout = DefaultTimeoutMs
	}
	if n.Timeout < MinTimeoutMs || n.Timeout > MaxTimeoutMs {
		return &ValidationError{Field: "timeout", Reason: "must be between 1000 and 86400000 milliseconds"}
	}
	return nil
}

// Stats are the database-side task statistics.
type Stats struct {
	Total              int64    `json:"total"`
	Pending            int64    `json:"pending"`
	Queued             int64    `json:"queued"`
	Running            int64    `json:"running"`
	Completed          int64    `json:"completed"`
	Failed             int64    `json:"failed"`
	Cancelled          int64    `json:"cancelled"`
	AvgExecutionTimeMs *float64 `json:"avgExecutionTimeMs"` // nil when no task has an execution time
}
