package bullmq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// addLeaders is how many combined addJobs calls of one Queue may be in
// flight at once: with two, Redis runs one batch while the reply of the
// other travels back and the next one gathers.
const addLeaders = 2

// addCombiner merges the Adds of concurrent goroutines into shared addJobs
// calls ("flat combining"). An Add that finds fewer than addLeaders calls in
// flight becomes a leader: it sends its job at once, together with every
// job waiting (up to addBatch). Otherwise it waits; a leader whose call
// returns hands the lead to the first waiting Add and wakes the others of
// its batch with their results. It starts no goroutine: leaders are the
// callers themselves.
type addCombiner struct {
	mu      sync.Mutex
	leaders int           // calls in flight; pending is empty unless it is addLeaders
	pending []*addRequest // waiting Adds, in arrival order
}

// addRequest is one Add waiting in the combiner.
type addRequest struct {
	args [8]any
	id   string
	err  error
	// wake receives true when the request must lead the next call, false
	// when id and err are set. It is buffered and receives one value, so
	// senders never block.
	wake chan bool
}

// combinedAdd adds the job of args (from prepareJob) through the combiner
// and returns its id.
func (q *Queue) combinedAdd(ctx context.Context, args [8]any) (string, error) {
	c := &q.adds
	r := &addRequest{args: args, wake: make(chan bool, 1)}
	c.mu.Lock()
	if c.leaders < addLeaders {
		c.leaders++
		c.mu.Unlock()
		return q.leadAdds(ctx, r)
	}
	c.pending = append(c.pending, r)
	c.mu.Unlock()
	var lead bool
	select {
	case lead = <-r.wake:
	case <-ctx.Done():
		c.mu.Lock()
		// Withdraw while still waiting: the job is not added. A request
		// no longer pending was taken into a call or handed the lead
		// (both under mu), and must see that through.
		if i := slices.Index(c.pending, r); i >= 0 {
			c.pending = slices.Delete(c.pending, i, i+1)
			c.mu.Unlock()
			return "", fmt.Errorf("add job to queue %s: %w", q.name, context.Cause(ctx))
		}
		c.mu.Unlock()
		lead = <-r.wake
	}
	if !lead {
		return r.id, r.err
	}
	return q.leadAdds(ctx, r)
}

// leadAdds sends r's job and the waiting ones in one addJobs call, passes
// the lead on, and wakes the other senders with their results.
func (q *Queue) leadAdds(ctx context.Context, r *addRequest) (string, error) {
	c := &q.adds
	c.mu.Lock()
	n := min(len(c.pending), addBatch-1)
	batch := make([]*addRequest, 0, n+1)
	batch = append(append(batch, r), c.pending[:n]...)
	c.pending = slices.Delete(c.pending, 0, n)
	c.mu.Unlock()

	// Whatever happens (even a panic), pass the lead on and wake the others.
	ids, err := []string(nil), errAddNotSent
	defer func() {
		for i, b := range batch {
			b.err = err
			if err == nil {
				b.id = ids[i]
			}
		}
		c.mu.Lock()
		if len(c.pending) > 0 {
			next := c.pending[0]
			c.pending = slices.Delete(c.pending, 0, 1)
			next.wake <- true
		} else {
			c.leaders--
		}
		c.mu.Unlock()
		for _, b := range batch[1:] {
			b.wake <- false
		}
	}()

	if len(batch) > 1 {
		// The call carries other callers' jobs: r's cancellation must not
		// fail them. The client's timeouts still bound it.
		ctx = context.WithoutCancel(ctx)
	}
	args := make([]any, 4, 4+8*len(batch))
	for _, b := range batch {
		args = append(args, b.args[:]...)
	}
	version := q.metaVersion()
	call := q.addCall(args, version)
	call.cmd = call.s.run(ctx, q.client, call.keys, call.args...)
	ids, err = q.addResult(call, version)
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// errAddNotSent is the error of combined Adds whose leader panicked before
// their call returned.
var errAddNotSent = errors.New("bullmq: combined add not sent")
