package workerapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/executor"
	"github.com/agentorch/orchestrator/internal/sandbox"
)

// Names of the jobs.
const (
	// TaskJobName is the name of the jobs the orchestrator adds.
	TaskJobName = "execute-task"
	// ResultJobName is the name of the result jobs the worker adds.
	ResultJobName = "task-result"
)

// Result statuses.
const (
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// postTimeout bounds posting one result.
const postTimeout = 10 * time.Second

// TaskData is the data of a task job.
type TaskData struct {
	TaskID  string `json:"taskId"`
	Code    string `json:"code"`
	Prompt  string `json:"prompt"`
	Timeout int64  `json:"timeout"` // milliseconds; 0 means the worker's default
}

// Result is the data of a result job, the contract with the orchestrator.
type Result struct {
	TaskID        string          `json:"taskId"`
	WorkerID      string          `json:"workerId"`
	Status        string          `json:"status"`       // StatusCompleted or StatusFailed
	Result        json.RawMessage `json:"result"`       // null when failed
	ErrorMessage  *string         `json:"errorMessage"` // null when completed
	ExecutionTime int64           `json:"executionTime"`
	// Sandbox lists the protections the agent ran under (see package
	// sandbox), on completed results of executors that start a program.
	Sandbox []sandbox.Protection `json:"sandbox,omitempty"`
}

// ResultJobID returns the id of the result job for attempt attemptsMade of
// taskID. It never contains ':' and is never a plain integer (the BullMQ
// custom id rules); a run repeated after a crash posts under the same id,
// which BullMQ ignores as a duplicate.
func ResultJobID(taskID string, attemptsMade int) string {
	return taskID + "-result-" + strconv.Itoa(attemptsMade)
}

// returnValue is what the worker stores as the task job's return value: a
// pointer to the result job, not the result itself, which may be large.
type returnValue struct {
	TaskID        string `json:"taskId"`
	ResultJobID   string `json:"resultJobId"`
	ExecutionTime int64  `json:"executionTime"`
	Truncated     bool   `json:"truncated,omitempty"`
}

// process is the bullmq processor: it runs one attempt of a task.
//
// Success posts a completed result and returns. A failure posts a failed
// result only when it is final (the last attempt, or unrecoverable), and is
// returned to BullMQ either way so attempts and backoff apply. A cancel
// request posts a failed "cancelled" result and fails the job as
// unrecoverable. When the job's own context ends (lock lost, or shutdown
// past its timeout) nothing is posted and an error is returned, so the job
// stays active for the stalled checker to recover.
func (a *App) process(ctx context.Context, job *bullmq.Job) (any, error) {
	log := a.log.With("jobId", job.ID, "attempt", job.AttemptsMade+1)
	var data TaskData
	if err := json.Unmarshal(job.Data, &data); err != nil {
		err = fmt.Errorf("job %s: invalid task data: %w", job.ID, err)
		a.finalFailure(ctx, job, job.ID, err, 0)
		return nil, bullmq.Unrecoverable(err)
	}
	if data.TaskID == "" {
		data.TaskID = job.ID // the orchestrator uses the task id as the job id
	}
	log = log.With("taskId", data.TaskID)
	if data.Timeout < 0 {
		err := fmt.Errorf("job %s: invalid task data: negative timeout %d", job.ID, data.Timeout)
		a.finalFailure(ctx, job, data.TaskID, err, 0)
		return nil, bullmq.Unrecoverable(err)
	}
	timeout := time.Duration(data.Timeout) * time.Millisecond
	if timeout == 0 {
		timeout = a.cfg.DefaultTimeout
	}

	runCtx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	remove := a.running.add(data.TaskID, cancelRun)
	defer remove()
	a.metrics.inFlight.Inc()
	defer a.metrics.inFlight.Dec()

	log.Info("task started", "timeout", timeout)
	start := a.clock()
	out, err := a.exec.Run(runCtx, executor.Input{TaskID: data.TaskID, Code: data.Code, Prompt: data.Prompt, Timeout: timeout, Raw: job.Data})
	elapsed := a.clock().Sub(start)
	ms := elapsed.Milliseconds()

	switch {
	case err == nil:
		// A finished run is posted even if the job's context ended meanwhile:
		// a redelivered run would post under the same result id.
		if out.Truncated {
			a.metrics.truncated.Inc()
		}
		resultID := ResultJobID(data.TaskID, job.AttemptsMade)
		if perr := a.post(ctx, resultID, Result{TaskID: data.TaskID, WorkerID: a.cfg.WorkerID, Status: StatusCompleted, Result: out.Result, ExecutionTime: ms, Sandbox: out.Sandbox}); perr != nil {
			// Without a posted result the run is worth nothing to the
			// orchestrator: fail the attempt so BullMQ retries it.
			a.observe(outcomeRetried, elapsed)
			log.Error("task done but its result could not be posted", "err", perr)
			return nil, perr
		}
		a.observe(outcomeCompleted, elapsed)
		log.Info("task completed", "duration", elapsed, "truncated", out.Truncated)
		return returnValue{TaskID: data.TaskID, ResultJobID: resultID, ExecutionTime: ms, Truncated: out.Truncated}, nil

	case ctx.Err() != nil:
		// Lost the lock, or shutting down past the timeout: someone else
		// will run it; post nothing.
		a.observe(outcomeAbandoned, elapsed)
		cause := context.Cause(ctx)
		log.Warn("task abandoned; the job is left for recovery", "reason", cause, "duration", elapsed)
		return nil, fmt.Errorf("task %s abandoned: %w", data.TaskID, cause)

	case errors.Is(context.Cause(runCtx), ErrCancelled):
		a.observe(outcomeCancelled, elapsed)
		log.Info("task cancelled", "duration", elapsed)
		a.postFailure(ctx, job, data.TaskID, ErrCancelled.Error(), ms)
		return nil, bullmq.Unrecoverable(ErrCancelled)

	default:
		unrecoverable := errors.Is(err, executor.ErrUnrecoverable)
		if unrecoverable || isLastAttempt(job) {
			a.observe(outcomeFailed, elapsed)
			log.Warn("task failed", "err", err, "duration", elapsed, "final", true)
			a.postFailure(ctx, job, data.TaskID, err.Error(), ms)
		} else {
			a.observe(outcomeRetried, elapsed)
			log.Warn("task attempt failed; BullMQ will retry it", "err", err, "duration", elapsed)
		}
		if unrecoverable {
			return nil, bullmq.Unrecoverable(err)
		}
		return nil, err
	}
}

// isLastAttempt reports whether a failure of the current attempt of job is
// final (BullMQ: attemptsMade + 1 >= attempts; no attempts means 1).
func isLastAttempt(job *bullmq.Job) bool {
	return job.AttemptsMade+1 >= max(job.Opts.Attempts, 1)
}

// finalFailure records and posts a failure found before running the task.
func (a *App) finalFailure(ctx context.Context, job *bullmq.Job, taskID string, err error, ms int64) {
	a.observe(outcomeFailed, 0)
	a.log.Warn("task failed", "jobId", job.ID, "taskId", taskID, "err", err, "final", true)
	a.postFailure(ctx, job, taskID, err.Error(), ms)
}

// postFailure posts a failed result. A posting error is logged: the job
// fails anyway, and the orchestrator also sees the failure on the events
// stream.
func (a *App) postFailure(ctx context.Context, job *bullmq.Job, taskID, msg string, ms int64) {
	res := Result{TaskID: taskID, WorkerID: a.cfg.WorkerID, Status: StatusFailed, Result: json.RawMessage("null"), ErrorMessage: &msg, ExecutionTime: ms}
	if err := a.post(ctx, ResultJobID(taskID, job.AttemptsMade), res); err != nil {
		a.log.Error("could not post the failed result", "jobId", job.ID, "taskId", taskID, "err", err)
	}
}

// post adds a result job. It uses its own deadline, not ctx's, so that a
// result is posted even while the run's context is ending.
func (a *App) post(ctx context.Context, jobID string, res Result) error {
	if res.Result == nil {
		res.Result = json.RawMessage("null")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), postTimeout)
	defer cancel()
	_, err := a.results.Add(ctx, ResultJobName, res, &bullmq.JobOptions{
		JobID:            jobID,
		Attempts:         5,
		Backoff:          &bullmq.Backoff{Type: "exponential", Delay: time.Second},
		RemoveOnComplete: bullmq.KeepFor(24*time.Hour, 1000),
	})
	if err != nil {
		return fmt.Errorf("post %s result of task %s: %w", res.Status, res.TaskID, err)
	}
	a.metrics.results.WithLabelValues(res.Status).Inc()
	return nil
}

func (a *App) observe(outcome string, d time.Duration) {
	a.metrics.tasks.WithLabelValues(outcome).Inc()
	a.metrics.duration.WithLabelValues(outcome).Observe(d.Seconds())
}

// onFailed posts the failed result of a job that BullMQ failed without
// running the processor: one that stalled more times than allowed (its
// deferred failure). Failures of the processor post their own results.
func (a *App) onFailed(job *bullmq.Job, err error) {
	if job.DeferredFailure == "" {
		return
	}
	taskID := job.ID
	var data TaskData
	if json.Unmarshal(job.Data, &data) == nil && data.TaskID != "" {
		taskID = data.TaskID
	}
	a.observe(outcomeFailed, 0)
	a.log.Warn("task failed without running", "jobId", job.ID, "taskId", taskID, "reason", job.DeferredFailure)
	a.postFailure(context.Background(), job, taskID, job.DeferredFailure, 0)
}
