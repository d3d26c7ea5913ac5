package taskqueue

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
)

// ParseResult decodes and checks the data of a result job, as the
// orchestrator receives it from any worker: a JSON object with a task id
// (a UUID) and a known status; executionTime, when present, not negative;
// every other field optional. A JSON null result becomes nil. Its error
// says what is wrong, for the result job's failedReason.
func ParseResult(data []byte) (Result, uuid.UUID, error) {
	var r Result
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return r, uuid.Nil, fmt.Errorf("result data must be a JSON object, got %.40q", trimmed)
	}
	if err := json.Unmarshal(trimmed, &r); err != nil {
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
	if u := r.Usage; u != nil && (u.InputTokens < 0 || u.OutputTokens < 0 || (u.CostUSD != nil && *u.CostUSD < 0)) {
		return r, uuid.Nil, fmt.Errorf("result usage must not be negative, got %+v", *u)
	}
	if bytes.Equal(bytes.TrimSpace(r.Result), []byte("null")) {
		r.Result = nil
	}
	return r, id, nil
}

// ParseReturnValue decodes a task job's return value as a worker of this
// contract writes it; ok is false for any other value (a worker that
// returns something else).
func ParseReturnValue(data []byte) (rv ReturnValue, ok bool) {
	if err := json.Unmarshal(data, &rv); err != nil || rv.TaskID == "" || rv.ResultJobID == "" {
		return ReturnValue{}, false
	}
	return rv, true
}
