package dispatch_test

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// holder is a real bullmq worker, named name, that takes task jobs and
// holds each until the test finishes it: while it holds a job, results
// posted in its name verify as a genuine worker's.
type holder struct {
	e    *env
	name string

	mu   sync.Mutex
	jobs map[string]*heldJob
	cond *sync.Cond
}

type heldJob struct {
	job  *bullmq.Job
	done chan heldOutcome
}

type heldOutcome struct {
	value any
	err   error
}

// hold starts a holder with room for concurrency jobs at once.
func (e *env) hold(name string, concurrency int) *holder {
	e.t.Helper()
	h := &holder{e: e, name: name, jobs: map[string]*heldJob{}}
	h.cond = sync.NewCond(&h.mu)
	e.worker(name, concurrency, func(ctx context.Context, job *bullmq.Job) (any, error) {
		hj := &heldJob{job: job, done: make(chan heldOutcome, 1)}
		h.mu.Lock()
		h.jobs[job.ID] = hj
		h.cond.Broadcast()
		h.mu.Unlock()
		select {
		case o := <-hj.done:
			return o.value, o.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	return h
}

// wait waits until the holder holds the job of task id and returns it.
func (h *holder) wait(id uuid.UUID) *bullmq.Job {
	h.e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	timer := time.AfterFunc(15*time.Second, func() { h.mu.Lock(); h.cond.Broadcast(); h.mu.Unlock() })
	defer timer.Stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		if hj, ok := h.jobs[id.String()]; ok {
			return hj.job
		}
		if time.Now().After(deadline) {
			h.e.t.Fatalf("worker %s never took the job of task %s", h.name, id)
		}
		h.cond.Wait()
	}
}

// finish ends the held job of task id with value (or err).
func (h *holder) finish(id uuid.UUID, value any, err error) {
	h.e.t.Helper()
	h.wait(id)
	h.mu.Lock()
	hj := h.jobs[id.String()]
	h.mu.Unlock()
	hj.done <- heldOutcome{value: value, err: err}
}

// post posts result r (its WorkerID set to the holder's name) under the
// contract's result job id of the held job's attempt, as a worker does.
func (h *holder) post(id uuid.UUID, r taskqueue.Result) string {
	h.e.t.Helper()
	job := h.wait(id)
	r.TaskID, r.WorkerID = id.String(), h.name
	rid := taskqueue.ResultJobID(id.String(), job.AttemptsMade)
	if _, err := h.e.results.Add(h.e.ctx, taskqueue.ResultJobName, r, &bullmq.JobOptions{JobID: rid, Attempts: 3}); err != nil {
		h.e.t.Fatalf("post result: %v", err)
	}
	return rid
}
