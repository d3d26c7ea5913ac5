package task

import (
	"encoding/json"
	"fmt"
	"net/url"
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
	// MaxPriority is the lowest priority a task may have (1 is the most
	// urgent): BullMQ's PRIORITY_LIMIT, 2^21 - 1, which its Job checks with
	// "priority > PRIORITY_LIMIT". (BullMQ's documentation says 2,097,152;
	// its code refuses that value.) bullmq.MaxPriority is the same number.
	MaxPriority = 1<<21 - 1
	// MaxMetadataBytes bounds a task's metadata, as sent (16 KiB).
	MaxMetadataBytes = 16 << 10
	// MaxCallbackURLBytes bounds a callback URL.
	MaxCallbackURLBytes = 2048
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
	// Priority is the queue priority, 1 (most urgent) to MaxPriority, with
	// BullMQ's semantics; nil: none (plain FIFO, and in BullMQ a task
	// without priority goes before every prioritized one).
	Priority *int `json:"priority" minimum:"1" maximum:"2097151" doc:"Queue priority: 1 is the most urgent, 2097151 the least; null: none (FIFO; BullMQ runs tasks without priority before prioritized ones)."`
	// Metadata is the client's JSON object, nil when none. Stores keep the
	// same JSON value (PostgreSQL normalizes spacing and key order).
	Metadata json.RawMessage `json:"metadata" doc:"The client's JSON object, as given at creation; null when none."`
	// Owner is the name of the API key that created the task; "" when it
	// was created without a named key (no API_KEYS, a plain key, or before
	// keys had names). Only admin keys see tasks of other owners.
	Owner string `json:"owner" doc:"Name of the API key that created the task; empty when created without a named key."`
	// CallbackURL is where the webhook of this task goes instead of the
	// global WEBHOOK_URL; nil when none.
	CallbackURL *string `json:"callbackUrl" doc:"Where this task's webhook notification goes (instead of WEBHOOK_URL); null when none."`
	// Retries is how many times a client re-queued the task after it
	// failed or was cancelled (POST /tasks/{id}/retry).
	Retries int `json:"retries" doc:"How many times a client retried the task after it failed or was cancelled."`
	// Webhook is the state of the webhook notification of the task's
	// current run; nil when the task sends none.
	Webhook *WebhookDelivery `json:"webhook" doc:"Delivery of the webhook notification of the task's final status; null when the task sends none."`
	// AttemptOffset is the number of attempts the task had made when its
	// current job was added: 0 until a client retries it, then its
	// attempts at that retry (taskqueue.Job.AttemptOffset). Events about
	// attempts up to it belong to an earlier job and are refused.
	AttemptOffset int `json:"-"`
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
	// Priority, when set, is 1 (most urgent) to MaxPriority.
	Priority *int
	// Metadata, when set, is a JSON object of at most MaxMetadataBytes.
	Metadata json.RawMessage
	// CallbackURL, when set, is an http or https URL that receives the
	// task's webhook notification; the Service checks it against its
	// address policy (ServiceOptions.CheckCallbackURL).
	CallbackURL string
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
	if n.Priority != nil && (*n.Priority < 1 || *n.Priority > MaxPriority) {
		return &ValidationError{Field: "priority", Reason: fmt.Sprintf("must be between 1 (most urgent) and %d", MaxPriority)}
	}
	if len(n.Metadata) > 0 {
		m, err := checkMetadata(n.Metadata)
		if err != nil {
			return err
		}
		n.Metadata = m
	}
	if n.CallbackURL != "" {
		if err := checkCallbackURL(n.CallbackURL); err != nil {
			return err
		}
	}
	return nil
}

// checkCallbackURL checks the form of a callback URL: an absolute http or
// https URL with a host, without credentials or fragment. Whether its
// address may be called is the Service's address policy.
func checkCallbackURL(raw string) error {
	bad := func(reason string) error { return &ValidationError{Field: "callbackUrl", Reason: reason} }
	if len(raw) > MaxCallbackURLBytes {
		return bad(fmt.Sprintf("must be at most %d bytes", MaxCallbackURLBytes))
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return bad("is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("must be an http or https URL")
	case u.Host == "" || u.Hostname() == "":
		return bad("must name a host")
	case u.User != nil:
		return bad("must not hold credentials")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("must not have a fragment")
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
