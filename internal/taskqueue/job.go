package taskqueue

import (
	"encoding/json"
	"strconv"
)

// Job names.
const (
	// JobName is the name of every task job the orchestrator adds.
	JobName = "execute-task"
	// ResultJobName is the name of every result job a worker adds.
	ResultJobName = "task-result"
)

// Job is the data of a task job. Its BullMQ job id is the task id.
type Job struct {
	TaskID string `json:"taskId"`
	Code   string `json:"code"`
	Prompt string `json:"prompt"`
	// Timeout bounds one run in milliseconds; 0 means the worker's default.
	Timeout int64 `json:"timeout"`
}

// ResultStatus is the outcome a result reports.
type ResultStatus string

// The result statuses.
const (
	ResultCompleted ResultStatus = "completed"
	ResultFailed    ResultStatus = "failed"
)

// Result is the data of a result job: the outcome of a task, posted by the
// worker that ran it, on success and on the final failure only (earlier
// failures are retried by BullMQ). Every field is always encoded; Result is
// null when the task failed, ErrorMessage null when it completed.
type Result struct {
	TaskID   string       `json:"taskId"`
	WorkerID string       `json:"workerId"`
	Status   ResultStatus `json:"status"`
	// Result is the agent's output, any JSON value.
	Result json.RawMessage `json:"result"`
	// ErrorMessage says why the task failed.
	ErrorMessage *string `json:"errorMessage"`
	// ExecutionTime is the run's duration in milliseconds.
	ExecutionTime *int64 `json:"executionTime"`
	// Usage is the run's tokens and cost, when the executor reports them;
	// omitted otherwise.
	Usage *Usage `json:"usage,omitempty"`
	// Sandbox lists the protections the agent ran under (names from
	// package sandbox: "env", "userns", "landlock-fs"…), on completed
	// results of executors that start a program; omitted otherwise.
	Sandbox []string `json:"sandbox,omitempty"`
}

// ResultJobID returns the id of the result job of attempt attemptsMade (the
// task job's attemptsMade while the attempt runs, 0 for the first) of
// taskID. It never contains ':' and is never a plain integer (BullMQ's
// custom id rules); a run repeated after a crash posts under the same id,
// which BullMQ ignores as a duplicate.
func ResultJobID(taskID string, attemptsMade int) string {
	return taskID + "-result-" + strconv.Itoa(attemptsMade)
}

// ReturnValue is the return value a worker gives the task job: a pointer to
// the result job, not the result itself, which may be large.
type ReturnValue struct {
	TaskID        string `json:"taskId"`
	ResultJobID   string `json:"resultJobId"`
	ExecutionTime int64  `json:"executionTime"`
	Truncated     bool   `json:"truncated,omitempty"`
}
