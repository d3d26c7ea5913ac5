package dispatch

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// StalledReason is the error kept on a task whose job went back to the
// queue because its worker stopped renewing the lock (crash, kill).
const StalledReason = "worker stopped renewing the job lock (stalled); job requeued"

// EventsOptions configures an EventsListener. The zero value is valid.
type EventsOptions struct {
	// Shards is how many events are applied at once. Events of one job
	// always go to the same shard, so they are applied in stream order.
	// Defaults to 16.
	Shards int
	// CheckpointEvery is how often the last applied stream id is stored.
	// After a crash, the events since the last checkpoint are applied
	// again, which changes nothing. Defaults to 1s.
	CheckpointEvery time.Duration
	// BlockTimeout is the XREAD BLOCK time. Defaults to the bullmq default.
	BlockTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, when set, counts events by type and outcome.
	Metrics *Metrics
}

// EventsListener follows the task queue's events stream and moves tasks
// along: running when a worker takes the job (active), back to queued
// when an attempt failed or stalled and the job will be retried (delayed,
// or waiting with prev=active), failed when the job failed for good
// (failed, which includes retries exhausted, unrecoverable errors and
// jobs failed after stalling too often).
//
// A completed event changes nothing: the worker's result job on the
// results queue carries the outcome (result, execution time), and the
// ResultConsumer applies it. Completing the task from the event could
// arrive first and make the richer result a duplicate; the Reconciler
// completes tasks whose result never comes.
//
// The event only says which job changed: the listener reads the job
// (attempts started, worker name, failure reason, state) and applies what
// the job says now, never what the event carries. Applying old events
// therefore never moves a task backwards, and replaying events after a
// restart is harmless. An event is verified against its job: an active
// event moves the task only when a worker took the job (ats ≥ 1), and a
// failed event only when the job is failed (the task fails with the job's
// failedReason) or waits for its retry after an attempt (the task goes
// back to queued); a failed event for a job in any other state changes
// nothing (stale when the job is active or completed, rejected when no
// worker ever took it). Rejected events are logged and counted
// (EventRejected, DeadUnverified). An event whose data the store refuses
// (task.ErrInvalidData) finishes the task with task.MarkUnstorable. An
// event that cannot be applied is retried while Redis or the database does
// not answer; one that fails maxItemTries times while both answer is
// skipped and counted (DeadPersistent), so no event stalls its shard. The
// listener stores the id of the last event applied (task.Service
// Checkpoint) and resumes after it; events trimmed from the stream while
// it was down are the Reconciler's job. Several replicas may each follow
// the stream: every change is conditional, and what a replica finds
// already applied (task.ErrConflict) is counted as stale.
type EventsListener struct {
	client redis.UniversalClient
	queue  *bullmq.Queue
	svc    *task.Service
	names  taskqueue.Names
	o      EventsOptions
	log    *slog.Logger
	marks  watermark
}

