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
	// RetryOnTimeout says whether a run stopped by Timeout may be retried
	// (the job's remaining attempts and backoff apply). When false (the
	// default, TASK_RETRY_ON_TIMEOUT), a worker fails a timed-out run for
	// good (BullMQ: unrecoverable) with a reason that starts with
	// TimeoutReason, so that an agent that loops is not paid for several
	// times over.
	RetryOnTimeout bool `json:"retryOnTimeout"`
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

// TimeoutReason starts the error message of a run stopped by its timeout:
// "timed out after <duration>".
const TimeoutReason = "timed out after "

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
//
// The id is predictable, so anyone who can write to the results queue can
// take it first. A worker that finds, after its add, that the job under
// that id is not the one it posted (other data) posts again under
// AltResultJobID, and names that id in its ReturnValue, so that a squatter
// cannot keep the genuine outcome out.
func ResultJobID(taskID string, attemptsMade int) string {
	return taskID + resultInfix + strconv.Itoa(attemptsMade)
}

// AltResultJobID returns the id a worker posts its result under when the
// job under ResultJobID(taskID, attemptsMade) is not its own: that id
// followed by "-" and nonce (random, chosen by the worker; no ':').
func AltResultJobID(taskID string, attemptsMade int, nonce string) string {
	return ResultJobID(taskID, attemptsMade) + "-" + nonce
}

const resultInfix = "-result-"

// ParseResultJobID reads the task id and attemptsMade (for a retried
// task's job: its AttemptOffset plus its attemptsMade) out of an id made by
// ResultJobID or AltResultJobID; ok is false for any other id (the
// automatic ids of workers that do not name their result jobs).
func ParseResultJobID(id string) (taskID string, attemptsMade int, ok bool) {
	taskID, rest, found := strings.Cut(id, resultInfix)
	if !found || taskID == "" {
		return "", 0, false
	}
	digits, _, _ := strings.Cut(rest, "-")
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || strconv.Itoa(n) != digits {
		return "", 0, false
	}
	return taskID, n, true
}

// ReturnValue is the return value a worker gives the task job: a pointer to
// the result job, not the result itself, which may be large.
type ReturnValue struct {
	TaskID        string `json:"taskId"`
	ResultJobID   string `json:"resultJobId"`
	ExecutionTime int64  `json:"executionTime"`
	Truncated     bool   `json:"truncated,omitempty"`
}
