package workerapp

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrCancelled is the cause given to a task run stopped by a cancel
// request; its result's errorMessage is "cancelled".
var ErrCancelled = errors.New("cancelled")

// earlyCancelTTL is how long a cancel for a task not running here is
// remembered, in case the task starts here just after (the orchestrator
// may see it as running a moment before this worker registers it).
const earlyCancelTTL = time.Minute

// runningTasks tracks the task runs in flight, by task id, so that a cancel
// request can stop them. Safe for concurrent use.
type runningTasks struct {
	clock func() time.Time

	mu     sync.Mutex
	runs   map[string]map[*runEntry]struct{}
	recent map[string]time.Time // cancels of tasks not running here, by arrival
}

type runEntry struct {
	cancel context.CancelCauseFunc
}

func newRunningTasks(clock func() time.Time) *runningTasks {
	return &runningTasks{clock: clock, runs: map[string]map[*runEntry]struct{}{}, recent: map[string]time.Time{}}
}

// add registers a run of taskID and returns the function that removes it.
// If a cancel for taskID arrived shortly before, the run is cancelled at once.
func (r *runningTasks) add(taskID string, cancel context.CancelCauseFunc) (remove func()) {
	e := &runEntry{cancel: cancel}
	r.mu.Lock()
	if r.runs[taskID] == nil {
		r.runs[taskID] = map[*runEntry]struct{}{}
	}
	r.runs[taskID][e] = struct{}{}
	at, early := r.recent[taskID]
	if early {
		delete(r.recent, taskID)
	}
	r.mu.Unlock()
	if early && r.clock().Sub(at) < earlyCancelTTL {
		cancel(ErrCancelled)
	}
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.runs[taskID], e)
		if len(r.runs[taskID]) == 0 {
			delete(r.runs, taskID)
		}
	}
}

// cancel stops the runs of taskID and reports whether there were any. A
// cancel for a task not running here is remembered for earlyCancelTTL.
func (r *runningTasks) cancel(taskID string) bool {
	r.mu.Lock()
	entries := make([]*runEntry, 0, len(r.runs[taskID]))
	for e := range r.runs[taskID] {
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		now := r.clock()
		for id, at := range r.recent {
			if now.Sub(at) >= earlyCancelTTL {
				delete(r.recent, id)
			}
		}
		r.recent[taskID] = now
	}
	r.mu.Unlock()
	for _, e := range entries {
		e.cancel(ErrCancelled)
	}
	return len(entries) > 0
}

// count returns the number of runs in flight.
func (r *runningTasks) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.runs {
		n += len(m)
	}
	return n
}
