package dispatch

import (
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// unverifiedError says why a result or an event does not match the job it
// names. Such an item is never applied: it is rejected, logged and
// counted (DeadUnverified).
type unverifiedError struct{ reason string }

func (e *unverifiedError) Error() string { return e.reason }

func unverified(format string, args ...any) error {
	return &unverifiedError{reason: fmt.Sprintf(format, args...)}
}

// errEarlierRun says a result belongs to a run of the task that a retry
// replaced: it is not applied (ResultStale), and not a forgery either.
var errEarlierRun = errors.New("the result of an earlier run of the task")

// runOf is the run part of a job read whole.
func runOf(job *bullmq.Job) bullmq.JobRun {
	return bullmq.JobRun{AttemptsMade: job.AttemptsMade, AttemptsStarted: job.AttemptsStarted,
		ProcessedBy: job.ProcessedBy, ProcessedOn: job.ProcessedOn, FinishedOn: job.FinishedOn}
}

// verifyResult is the rule a result (r, for task id, carried by the result
// job resultJobID) must pass against the task's job (run) before it is
// applied:
//
//  1. a worker took the job: run.Taken() (ats ≥ 1; atm or processedOn
//     for jobs written before ats existed);
//  2. the result names the worker that took the job's latest attempt:
//     r.WorkerID is not empty and equals the job's pb (a worker's BullMQ
//     name must be its result's workerId);
//  3. when the result job's id is one of the contract's
//     (taskqueue.ResultJobID or AltResultJobID: "<taskId>-result-<n>…"),
//     it names this task, and an attempt the job has started: n, the
//     job's attemptsMade when that run started, is below ats (or, for a
//     job without ats, at most atm).
//
// A result that breaks the rule is forged (a result job added by hand for
// a task no worker took, or naming another worker) or stale (a worker that
// lost its lock to another): it is rejected and the task is not changed.
// The rule does not authenticate workers: whoever may write the task
// queue's keys can also write a matching pb; restricting that is the job
// of the Redis ACL users (docs/redis-acl.md).
//
// The task job of a retried task counts its attempts from its attempt
// offset (offset, taskqueue.Job.AttemptOffset), and so do its result ids:
// n is checked against offset + the job's attempts, and a result id below
// the offset belongs to an earlier run (errEarlierRun).
func verifyResult(resultJobID string, id uuid.UUID, r taskqueue.Result, run bullmq.JobRun, offset int) error {
	if taskID, n, ok := taskqueue.ParseResultJobID(resultJobID); ok && taskID == id.String() && n < offset {
		return errEarlierRun
	}
	if !run.Taken() {
		return unverified("no worker has taken task job %s", id)
	}
	if r.WorkerID == "" || r.WorkerID != run.ProcessedBy {
		return unverified("the result names worker %q, but task job %s was taken by %q", r.WorkerID, id, run.ProcessedBy)
	}
	if taskID, n, ok := taskqueue.ParseResultJobID(resultJobID); ok {
		if taskID != id.String() {
			return unverified("result job %s carries the result of another task (%s)", resultJobID, id)
		}
		limit := run.AttemptsStarted
		if limit == 0 {
			limit = run.AttemptsMade + 1
		}
		if n >= offset+limit {
			return unverified("result job %s is for a run after attempt %d, which task job %s has not started (%d started)",
				resultJobID, n, id, run.AttemptsStarted)
		}
	}
	return nil
}

// verifyResultWithoutJob is the rule for a result whose task job is gone
// from the task queue (removed by its retention, or by hand): the task as
// stored must record a run by the result's worker (the events listener
// wrote the job's pb and ats into it when the attempt started), and rule
// 3 of verifyResult holds against the task's attempts.
//
// Attempts are the task's own (counted across retries); a result id below
// the task's current attempt offset belongs to an earlier run
// (errEarlierRun).
func verifyResultWithoutJob(resultJobID string, id uuid.UUID, r taskqueue.Result, t *task.Task) error {
	if taskID, n, ok := taskqueue.ParseResultJobID(resultJobID); ok && taskID == id.String() && n < t.AttemptOffset {
		return errEarlierRun
	}
	if t.Attempts < 1 || t.WorkerID == nil || r.WorkerID == "" || *t.WorkerID != r.WorkerID {
		stored := ""
		if t.WorkerID != nil {
			stored = *t.WorkerID
		}
		return unverified("task job %s is gone and the task records no run by worker %q (worker %q, %d attempts)",
			id, r.WorkerID, stored, t.Attempts)
	}
	if taskID, n, ok := taskqueue.ParseResultJobID(resultJobID); ok && (taskID != id.String() || n >= t.Attempts) {
		return unverified("result job %s does not match task %s (%d attempts)", resultJobID, id, t.Attempts)
	}
	return nil
}
