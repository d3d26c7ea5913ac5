package dispatch

import (
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// outcomeOf turns a worker's result into the task's outcome; a failed
// result without a message gets a generic one.
func outcomeOf(r taskqueue.Result) task.Outcome {
	o := task.Outcome{WorkerID: r.WorkerID, Result: r.Result, ExecutionTime: r.ExecutionTime}
	if r.ErrorMessage != nil {
		o.ErrorMessage = *r.ErrorMessage
	}
	if r.Status == taskqueue.ResultFailed && o.ErrorMessage == "" {
		o.ErrorMessage = "task failed"
	}
	return o
}
