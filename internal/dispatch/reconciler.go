package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// MissingJobReason is the error of a task failed because its job vanished
// from Redis after it had run (removed by hand, or lost with Redis' data).
const MissingJobReason = "job missing from queue"

// LostResultReason starts the error of a task whose job completed with a
// return value that points at a result job (taskqueue.ReturnValue) that
// is missing or does not verify: the worker's outcome is lost.
const LostResultReason = "result lost: the worker completed the task, but its result job "

// maxResultCandidates bounds the result job ids the reconciler checks for
// one task whose job does not name its result job.
const maxResultCandidates = 5

// ReconcilerOptions configures a Reconciler. The zero value is valid.
type ReconcilerOptions struct {
	// Interval is the time between sweeps. Defaults to 30s.
	Interval time.Duration
	// MinAge skips tasks updated less than MinAge ago: the events
	// listener is probably about to move them. Defaults to 10s.
	MinAge time.Duration
	// ResultGrace is how long a task whose job finished (or vanished) may
	// wait for its result job before the reconciler decides from Redis'
	// side alone. Defaults to 1 minute.
	ResultGrace time.Duration
	// Batch is the most tasks of each status (queued, running) checked
	// per sweep. Defaults to 500.
	Batch int
	// Enqueuer, when set, re-adds the job of a queued task that never ran
	// and whose job is missing; otherwise such a task is failed.
	Enqueuer task.Enqueuer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// Metrics, when set, counts repairs.
	Metrics *Metrics
}

// Reconciler brings live tasks in line with their jobs in Redis, for what
// the events stream cannot tell: events trimmed while no listener ran, a
// job removed by hand, Redis data lost, a result that never comes. For
// each queued or running task not updated for MinAge it reads the job:
//
//   - active: the task is running;
//   - waiting or delayed after an attempt: the task is queued (retry);
//   - failed: the task failed, with the job's failedReason;
//   - completed: once ResultGrace passed and the task's own result job is
//     not pending (see resultPending), the task is finished from that
//     result job when it verifies against the job (as the ResultConsumer
//     would apply it), and otherwise from the job's return value (a
//     return value that only points at a result job that is missing fails
//     the task with LostResultReason);
//   - missing: once ResultGrace passed and none of the task's result jobs
//     is pending, a queued task whose current run never ran is enqueued
//     again, and any other is failed with MissingJobReason.
//
// Attempt numbers read from a job are counted from the job's attempt
// offset (taskqueue.Job.AttemptOffset), as the events listener does.
//
// A task it cannot bring in line (its data refused by the store, or an
// error that persists while Redis and the database answer) is logged,
// counted as a dead letter and skipped: the sweep goes on with the next
// task. A sweep stops early only when Redis or the database does not
// answer. Every repair is a conditional update and a re-add is
// idempotent, so several replicas may reconcile at once.
type Reconciler struct {
	tasks   *bullmq.Queue
	results *bullmq.Queue
	svc     *task.Service
	o       ReconcilerOptions
	log     *slog.Logger
}

