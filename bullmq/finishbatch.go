package bullmq

import (
	"context"
	"fmt"
	"sync"
)

// maxFinishBatch bounds the jobs finished by one moveToFinishedBatch call.
const maxFinishBatch = 64

// finishBatchers is how many batches may be in flight at once: while one
// runs, the next one gathers the jobs that finish meanwhile.
const finishBatchers = 2

// finishReq is one moveToFinished call queued for the finish batchers.
type finishReq struct {
	job       *Job
	target    string // "completed" | "failed"
	value     string
	stackJSON string
	keep      keepPolicy
	fetchNext bool
	token     string // fetch token of the next job
	done      chan finishRes
}

// finishRes is the reply to one finishReq: the entry's moveToFinished
// reply, or the error of the whole batch call.
type finishRes struct {
	reply any
	err   error
}

// startFinishBatchers starts the goroutines that finish the jobs of a worker
// with Concurrency > 1 in batches: the jobs whose processors returned while
// the previous batch was in flight are finished (and their slots' next jobs
// fetched) by one moveToFinishedBatch call, which does exactly what as many
// moveToFinished calls in a row would, with one call's overhead. It returns
// the function that stops them once no slot can submit any more.
func (w *Worker) startFinishBatchers() (stop func()) {
	reqs := make(chan *finishReq, w.opts.Concurrency)
	w.finishReqs = reqs
	var wg sync.WaitGroup
	for range finishBatchers {
		wg.Add(1)
		go func() { defer wg.Done(); w.finishBatchLoop(reqs) }()
	}
	return func() {
		close(reqs)
		wg.Wait()
	}
}

// finishBatchLoop runs batches until reqs is closed.
func (w *Worker) finishBatchLoop(reqs <-chan *finishReq) {
	batch := make([]*finishReq, 0, maxFinishBatch)
	for first := range reqs {
		batch = append(batch[:0], first)
	gather:
		for len(batch) < maxFinishBatch {
			select {
			case r, ok := <-reqs:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		w.runFinishBatch(batch)
		clear(batch)
	}
}

// runFinishBatch runs one moveToFinishedBatch call and hands each request
// its reply.
func (w *Worker) runFinishBatch(batch []*finishReq) {
	k := w.keys
	keys := make([]string, 0, 13+len(batch))
	keys = append(keys, k.wait, k.active, k.prioritized, k.events, k.limiter, k.delayed,
		k.paused, k.meta, k.pc, k.marker, k.stalled, k.completed, k.failed)
	max, dur := w.opts.limiterArgs()
	// When the entries share their retention and attempts (the usual case:
	// one producer's options), those go once in the header and each entry
	// carries 7 ARGV instead of 11.
	shared := true
	p0 := batch[0]
	for _, r := range batch[1:] {
		if r.keep != p0.keep || r.job.Opts.Attempts != p0.job.Opts.Attempts {
			shared = false
			break
		}
	}
	args := make([]any, 0, 11+11*len(batch))
	args = append(args, k.base, w.opts.Clock().UnixMilli(), w.opts.LockDuration.Milliseconds(), max, dur, w.opts.Name)
	if shared {
		args = append(args, "1", p0.keep.Count, p0.keep.Age.Milliseconds(), p0.keep.Limit, p0.job.Opts.Attempts)
	} else {
		args = append(args, "0")
	}
	for _, r := range batch {
		j := r.job
		keys = append(keys, k.job(j.ID))
		if shared {
			args = append(args, j.ID, j.Token, r.target, r.value, r.stackJSON, boolArg(r.fetchNext), r.token)
			continue
		}
		args = append(args, j.ID, j.Token, r.target, r.value, r.stackJSON,
			r.keep.Count, r.keep.Age.Milliseconds(), r.keep.Limit, j.Opts.Attempts,
			boolArg(r.fetchNext), r.token)
	}
	ctx, cancel := w.opCtx(context.Background())
	reply, err := w.moveToFinishedBatch.run(ctx, w.client, keys, args...).Result()
	cancel()
	replies, ok := reply.([]any)
	if err == nil && (!ok || len(replies) != len(batch)) {
		err = fmt.Errorf("finish %d jobs of queue %s: unexpected reply %v", len(batch), k.queue, reply)
	}
	for i, r := range batch {
		if err != nil {
			r.done <- finishRes{err: err}
			continue
		}
		r.done <- finishRes{reply: replies[i]}
	}
}

// finishBatched queues a finish with the batchers and waits for its reply.
// ok is false when the batch call failed as a whole; the caller then
// finishes the job on its own.
func (w *Worker) finishBatched(job *Job, target, value, stackJSON string, keep keepPolicy, fetchNext bool, token string) (next *Job, finished, ok bool) {
	req := &finishReq{job: job, target: target, value: value, stackJSON: stackJSON, keep: keep,
		fetchNext: fetchNext, token: token, done: make(chan finishRes, 1)}
	w.finishReqs <- req
	res := <-req.done
	if res.err != nil {
		w.log.Debug("bullmq: batched finish failed; finishing the job alone", "queue", w.keys.queue,
			"job", job.ID, "err", res.err)
		return nil, false, false
	}
	next, finished = w.finishReply("finish ("+target+")", job, res.reply, token)
	return next, finished, true
}
