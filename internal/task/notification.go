package task

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Notification is the body of the webhook notification of a task that
// reached a final status, in the shape the Standard Webhooks spec
// recommends (type, timestamp, data). The orchestrator posts it, signed,
// to the task's callbackUrl or to WEBHOOK_URL.
type Notification struct {
	// Type is "task." and the final status: task.completed, task.failed or
	// task.cancelled.
	Type string `json:"type" enum:"task.completed,task.failed,task.cancelled" doc:"task.<final status>."`
	// Timestamp is when the task reached its final status.
	Timestamp time.Time `json:"timestamp" doc:"When the task reached its final status."`
	// Data is the task's summary.
	Data NotificationTask `json:"data"`
}

// NotificationTask is the summary of a finished task in a Notification.
type NotificationTask struct {
	ID            uuid.UUID       `json:"id"`
	Status        Status          `json:"status" enum:"completed,failed,cancelled"`
	Result        json.RawMessage `json:"result" doc:"The agent's result when completed; null otherwise."`
	ErrorMessage  *string         `json:"errorMessage" doc:"Why the task failed or was cancelled; null when completed."`
	Attempts      int             `json:"attempts"`
	ExecutionTime *int64          `json:"executionTime" doc:"Milliseconds."`
	Metadata      json.RawMessage `json:"metadata" doc:"The metadata given at creation; null when none."`
	Retries       int             `json:"retries"`
	CompletedAt   *time.Time      `json:"completedAt"`
}

// NotificationOf returns the notification of a finished task t: its result
// when completed, its error message otherwise.
func NotificationOf(t *Task) Notification {
	at := t.UpdatedAt
	if t.CompletedAt != nil {
		at = *t.CompletedAt
	}
	d := NotificationTask{ID: t.ID, Status: t.Status, Attempts: t.Attempts, ExecutionTime: t.ExecutionTime,
		Metadata: t.Metadata, Retries: t.Retries, CompletedAt: t.CompletedAt}
	if t.Status == StatusCompleted {
		d.Result = t.Result
	} else {
		d.ErrorMessage = t.ErrorMessage
	}
	return Notification{Type: "task." + string(t.Status), Timestamp: at.UTC(), Data: d}
}