// NewReconciler returns a Reconciler for the tasks of svc, whose jobs are
// on tasks and whose results come through results.
func NewReconciler(tasks, results *bullmq.Queue, svc *task.Service, o ReconcilerOptions) (*Reconciler, error) {
	if tasks == nil || results == nil || svc == nil {
		return nil, errors.New("new reconciler: nil queue or service")
	}
	if o.Interval < 0 || o.MinAge < 0 || o.ResultGrace < 0 || o.Batch < 0 {
		return nil, errors.New("new reconciler: options must not be negative")
	}
	if o.Interval == 0 {
		o.Interval = 30 * time.Second
	}
	if o.MinAge == 0 {
		o.MinAge = 10 * time.Second
	}
	if o.ResultGrace == 0 {
		o.ResultGrace = time.Minute
	}
	if o.Batch == 0 {
		o.Batch = 500
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Reconciler{tasks: tasks, results: results, svc: svc, o: o, log: o.Logger.With("loop", "reconciler")}, nil
}

// Run sweeps every Interval until ctx is cancelled, then returns nil. A
// failed sweep is retried after a delay growing from 1s to Interval.
func (r *Reconciler) Run(ctx context.Context) error {
	b := newBackoff(min(time.Second, r.o.Interval), r.o.Interval)
	for {
		wait := r.o.Interval
		if n, err := r.Sweep(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait = b.fail()
			r.log.WarnContext(ctx, "reconciler sweep failed", "err", err, "retry_in", wait)
		} else {
			b.reset()
			if n > 0 {
				r.log.InfoContext(ctx, "reconciled tasks with Redis", "repaired", n)
			}
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// Sweep checks the oldest queued and running tasks once and returns how
// many it repaired. A task it cannot repair is logged, counted and
// skipped; the sweep stops early, with the error, only when Redis or the
// database does not answer.
func (r *Reconciler) Sweep(ctx context.Context) (int, error) {
	repaired := 0
	for _, s := range []task.Status{task.StatusQueued, task.StatusRunning} {
		tasks, err := r.svc.ListOldest(ctx, s, r.o.Batch)
		if err != nil {
			return repaired, fmt.Errorf("list %s tasks: %w", s, err)
		}
		cutoff := r.o.Now().Add(-r.o.MinAge)
		for _, t := range tasks {
			if t.UpdatedAt.After(cutoff) {
				continue
			}
			action, err := r.Reconcile(ctx, t)
			if err != nil {
				if ctx.Err() != nil || dependencyDown(ctx, r.svc, err) {
					return repaired, err
				}
				r.o.Metrics.deadLetter(LoopReconciler, DeadPersistent)
				r.log.ErrorContext(ctx, "cannot reconcile task; skipped", "task_id", t.ID, "status", t.Status, "err", err)
				continue
			}
			if action != "" {
				repaired++
				r.o.Metrics.repair(action)
				r.log.InfoContext(ctx, "reconciled task", "task_id", t.ID, "status", t.Status, "action", action)
			}
		}
	}
	return repaired, nil
}

// Reconcile brings one live task in line with its job and names what it
// did ("" when nothing was needed or a later check is due).
func (r *Reconciler) Reconcile(ctx context.Context, t *task.Task) (Outcome, error) {
	now := r.o.Now()
	jobID := t.ID.String()
	job, err := r.tasks.GetJob(ctx, jobID)
	if err != nil && !errors.Is(err, bullmq.ErrJobNotFound) {
		return "", fromRedis(fmt.Errorf("get job %s: %w", jobID, err))
	}
	state := bullmq.StateUnknown
	if job != nil {
		if state, err = r.tasks.GetJobState(ctx, jobID); err != nil {
			return "", fromRedis(fmt.Errorf("get state of job %s: %w", jobID, err))
		}
	}
	var c task.Change
	switch state {
	case bullmq.StateActive:
		if t.Status != task.StatusQueued {
			return "", nil
		}
		c = runningChange(t.ID, job, now)
	case bullmq.StateDelayed, bullmq.StateWaiting, bullmq.StatePrioritized, bullmq.StatePaused:
		if t.Status != task.StatusRunning {
			return "", nil
		}
		var ok bool
		if c, ok = retryChange(t.ID, job, state, now); !ok {
			return "", nil
		}
	case bullmq.StateFailed:
		reason := job.FailedReason
		if reason == "" {
			reason = "job failed"
		}
		at := job.FinishedOn
		if at.IsZero() {
			at = now
		}
		c = task.MarkFailed(t.ID, task.Outcome{WorkerID: job.ProcessedBy, ErrorMessage: reason,
			Attempts: jobOffset(job) + job.AttemptsMade}, at)
	case bullmq.StateCompleted, bullmq.StateUnknown:
		ok, err := r.decideAlone(ctx, t, job, now)
		if err != nil || !ok {
			return "", err
		}
		if state == bullmq.StateCompleted {
			if c, err = r.completedChange(ctx, t.ID, job, now); err != nil {
				return "", err
			}
			break
		}
		// A queued task whose current run never started (no attempt past
		// its offset) lost its job before it ran: add it again.
		if t.Status == task.StatusQueued && t.Attempts <= t.AttemptOffset && r.o.Enqueuer != nil {
			if err := r.o.Enqueuer.Enqueue(ctx, t); err != nil {
				return "", fromRedis(fmt.Errorf("re-enqueue task %s: %w", t.ID, err))
			}
			return RepairReEnqueued, nil
		}
		c = task.MarkFailed(t.ID, task.Outcome{ErrorMessage: MissingJobReason}, now)
	default:
		return "", nil // waiting-children or a state we do not use
	}
	_, unstorable, err := applyOrUnstorable(ctx, r.svc, c)
	if unstorable != nil && err == nil {
		r.o.Metrics.deadLetter(LoopReconciler, DeadInvalidData)
		r.log.WarnContext(ctx, "task data refused by the store; task finished without it", "task_id", t.ID, "err", unstorable)
	}
	switch {
	case err == nil:
		return repairOf(state, c.To), nil
	case errors.Is(err, task.ErrConflict), errors.Is(err, task.ErrNotFound):
		return "", nil // moved meanwhile
	}
	return "", fmt.Errorf("apply %s to task %s: %w", c.To, t.ID, err)
}

// decideAlone reports whether the reconciler may decide the outcome of a
// task whose job finished or vanished without its result: the task has
// waited ResultGrace, none of its own result jobs is pending (see
// resultPending), and the task is unchanged since it was listed (read
// again after the results queue, so a result applied meanwhile is seen).
func (r *Reconciler) decideAlone(ctx context.Context, t *task.Task, job *bullmq.Job, now time.Time) (bool, error) {
	if now.Sub(t.UpdatedAt) < r.o.ResultGrace {
		return false, nil
	}
	pending, err := r.resultPending(ctx, t, job)
	if err != nil || pending {
		return false, err
	}
	cur, err := r.svc.Get(ctx, t.ID)
	if err != nil {
		if errors.Is(err, task.ErrNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("get task %s: %w", t.ID, err)
	}
	return cur.Status == t.Status && cur.UpdatedAt.Equal(t.UpdatedAt), nil
}

// resultPending reports whether a result job of task t still waits in the
// results queue (waiting, active, delayed, prioritized, paused), for the
// ResultConsumer to apply. It looks only at the task's own result jobs:
// the one the job's return value names (taskqueue.ReturnValue.ResultJobID)
// when it has one, otherwise taskqueue.ResultJobID(t, n) for the job's (or
// the task's) latest attempts. A worker that names its result jobs
// otherwise (a plain BullMQ worker's automatic ids) is not waited for:
// after ResultGrace the task is decided from Redis alone.
func (r *Reconciler) resultPending(ctx context.Context, t *task.Task, job *bullmq.Job) (bool, error) {
	for _, id := range resultCandidates(t, job) {
		state, err := r.results.GetJobState(ctx, id)
		if err != nil {
			return false, fromRedis(fmt.Errorf("get state of result job %s: %w", id, err))
		}
		switch state {
		case bullmq.StateWaiting, bullmq.StateActive, bullmq.StateDelayed, bullmq.StatePrioritized, bullmq.StatePaused:
			return true, nil
		}
	}
	return false, nil
}

// resultCandidates returns the ids of the result jobs task t may have,
// most likely first.
func resultCandidates(t *task.Task, job *bullmq.Job) []string {
	if job != nil {
		if rv, ok := taskqueue.ParseReturnValue(job.ReturnValue); ok && rv.TaskID == t.ID.String() {
			return []string{rv.ResultJobID}
		}
	}
	last := t.Attempts - 1
	if job != nil {
		off := jobOffset(job)
		last = max(last, off+job.AttemptsMade, off+job.AttemptsStarted-1)
	}
	var ids []string
	for n := max(last, 0); n >= 0 && len(ids) < maxResultCandidates; n-- {
		ids = append(ids, taskqueue.ResultJobID(t.ID.String(), n))
	}
	return ids
}

// completedChange finishes a task whose job completed, once no result job
// of it is pending. When the job's return value points at the task's
// result job (taskqueue.ReturnValue), that result job's data is applied if
// it verifies against the job (verifyResult), as the ResultConsumer would;
// when it is missing or does not verify, the task fails with
// LostResultReason. Any other return value is the task's outcome (see
// completedFromReturn).
func (r *Reconciler) completedChange(ctx context.Context, id uuid.UUID, job *bullmq.Job, now time.Time) (task.Change, error) {
	rv, ok := taskqueue.ParseReturnValue(job.ReturnValue)
	if !ok || rv.TaskID != id.String() {
		return completedFromReturn(id, job, now), nil
	}
	at := job.FinishedOn
	if at.IsZero() {
		at = now
	}
	lost := func(why string) task.Change {
		return task.MarkFailed(id, task.Outcome{WorkerID: job.ProcessedBy, Attempts: jobOffset(job) + job.AttemptsMade,
			ErrorMessage: LostResultReason + rv.ResultJobID + " " + why}, at)
	}
	rj, err := r.results.GetJob(ctx, rv.ResultJobID)
	if errors.Is(err, bullmq.ErrJobNotFound) {
		return lost("is missing"), nil
	}
	if err != nil {
		return task.Change{}, fromRedis(fmt.Errorf("get result job %s: %w", rv.ResultJobID, err))
	}
	res, rid, err := taskqueue.ParseResult(rj.Data)
	if err != nil || rid != id {
		return lost("is not a result of this task"), nil
	}
	off := jobOffset(job)
	if err := verifyResult(rv.ResultJobID, id, res, runOf(job), off); err != nil {
		return lost("does not match the job: " + err.Error()), nil
	}
	o := outcomeOf(res)
	o.Attempts = off + max(job.AttemptsMade, job.AttemptsStarted)
	if res.Status == taskqueue.ResultFailed {
		return task.MarkFailed(id, o, at), nil
	}
	return task.MarkCompleted(id, o, at), nil
}

// completedFromReturn finishes a task from its completed job's return
// value: a Result-shaped value for the task is applied as such, anything
// else is stored as the task's result.
func completedFromReturn(id uuid.UUID, job *bullmq.Job, now time.Time) task.Change {
	at := job.FinishedOn
	if at.IsZero() {
		at = now
	}
	if r, rid, err := taskqueue.ParseResult(job.ReturnValue); err == nil && rid == id {
		o := outcomeOf(r)
		o.Attempts = jobOffset(job) + job.AttemptsMade
		if r.Status == taskqueue.ResultFailed {
			return task.MarkFailed(id, o, at)
		}
		return task.MarkCompleted(id, o, at)
	}
	o := task.Outcome{WorkerID: job.ProcessedBy, Attempts: jobOffset(job) + job.AttemptsMade}
	switch rv := job.ReturnValue; {
	case len(rv) == 0 || string(rv) == "null":
	case json.Valid(rv):
		o.Result = rv
	default:
		o.Result, _ = json.Marshal(string(rv)) // not JSON: keep it as text
	}
	return task.MarkCompleted(id, o, at)
}

// repairOf names the reconciler's repair of a task whose job is in state
// and which it moved to status: "<job state>-><task status>".
func repairOf(state bullmq.JobState, to task.Status) Outcome {
	return Outcome(string(state) + "->" + string(to))
}
