package taskqueue

import (
	"encoding/json"
	"strconv"
	"strings"
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
	// AttemptOffset is how many attempts the task made before this job: 0
	// for its first job, and for the job added when a client retries a
	// failed or cancelled task (POST /tasks/{id}/retry), the attempts of
	// the task so far. Attempt attemptsMade+1 of the job is attempt
	// AttemptOffset+attemptsMade+1 of the task, and its result job id is
	// ResultJobID(taskId, AttemptOffset+attemptsMade), so that the results
	// of a retried task never reuse the ids of its earlier results (which
	// BullMQ would drop as duplicates). Omitted when 0; a worker that
	// ignores it still works for tasks that were never retried.
	AttemptOffset int `json:"attemptOffset,omitempty"`
}

// Attempt returns the task's attempt number (1-based) of the attempt a
// job with this data runs when the job has made attemptsMade attempts
// before it: AttemptOffset + attemptsMade + 1.
func (j Job) Attempt(attemptsMade int) int { return j.AttemptOffset + attemptsMade + 1 }

// ParseAttemptOffset reads the AttemptOffset of a task job's data; it is 0
// when the data is not a Job or has none (a job of a task never retried).
func ParseAttemptOffset(data []byte) int {
	var j struct {
		AttemptOffset int `json:"attemptOffset"`
	}
	if json.Unmarshal(data, &j) != nil || j.AttemptOffset < 0 {
		return 0
	}
	return j.AttemptOffset
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

// ResultJobID returns the id of the result job of the attempt of taskID
// that follows attemptsMade attempts of the task: the job's AttemptOffset
// plus its attemptsMade while the attempt runs, 0 for the first attempt of
// a task. It never contains ':' and is never a plain integer (BullMQ's
// custom id rules); a run repeated after a crash posts under the same id,
// which BullMQ ignores as a duplicate.
func ResultJobID(taskID string, attemptsMade int) string {
	return taskID + "-result-" + strconv.Itoa(attemptsMade)
}

// ParseResultJobID returns the n of a result job id ResultJobID(taskID,
// n), and false for any other id (a worker that names its results
// otherwise).
func ParseResultJobID(taskID, id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, taskID+"-result-")
	if !ok || rest == "" || len(rest) > 9 {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || strconv.Itoa(n) != rest {
		return 0, false
	}
	return n, true
}

// ReturnValue is the return value a worker gives the task job: a pointer to
// the result job, not the result itself, which may be large.
type ReturnValue struct {
	TaskID        string `json:"taskId"`
	ResultJobID   string `json:"resultJobId"`
	ExecutionTime int64  `json:"executionTime"`
	Truncated     bool   `json:"truncated,omitempty"`
}
