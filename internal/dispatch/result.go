package dispatch

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/task"
)

// Result is the payload of a result job that a worker adds to the results
// queue when a task finished: completed, or failed for good.
type Result struct {
	TaskID        string          `json:"taskId"`
	WorkerID      string          `json:"workerId,omitempty"`
	Status        string          `json:"status"` // "completed" or "failed"
	Result        json.RawMessage `json:"result,omitempty"`
	ErrorMessage  string          `json:"errorMessage,omitempty"`
	ExecutionTime *int64          `json:"executionTime,omitempty"` // milliseconds
}

// Result statuses.
const (
	ResultCompleted = "completed"
	ResultFailed    = "failed"
)

// ParseResult decodes and checks the data of a result job. Its error says
// what is wrong, for the job's failedReason.
func ParseResult(data []byte) (Result, uuid.UUID, error) {
	var r Result
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return r, uuid.Nil, fmt.Errorf("result data must be a JSON object, got %.40q", trimmed)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(&r); err != nil {
		return r, uuid.Nil, fmt.Errorf("result data is not a valid result object: %v", err)
	}
	if r.TaskID == "" {
		return r, uuid.Nil, fmt.Errorf("result has no taskId")
	}
	id, err := uuid.Parse(r.TaskID)
	if err != nil {
		return r, uuid.Nil, fmt.Errorf("result taskId %.60q is not a task id", r.TaskID)
	}
	if r.Status != ResultCompleted && r.Status != ResultFailed {
		return r, uuid.Nil, fmt.Errorf("result status must be %q or %q, got %.40q", ResultCompleted, ResultFailed, r.Status)
	}
	if r.ExecutionTime != nil && *r.ExecutionTime < 0 {
		return r, uuid.Nil, fmt.Errorf("result executionTime must not be negative, got %d", *r.ExecutionTime)
	}
	if len(r.Result) > 0 && bytes.Equal(bytes.TrimSpace(r.Result), []byte("null")) {
		r.Result = nil
	}
	return r, id, nil
}

// outcome turns the result into the task's outcome.
func (r Result) outcome() task.Outcome {
	o := task.Outcome{WorkerID: r.WorkerID, Result: r.Result, ErrorMessage: r.ErrorMessage, ExecutionTime: r.ExecutionTime}
	if r.Status == ResultFailed && o.ErrorMessage == "" {
		o.ErrorMessage = "task failed"
	}
	return o
}
