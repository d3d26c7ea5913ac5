package bullmq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// ErrLockLost is the cause of a processor's context cancellation when the
// job's lock expired or was taken by another worker. The job's result is then
// not written: whoever holds the lock now, or the stalled checker, owns it.
var ErrLockLost = errors.New("bullmq: job lock lost")

// activeJob is a job in flight in this worker, tracked for lock renewal.
type activeJob struct {
	job    *Job
	cancel context.CancelCauseFunc
	lost   atomic.Bool
}

// newToken returns a lock token unique to this fetch: "<workerID>:<n>".
func (w *Worker) newToken() string {
	return w.id + ":" + strconv.FormatUint(w.seq.Add(1), 10)
}

// track registers aj for lock renewal.
func (w *Worker) track(aj *activeJob) {
	w.mu.Lock()
	w.inflight[aj.job.ID] = aj
	w.mu.Unlock()
}

// untrack stops renewing aj's lock.
func (w *Worker) untrack(aj *activeJob) {
	w.mu.Lock()
	if w.inflight[aj.job.ID] == aj {
		delete(w.inflight, aj.job.ID)
	}
	w.mu.Unlock()
}

// renewLoop renews the locks of all jobs in flight every LockDuration/2, in
// one extendLocks call, until ctx ends. After a failed call it tries again
// sooner, so one Redis hiccup does not cost the locks.
func (w *Worker) renewLoop(ctx context.Context) {
	every := w.opts.LockDuration / 2
	retry := min(time.Second, w.opts.LockDuration/8)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := every
		if err := w.renewLocks(ctx); err != nil {
			w.reportError(err)
			next = retry
		}
		t.Reset(next)
	}
}

// renewLocks extends every tracked lock and handles the ones that are lost:
// the job's context is cancelled with ErrLockLost and OnLockLost is called.
func (w *Worker) renewLocks(ctx context.Context) error {
	w.mu.Lock()
	snap := make(map[string]*activeJob, len(w.inflight))
	args := make([]any, 0, 2+2*len(w.inflight))
	args = append(args, w.keys.base, w.opts.LockDuration.Milliseconds())
	for id, aj := range w.inflight {
		snap[id] = aj
		args = append(args, id, aj.job.Token)
	}
	w.mu.Unlock()
	if len(snap) == 0 {
		return nil
	}
	lost, err := w.extendLocks.run(ctx, w.client, []string{w.keys.stalled}, args...).StringSlice()
	if err != nil {
		return fmt.Errorf("extend locks of %d jobs: %w", len(snap), err)
	}
	for _, id := range lost {
		aj := snap[id]
		w.mu.Lock()
		current := w.inflight[id] == aj
		w.mu.Unlock()
		if aj == nil || !current {
			continue // finished meanwhile: its lock was released on purpose
		}
		aj.lost.Store(true)
		cause := fmt.Errorf("job %s: %w", id, ErrLockLost)
		aj.cancel(cause)
		w.log.Warn("bullmq: job lock lost", "queue", w.keys.queue, "job", id)
		w.reportError(cause)
		if fn := w.opts.OnLockLost; fn != nil {
			job := aj.job
			w.hooks.push(func() { fn(job) })
		}
	}
	return nil
}