// NewEventsListener returns a listener on the events of queue (the task
// queue, named by names) that applies them to the tasks of svc.
func NewEventsListener(client redis.UniversalClient, queue *bullmq.Queue, svc *task.Service, names taskqueue.Names, o EventsOptions) (*EventsListener, error) {
	if client == nil || queue == nil || svc == nil {
		return nil, errors.New("new events listener: nil client, queue or service")
	}
	if o.Shards < 0 || o.CheckpointEvery < 0 || o.BlockTimeout < 0 {
		return nil, errors.New("new events listener: options must not be negative")
	}
	if o.Shards == 0 {
		o.Shards = 16
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &EventsListener{client: client, queue: queue, svc: svc, names: names.WithDefaults(), o: o,
		log: o.Logger.With("loop", "events")}, nil
}

// Run follows the stream until ctx is cancelled, then stores the
// checkpoint and returns nil. It starts from the stored checkpoint, or
// from the oldest event still in the stream when there is none.
func (l *EventsListener) Run(ctx context.Context) error {
	start, ok := l.loadCheckpoint(ctx)
	if !ok {
		return nil
	}
	qe, err := bullmq.NewQueueEvents(l.client, l.names.Tasks(), &bullmq.QueueEventsOptions{
		Prefix: l.names.Prefix, LastID: start, BlockTimeout: l.o.BlockTimeout, Logger: l.o.Logger})
	if err != nil {
		return fmt.Errorf("events listener: %w", err)
	}
	l.log.InfoContext(ctx, "following task events", "from", start)

	var wg sync.WaitGroup
	shards := make([]chan shardEvent, l.o.Shards)
	for i := range shards {
		shards[i] = make(chan shardEvent, 256)
		wg.Add(1)
		go func(in <-chan shardEvent) {
			defer wg.Done()
			l.applyLoop(ctx, in)
		}(shards[i])
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.checkpointLoop(ctx, start)
	}()

	runErr := qe.Run(ctx, func(ctx context.Context, ev bullmq.Event) error {
		seq := l.marks.add(ev.ID)
		if !relevant(ev) {
			l.o.Metrics.event(ev.Type, EventIgnored)
			l.marks.done(seq)
			return nil
		}
		select {
		case shards[shardOf(ev.JobID, len(shards))] <- shardEvent{ev: ev, seq: seq}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	for _, ch := range shards {
		close(ch)
	}
	wg.Wait()
	if runErr != nil && ctx.Err() == nil {
		return fmt.Errorf("events listener: %w", runErr)
	}
	return nil
}

type shardEvent struct {
	ev  bullmq.Event
	seq uint64
}

// relevant reports whether an event can change a task.
func relevant(ev bullmq.Event) bool {
	switch ev.Type {
	case bullmq.EventActive, bullmq.EventDelayed, bullmq.EventFailed:
		return true
	case bullmq.EventWaiting:
		return ev.Prev == string(bullmq.StateActive)
	}
	return false
}

func shardOf(jobID string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(jobID))
	return int(h.Sum32() % uint32(n))
}

// applyLoop applies the events of one shard in order, retrying each one
// with a growing delay until it is applied, skipped (see EventsListener)
// or ctx ends. It drains in without applying once ctx is cancelled.
func (l *EventsListener) applyLoop(ctx context.Context, in <-chan shardEvent) {
	b := newBackoff(100*time.Millisecond, 10*time.Second)
	for se := range in {
		tries := 0
		for ctx.Err() == nil {
			outcome, err := l.Apply(ctx, se.ev)
			if err == nil {
				l.o.Metrics.event(se.ev.Type, outcome)
				l.marks.done(se.seq)
				b.reset()
				break
			}
			l.o.Metrics.event(se.ev.Type, EventError)
			if !permanent(err) && !dependencyDown(ctx, l.svc, err) {
				tries++ // counted only while Redis and the database answer
			}
			if permanent(err) || tries >= maxItemTries {
				reason := DeadPersistent
				if permanent(err) {
					reason = DeadInvalidData
				}
				l.o.Metrics.deadLetter(LoopEvents, reason)
				l.log.ErrorContext(ctx, "event skipped: it cannot be applied", "event", se.ev.Type, "job_id", se.ev.JobID,
					"stream_id", se.ev.ID, "reason", reason, "err", err)
				l.marks.done(se.seq)
				b.reset()
				break
			}
			wait := b.fail()
			l.log.WarnContext(ctx, "apply event failed, will retry", "event", se.ev.Type, "job_id", se.ev.JobID,
				"stream_id", se.ev.ID, "err", err, "retry_in", wait)
			sleep(ctx, wait)
		}
	}
}

// Apply applies one event and says what happened: EventApplied,
// EventStale (the task or the job is already past it), EventGone (the job
// or the task no longer exists), EventRejected (the event does not match
// its job) or EventIgnored. An error means Redis or the database failed
// and the event should be applied again.
func (l *EventsListener) Apply(ctx context.Context, ev bullmq.Event) (Outcome, error) {
	id, err := uuid.Parse(ev.JobID)
	if err != nil {
		return EventIgnored, nil // not a task job
	}
	at := streamTime(ev.ID)
	job, err := l.queue.GetJob(ctx, ev.JobID)
	if errors.Is(err, bullmq.ErrJobNotFound) {
		return EventGone, nil
	}
	if err != nil {
		return "", fromRedis(fmt.Errorf("get job %s: %w", ev.JobID, err))
	}
	var c task.Change
	switch {
	case ev.Type == bullmq.EventActive:
		if !taken(job) {
			return l.reject(ctx, ev, "active event for job %s, which no worker has taken", ev.JobID), nil
		}
		c = runningChange(id, job, at)
	default: // failed, or a retry is scheduled: delayed, or waiting with prev=active
		// Read the state after the job, so that the attempts read are not
		// newer than the state (see retryChange).
		state, err := l.queue.GetJobState(ctx, ev.JobID)
		if err != nil {
			return "", fromRedis(fmt.Errorf("get state of job %s: %w", ev.JobID, err))
		}
		if ev.Type == bullmq.EventFailed {
			var outcome Outcome
			if c, outcome = failedChange(id, job, state, at); outcome != "" {
				if outcome == EventRejected {
					return l.reject(ctx, ev, "failed event for job %s, which is %s and was never taken", ev.JobID, state), nil
				}
				return outcome, nil
			}
			break
		}
		var ok bool
		if c, ok = retryChange(id, job, state, at); !ok {
			return EventIgnored, nil
		}
	}
	return l.applyChange(ctx, c)
}

// reject logs and counts an event that does not match its job, and names
// the outcome.
func (l *EventsListener) reject(ctx context.Context, ev bullmq.Event, format string, args ...any) Outcome {
	l.o.Metrics.deadLetter(LoopEvents, DeadUnverified)
	l.log.WarnContext(ctx, "event rejected: it does not match its job", "event", ev.Type, "job_id", ev.JobID,
		"stream_id", ev.ID, "reason", fmt.Sprintf(format, args...))
	return EventRejected
}

// taken reports whether a worker took job (see bullmq.JobRun.Taken).
func taken(job *bullmq.Job) bool {
	return job.AttemptsStarted > 0 || job.AttemptsMade > 0 || !job.ProcessedOn.IsZero()
}

// failedChange says what a failed event means given the job as it is now:
// a failed job fails the task with the job's own reason, worker and
// attempts; a job waiting for its retry after an attempt sends the task
// back to queued; an active or completed job has moved on (EventStale);
// a job in another state that no worker took makes the event a forgery
// (EventRejected). A non-empty outcome means no change.
func failedChange(id uuid.UUID, job *bullmq.Job, state bullmq.JobState, at time.Time) (task.Change, Outcome) {
	switch state {
	case bullmq.StateFailed:
		reason := job.FailedReason
		if reason == "" {
			reason = "job failed"
		}
		if !job.FinishedOn.IsZero() {
			at = job.FinishedOn
		}
		return task.MarkFailed(id, task.Outcome{WorkerID: job.ProcessedBy, ErrorMessage: reason,
			Attempts: jobOffset(job) + job.AttemptsMade}, at), ""
	case bullmq.StateActive, bullmq.StateCompleted:
		return task.Change{}, EventStale
	}
	if c, ok := retryChange(id, job, state, at); ok && taken(job) {
		return c, ""
	}
	if !taken(job) && jobOffset(job) > 0 {
		// The fresh job of a retried task: the event is the previous
		// run's, whose job this one replaced.
		return task.Change{}, EventStale
	}
	return task.Change{}, EventRejected
}

// applyChange applies c and names the outcome. Data the store refuses
// finishes the task with task.MarkUnstorable (counted as DeadInvalidData).
func (l *EventsListener) applyChange(ctx context.Context, c task.Change) (Outcome, error) {
	_, unstorable, err := applyOrUnstorable(ctx, l.svc, c)
	if unstorable != nil && err == nil {
		l.o.Metrics.deadLetter(LoopEvents, DeadInvalidData)
		l.log.WarnContext(ctx, "event data refused by the store; task finished without it", "task_id", c.ID, "err", unstorable)
	}
	switch {
	case err == nil:
		return EventApplied, nil
	case errors.Is(err, task.ErrConflict):
		return EventStale, nil
	case errors.Is(err, task.ErrNotFound):
		return EventGone, nil
	}
	return "", fmt.Errorf("apply %s to task %s: %w", c.To, c.ID, err)
}

// runningChange moves the task to running for the attempt the job is on
// (counted from the job's attempt offset).
func runningChange(id uuid.UUID, job *bullmq.Job, at time.Time) task.Change {
	attempt := job.AttemptsStarted
	if attempt == 0 {
		attempt = job.AttemptsMade + 1
	}
	if !job.ProcessedOn.IsZero() {
		at = job.ProcessedOn
	}
	return task.MarkRunning(id, jobOffset(job)+attempt, job.ProcessedBy, at)
}

// jobOffset is the attempt offset of a task job (taskqueue.Job): the
// attempts the task made before the job, 0 for a task never retried. The
// task's attempt numbers are the job's plus it.
func jobOffset(job *bullmq.Job) int { return taskqueue.ParseAttemptOffset(job.Data) }

// retryChange says what a retry event means given the job as it is now.
// When the job still waits for its next attempt, the task goes back to
// queued for the attempt that ended (the job's attempts started, which the
// failed or stalled attempt counted). When a worker already took the job
// again, the task is running. A finished job changes nothing here: its
// failed event or result follows.
//
// job is read before state: if the job moved between the two reads, the
// attempts are older than the state, never newer, so the task can never
// be set queued for an attempt that is running.
func retryChange(id uuid.UUID, job *bullmq.Job, state bullmq.JobState, at time.Time) (task.Change, bool) {
	switch state {
	case bullmq.StateDelayed, bullmq.StateWaiting, bullmq.StatePrioritized, bullmq.StatePaused:
		attempt := job.AttemptsStarted
		if attempt == 0 {
			attempt = job.AttemptsMade
		}
		if attempt == 0 {
			return task.Change{}, false // never ran: a plain delayed job
		}
		reason := job.FailedReason
		if job.AttemptsMade < job.AttemptsStarted || reason == "" {
			reason = StalledReason
		}
		return task.MarkRetrying(id, jobOffset(job)+attempt, reason, at), true
	case bullmq.StateActive:
		return runningChange(id, job, at), true
	}
	return task.Change{}, false
}

// streamTime returns the time encoded in a stream id "<ms>-<seq>", or the
// zero time.
func streamTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// loadCheckpoint reads the stored stream id, retrying while the database
// is down. It returns "0" (the oldest event) when none is stored, and false
// when ctx ended first.
func (l *EventsListener) loadCheckpoint(ctx context.Context) (string, bool) {
	b := newBackoff(200*time.Millisecond, 10*time.Second)
	for {
		id, err := l.svc.Checkpoint(ctx, checkpointName(l.names))
		if err == nil {
			if id == "" {
				id = "0"
			}
			return id, true
		}
		wait := b.fail()
		l.log.WarnContext(ctx, "cannot read the events checkpoint, will retry", "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return "", false
		}
	}
}

// checkpointLoop stores the watermark every CheckpointEvery while it
// moves, and once more when ctx ends.
func (l *EventsListener) checkpointLoop(ctx context.Context, saved string) {
	t := time.NewTicker(l.o.CheckpointEvery)
	defer t.Stop()
	save := func(ctx context.Context) {
		id := l.marks.id()
		if id == "" || id == saved {
			return
		}
		if err := l.svc.SetCheckpoint(ctx, checkpointName(l.names), id); err != nil {
			l.log.WarnContext(ctx, "cannot store the events checkpoint", "err", err)
			return
		}
		saved = id
		if ts := streamTime(id); !ts.IsZero() {
			l.o.Metrics.checkpoint(float64(ts.UnixMilli()) / 1000)
		}
	}
	for {
		select {
		case <-t.C:
			save(ctx)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			save(sctx)
			cancel()
			return
		}
	}
}

// checkpointName is the name under which the events listener stores the
// last stream id it applied.
func checkpointName(n taskqueue.Names) string {
	n = n.WithDefaults()
	return "events:" + n.Prefix + ":" + n.Tasks()
}
