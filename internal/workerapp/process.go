package workerapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/executor"
	"github.com/agentorch/orchestrator/internal/sandbox"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// postTimeout bounds posting one result.
const postTimeout = 10 * time.Second

// process is the bullmq processor: it runs one attempt of a task.
//
// Success posts a completed result and returns. A failure posts a failed
// result only when it is final (the last attempt, or unrecoverable), and is
// returned to BullMQ either way so attempts and backoff apply. A run
// stopped by its timeout is unrecoverable unless the job's data says
// RetryOnTimeout; its reason is "timed out after <timeout>". A cancel
// request posts a failed "cancelled" result and fails the job as
// unrecoverable. When the job's own context ends (lock lost, or shutdown
// past its timeout) nothing is posted and an error is returned, so the job
// stays active for the stalled checker to recover.
func (a *App) process(ctx context.Context, job *bullmq.Job) (any, error) {
	log := a.log.With("job_id", job.ID, "attempt", job.AttemptsMade+1)
	var data taskqueue.Job
	if err := json.Unmarshal(job.Data, &data); err != nil {
		err = fmt.Errorf("job %s: invalid task data: %w", job.ID, err)
		a.finalFailure(ctx, job, job.ID, err, 0)
		return nil, bullmq.Unrecoverable(err)
	}
	if data.TaskID == "" {
		data.TaskID = job.ID // the orchestrator uses the task id as the job id
	}
	log = log.With("task_id", data.TaskID)
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
		resultID, perr := a.post(ctx, taskqueue.ResultJobID(data.TaskID, data.AttemptOffset+job.AttemptsMade), taskqueue.Result{TaskID: data.TaskID,
			WorkerID: a.cfg.WorkerID, Status: taskqueue.ResultCompleted, Result: out.Result, ExecutionTime: &ms,
			Sandbox: protectionNames(out.Sandbox)})
		if perr != nil {
			// Without a posted result the run is worth nothing to the
			// orchestrator: fail the attempt so BullMQ retries it.
			a.observe(outcomeRetried, elapsed)
			log.Error("task done but its result could not be posted", "err", perr)
			return nil, perr
		}
		a.observe(outcomeCompleted, elapsed)
		log.Info("task completed", "duration", elapsed, "truncated", out.Truncated)
		return taskqueue.ReturnValue{TaskID: data.TaskID, ResultJobID: resultID, ExecutionTime: ms, Truncated: out.Truncated}, nil

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
		var timeout *executor.TimeoutError
		if errors.As(err, &timeout) {
			// The reason is the timeout's own ("timed out after …"), and a
			// timed-out run is retried only when the task says so.
			err = timeout
			unrecoverable = unrecoverable || !data.RetryOnTimeout
		}
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
	a.log.Warn("task failed", "job_id", job.ID, "task_id", taskID, "err", err, "final", true)
	a.postFailure(ctx, job, taskID, err.Error(), ms)
}

// postFailure posts a failed result. A posting error is logged: the job
// fails anyway, and the orchestrator also sees the failure on the events
// stream.
func (a *App) postFailure(ctx context.Context, job *bullmq.Job, taskID, msg string, ms int64) {
	res := taskqueue.Result{TaskID: taskID, WorkerID: a.cfg.WorkerID, Status: taskqueue.ResultFailed,
		ErrorMessage: &msg, ExecutionTime: &ms}
	// A retried task's job counts its attempts from its attempt offset, so
	// that its result ids do not repeat those of the earlier runs.
	id := taskqueue.ResultJobID(taskID, taskqueue.ParseAttemptOffset(job.Data)+job.AttemptsMade)
	if _, err := a.post(ctx, id, res); err != nil {
		a.log.Error("could not post the failed result", "job_id", job.ID, "task_id", taskID, "err", err)
	}
}

// post adds a result job under jobID and returns the id it was posted
// under. It uses its own deadline, not ctx's, so that a result is posted
// even while the run's context is ending.
//
// The result job id is predictable (taskqueue.ResultJobID), and BullMQ
// adds nothing when a job with that id exists. So post reads the job back:
// when it holds other data (a job added by someone else first, or an
// earlier run of this attempt that crashed after posting), the result is
// posted again under taskqueue.AltResultJobID with a random suffix, and
// that id is returned, for the job's return value (taskqueue.ReturnValue).
func (a *App) post(ctx context.Context, jobID string, res taskqueue.Result) (string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), postTimeout)
	defer cancel()
	data, err := json.Marshal(res)
	if err != nil {
		return "", fmt.Errorf("encode %s result of task %s: %w", res.Status, res.TaskID, err)
	}
	opts := &bullmq.JobOptions{
		JobID:            jobID,
		Attempts:         5,
		Backoff:          &bullmq.Backoff{Type: "exponential", Delay: time.Second},
		RemoveOnComplete: bullmq.KeepFor(24*time.Hour, 1000),
	}
	if _, err := a.results.Add(ctx, taskqueue.ResultJobName, json.RawMessage(data), opts); err != nil {
		return "", fmt.Errorf("post %s result of task %s: %w", res.Status, res.TaskID, err)
	}
	stored, err := a.results.GetJob(ctx, jobID)
	if err != nil && !errors.Is(err, bullmq.ErrJobNotFound) {
		return "", fmt.Errorf("read back %s result of task %s: %w", res.Status, res.TaskID, err)
	}
	// Not found: already consumed and removed; it was ours or a duplicate
	// of ours, as nothing else could have been applied for this run.
	if err == nil && !bytes.Equal(stored.Data, data) {
		a.metrics.squatted.Inc()
		taskID, n, _ := taskqueue.ParseResultJobID(jobID)
		alt := taskqueue.AltResultJobID(taskID, n, strings.ReplaceAll(uuid.NewString(), "-", ""))
		a.log.Warn("result job id taken by another job; posting under another id", "task_id", res.TaskID,
			"job_id", jobID, "result_job_id", alt)
		opts.JobID = alt
		if _, err := a.results.Add(ctx, taskqueue.ResultJobName, json.RawMessage(data), opts); err != nil {
			return "", fmt.Errorf("post %s result of task %s: %w", res.Status, res.TaskID, err)
		}
		jobID = alt
	}
	a.metrics.results.WithLabelValues(string(res.Status)).Inc()
	return jobID, nil
}

func (a *App) observe(outcome taskOutcome, d time.Duration) {
	a.metrics.tasks.WithLabelValues(string(outcome)).Inc()
	a.metrics.duration.WithLabelValues(string(outcome)).Observe(d.Seconds())
}

// onFailed posts the failed result of a job that BullMQ failed without
// running the processor: one that stalled more times than allowed (its
// deferred failure). Failures of the processor post their own results.
func (a *App) onFailed(job *bullmq.Job, err error) {
	if job.DeferredFailure == "" {
		return
	}
	taskID := job.ID
	var data taskqueue.Job
	if json.Unmarshal(job.Data, &data) == nil && data.TaskID != "" {
		taskID = data.TaskID
	}
	a.observe(outcomeFailed, 0)
	a.log.Warn("task failed without running", "job_id", job.ID, "task_id", taskID, "reason", job.DeferredFailure)
	a.postFailure(context.Background(), job, taskID, job.DeferredFailure, 0)
}

// protectionNames returns the sandbox protections as the result's strings.
func protectionNames(ps []sandbox.Protection) []string {
	if len(ps) == 0 {
		return nil
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}
