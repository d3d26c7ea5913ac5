package bullmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Worker takes jobs from one BullMQ queue and runs a Processor on them, with
// the same Redis protocol as the official Node worker, so Go and Node
// workers can share a queue. Whoever added the jobs (Go Queue, Node, Python)
// does not matter.
//
// A Worker processes up to Concurrency jobs at once. Each job is fetched
// with an atomic script that locks it with a token unique to that fetch;
// finishing a job and fetching the next one is one script call; with
// Concurrency > 1, the jobs whose processors return while a finish call is
// in flight are finished (and their next jobs fetched) together by the next
// call, with the same writes and events as one call per job. Locks of
// jobs in flight are renewed together every LockDuration/2; a job whose lock
// is lost has its context cancelled and its result is not written. The
// stalled checker puts jobs of crashed workers (Go or Node) back to wait.
// When no job is ready, the worker blocks on the queue's marker with
// BZPOPMIN on a connection of its own; it never polls an empty queue.
//
// Methods are safe for concurrent use. Run may be called once.
type Worker struct {
	client    redis.UniversalClient
	keys      *keys
	processor Processor
	opts      WorkerOptions
	log       *slog.Logger
	rnd       func() float64
	id        string
	seq       atomic.Uint64
	fetches   atomic.Int64 // moveToActive calls, for tests

	moveToActive, moveToFinished, retryJob, extendLocks, moveStalled *script
	moveToFinishedBatch                                              *script

	// finishReqs feeds the finish batchers (Concurrency > 1 without
	// NoAutoPipeline); nil otherwise. Set by Run before the slots start.
	finishReqs chan *finishReq

	fetchSlot chan struct{} // capacity 1: one goroutine fetches or blocks at a time
	hooks     *hookQueue
	stopped   chan struct{} // closed when fetching must stop
	stopOnce  sync.Once
	done      chan struct{}                // closed when Run has returned
	blockID   atomic.Int64                 // CLIENT ID of the blocking connection (0: none)
	blockNode atomic.Pointer[redis.Client] // the node the blocking connection is on

	mu         sync.Mutex
	started    bool
	cancelJobs context.CancelCauseFunc
	inflight   map[string]*activeJob
	bconn      *redis.Conn // blocking connection; used only by the fetchSlot holder

	pipe redis.Scripter // set by Run before the slots start; see scripter
}

// scripter returns what the per-job scripts (fetch, retry, and finish when
// not batched) run on: with Concurrency > 1, the client's shared
// auto-pipeliner (go-redis AutoPipeline, unless NoAutoPipeline is set), so
// that the calls of many jobs in flight share round trips and Redis reads
// them in one go. Otherwise, or for clients without one (Ring), the client
// itself. Batched finishes (finishbatch.go) run on the client.
func (w *Worker) scripter() redis.Scripter { return w.pipe }

// initScripter picks the scripter; Run calls it before starting the slots.
func (w *Worker) initScripter() {
	w.pipe = w.client
	if w.opts.Concurrency > 1 && !w.opts.NoAutoPipeline {
		if ap, err := w.client.AutoPipeline(); err == nil {
			w.pipe = ap
		}
	}
}

// NewWorker returns a Worker for queue queueName that runs processor on its
// jobs. opts may be nil for the defaults. It does no I/O: Run starts the
// work. It returns an error wrapping ErrInvalidOptions for invalid options.
func NewWorker(client redis.UniversalClient, queueName string, processor Processor, opts *WorkerOptions) (*Worker, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: worker: nil redis client", ErrInvalidOptions)
	}
	if queueName == "" {
		return nil, fmt.Errorf("%w: worker: empty queue name", ErrInvalidOptions)
	}
	if processor == nil {
		return nil, fmt.Errorf("%w: worker: nil processor", ErrInvalidOptions)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Worker{
		client:              client,
		keys:                newKeys(o.Prefix, queueName),
		processor:           processor,
		opts:                o,
		log:                 o.Logger,
		rnd:                 defaultRand,
		id:                  uuid.NewString(),
		moveToActive:        loadScript("moveToActive", "worker"),
		moveToFinished:      loadScript("moveToFinished", "worker", "finish"),
		moveToFinishedBatch: loadScript("moveToFinishedBatch", "worker", "finish"),
		retryJob:            loadScript("retryJob", "worker"),
		extendLocks:         loadScript("extendLocks"),
		moveStalled:         loadScript("moveStalledJobsToWait"),
		fetchSlot:           make(chan struct{}, 1),
		hooks:               newHookQueue(o.Logger),
		stopped:             make(chan struct{}),
		done:                make(chan struct{}),
		inflight:            make(map[string]*activeJob),
	}, nil
}

// Run processes jobs until ctx ends or Close is called, then returns nil.
// When ctx ends, the contexts of jobs in flight are cancelled and Run waits
// for their processors to return; a processor that returns an error then
// leaves its job active, for the stalled checker to recover. Redis errors
// while running are retried with backoff and reported to OnError; they do
// not stop Run. Run returns ErrClosed after Close, and an error when called
// twice.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return errors.New("bullmq: worker: Run called twice")
	}
	w.started = true
	select {
	case <-w.stopped:
		w.mu.Unlock()
		close(w.done)
		return ErrClosed
	default:
	}
	base := context.WithoutCancel(ctx)
	jobsCtx, cancelJobs := context.WithCancelCause(base)
	w.cancelJobs = cancelJobs
	w.mu.Unlock()
	defer close(w.done)

	bgCtx, cancelBg := context.WithCancel(base)
	hooksStop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); w.hooks.run(hooksStop) }()
	bg.Add(1)
	go func() { defer bg.Done(); w.renewLoop(bgCtx) }()
	if !w.opts.SkipStalledCheck {
		bg.Add(1)
		go func() { defer bg.Done(); w.stalledLoop(bgCtx) }()
	}
	watchDone := make(chan struct{})
	bg.Add(1)
	go func() {
		defer bg.Done()
		select {
		case <-ctx.Done():
			w.stop()
			cancelJobs(fmt.Errorf("bullmq: worker stopped: %w", context.Cause(ctx)))
		case <-watchDone:
		}
	}()

	w.initScripter()
	stopBatchers := func() {}
	if w.opts.Concurrency > 1 && !w.opts.NoAutoPipeline {
		stopBatchers = w.startFinishBatchers()
	}
	w.log.Debug("bullmq: worker running", "queue", w.keys.queue, "worker", w.id, "concurrency", w.opts.Concurrency)
	var slots sync.WaitGroup
	for range w.opts.Concurrency {
		slots.Add(1)
		go func() { defer slots.Done(); w.slot(jobsCtx) }()
	}
	slots.Wait()
	stopBatchers()

	close(watchDone)
	cancelBg()
	cancelJobs(ErrClosed)
	w.mu.Lock()
	if w.bconn != nil {
		_ = w.bconn.Close()
		w.bconn = nil
	}
	w.mu.Unlock()
	close(hooksStop)
	bg.Wait()
	w.log.Debug("bullmq: worker stopped", "queue", w.keys.queue, "worker", w.id)
	return nil
}

// Close stops fetching jobs and waits, until ctx ends, for the jobs in flight
// to finish. If ctx ends first, it cancels their contexts and returns
// ctx.Err(); such jobs stay active and are recovered by a stalled checker
// once their locks expire, never lost and never finished twice. Close is
// safe to call more than once and before Run. Hooks must not call Close and
// wait for it: Close waits for the hook goroutine.
func (w *Worker) Close(ctx context.Context) error {
	w.stop()
	w.mu.Lock()
	started := w.started
	w.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
	}
	w.mu.Lock()
	cancel := w.cancelJobs
	w.mu.Unlock()
	if cancel != nil {
		cancel(fmt.Errorf("bullmq: worker closed: %w", context.Cause(ctx)))
	}
	return fmt.Errorf("close worker of queue %s: %w", w.keys.queue, ctx.Err())
}

// stop makes the worker stop fetching, and wakes its blocked BZPOPMIN.
func (w *Worker) stop() {
	w.stopOnce.Do(func() {
		close(w.stopped)
		if id, node := w.blockID.Load(), w.blockNode.Load(); id != 0 && node != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := node.ClientUnblock(ctx, id).Err(); err != nil {
				w.log.Debug("bullmq: unblock worker connection", "err", err)
			}
		}
	})
}

func (w *Worker) isStopped() bool {
	select {
	case <-w.stopped:
		return true
	default:
		return false
	}
}

// sleep waits d, or until the worker stops; it reports whether it slept.
func (w *Worker) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.stopped:
		return false
	}
}

// reportError logs err and hands it to OnError.
func (w *Worker) reportError(err error) {
	w.log.Error("bullmq: worker error", "queue", w.keys.queue, "err", err)
	if fn := w.opts.OnError; fn != nil {
		w.hooks.push(func() { fn(err) })
	}
}

// slot is one of the Concurrency processing loops: fetch a job, process it,
// finish it while fetching the next, until the worker stops.
func (w *Worker) slot(jobsCtx context.Context) {
	var job *Job
	for {
		if job == nil {
			job = w.fetch(jobsCtx)
			if job == nil {
				return
			}
		}
		job = w.handle(jobsCtx, job)
	}
}

// fetchResult is the decoded moveToActive tuple.
type fetchResult struct {
	job       *Job
	rateLimit time.Duration
	nextDue   int64    // ms; 0 when no delayed job
	skipped   []string // ids dropped for a missing job hash
}

// fetch returns the next job, blocking while there is none, or nil once the
// worker stops. Only one slot fetches at a time, as in the Node worker.
func (w *Worker) fetch(ctx context.Context) *Job {
	select {
	case w.fetchSlot <- struct{}{}:
	case <-w.stopped:
		return nil
	}
	defer func() { <-w.fetchSlot }()
	failures := 0
	for !w.isStopped() {
		res, err := w.fetchOnce(ctx)
		if err == nil && res.job == nil && res.rateLimit == 0 {
			err = w.waitForJob(ctx, res.nextDue)
		}
		if err != nil {
			if w.isStopped() {
				return nil // errors of calls cut short by the shutdown
			}
			w.reportError(err)
			if !w.sleep(retryBackoff(failures)) {
				return nil
			}
			failures++
			continue
		}
		failures = 0
		if res.job != nil {
			return res.job
		}
		if res.rateLimit > 0 {
			w.sleep(min(res.rateLimit, maxRateLimitWait))
		}
	}
	return nil
}

// retryBackoff is the pause after the n-th consecutive Redis error (0-based).
func retryBackoff(n int) time.Duration {
	d := errorRetryMin << min(n, 8)
	return min(d, errorRetryMax)
}

// fetchArgs returns the fetch part of a script's ARGV: token, lock duration,
// limiter max, limiter duration, worker name.
func (w *Worker) fetchArgs(token string) []any {
	max, dur := w.opts.limiterArgs()
	return []any{token, w.opts.LockDuration.Milliseconds(), max, dur, w.opts.Name}
}

// fetchKeys returns KEYS[1..11] shared by the worker scripts.
func (w *Worker) fetchKeys(extra ...string) []string {
	k := w.keys
	return append([]string{k.wait, k.active, k.prioritized, k.events, k.limiter, k.delayed,
		k.paused, k.meta, k.pc, k.marker, k.stalled}, extra...)
}

// fetchOnce runs moveToActive once.
func (w *Worker) fetchOnce(ctx context.Context) (fetchResult, error) {
	w.fetches.Add(1)
	token := w.newToken()
	args := append([]any{w.keys.base, w.opts.Clock().UnixMilli()}, w.fetchArgs(token)...)
	reply, err := w.moveToActive.run(ctx, w.scripter(), w.fetchKeys(), args...).Result()
	if err != nil {
		return fetchResult{}, fmt.Errorf("fetch job from queue %s: %w", w.keys.queue, err)
	}
	return w.parseFetch(reply, token)
}

// parseFetch decodes the {fields|0, id|0, rateLimitTtl, nextDelayedDue,
// skippedIds} tuple of the fetch scripts, and reports the skipped ids (job
// ids found without their job hash) to OnMissingJob.
func (w *Worker) parseFetch(reply any, token string) (fetchResult, error) {
	arr, ok := reply.([]any)
	if !ok || (len(arr) != 4 && len(arr) != 5) {
		return fetchResult{}, fmt.Errorf("fetch job from queue %s: unexpected reply %v", w.keys.queue, reply)
	}
	var res fetchResult
	if len(arr) == 5 {
		skipped, _ := arr[4].([]any)
		for _, s := range skipped {
			id, _ := s.(string)
			res.skipped = append(res.skipped, id)
			w.log.Warn("bullmq: job id without a job hash taken off the queue, not run", "queue", w.keys.queue, "job_id", id)
			if fn := w.opts.OnMissingJob; fn != nil {
				w.hooks.push(func() { fn(id) })
			}
		}
	}
	if ttl, ok := arr[2].(int64); ok && ttl > 0 {
		res.rateLimit = time.Duration(ttl) * time.Millisecond
	}
	if due, ok := arr[3].(int64); ok {
		res.nextDue = due
	}
	fields, ok := arr[0].([]any)
	if !ok {
		return res, nil
	}
	id, _ := arr[1].(string)
	job, err := parseJobFlat(id, fields)
	if err != nil {
		// Fail it at once rather than let it stall forever. (An id whose
		// hash is gone is never fetched: the scripts skip it.)
		job = &Job{ID: id}
		job.decodeErr = fmt.Errorf("decode job %s of queue %s: %w", id, w.keys.queue, err)
	}
	job.Token = token
	job.client = w.client
	job.keys = w.keys
	res.job = job
	return res, nil
}

// waitForJob blocks on the marker until something may be ready: a marker
// pop, the due time of the next delayed job (nextDue, ms), DrainDelay, or the
// worker stopping.
func (w *Worker) waitForJob(ctx context.Context, nextDue int64) error {
	timeout := w.opts.DrainDelay
	if nextDue > 0 {
		d := time.UnixMilli(nextDue).Sub(w.opts.Clock())
		if d <= time.Millisecond {
			return nil
		}
		timeout = min(d, maxDelayedBlock)
	}
	conn, err := w.blockingConn(ctx)
	if err != nil {
		return err
	}
	if w.isStopped() {
		return nil
	}
	if timeout >= time.Second {
		err = conn.BZPopMin(ctx, timeout.Truncate(time.Second), w.keys.marker).Err()
	} else {
		secs := strconv.FormatFloat(max(timeout.Seconds(), 0.001), 'f', 3, 64)
		err = conn.Do(ctx, "BZPOPMIN", w.keys.marker, secs).Err()
	}
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	w.dropBlockingConn()
	if w.isStopped() {
		return nil
	}
	return fmt.Errorf("wait for jobs on queue %s: %w", w.keys.queue, err)
}

// blocker is what BZPOPMIN needs from a connection.
type blocker interface {
	BZPopMin(ctx context.Context, timeout time.Duration, keys ...string) *redis.ZWithKeyCmd
	Do(ctx context.Context, args ...any) *redis.Cmd
}

// blockingConn returns the worker's own blocking connection, named like a
// Node worker's so Queue.getWorkers() lists it. Clients without dedicated
// connections (a Ring) block on a pooled connection, unnamed.
func (w *Worker) blockingConn(ctx context.Context) (blocker, error) {
	w.mu.Lock()
	conn := w.bconn
	w.mu.Unlock()
	if conn != nil {
		return conn, nil
	}
	var node *redis.Client
	switch c := w.client.(type) {
	case *redis.Client:
		node = c
	case *redis.ClusterClient:
		n, err := c.MasterForKey(ctx, w.keys.marker)
		if err != nil {
			return nil, fmt.Errorf("find node of queue %s: %w", w.keys.queue, err)
		}
		node = n
	default:
		return w.client, nil
	}
	conn = node.EphemeralConn()
	suffix := ""
	if w.opts.Name != "" {
		suffix = ":w:" + w.opts.Name
	}
	if err := conn.ClientSetName(ctx, w.keys.connName(suffix)).Err(); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("name blocking connection of queue %s: %w", w.keys.queue, err)
	}
	id, err := conn.ClientID(ctx).Result()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("blocking connection id of queue %s: %w", w.keys.queue, err)
	}
	w.mu.Lock()
	w.bconn = conn
	w.mu.Unlock()
	w.blockNode.Store(node)
	w.blockID.Store(id)
	if w.isStopped() {
		// stop may have run before the id was known: unblock ourselves.
		_ = node.ClientUnblock(ctx, id).Err()
	}
	return conn, nil
}

// dropBlockingConn closes the blocking connection after an error; the next
// wait opens a new one.
func (w *Worker) dropBlockingConn() {
	w.blockID.Store(0)
	w.mu.Lock()
	conn := w.bconn
	w.bconn = nil
	w.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// refuseReason returns why job must fail without running, or "".
func refuseReason(job *Job) string {
	switch {
	case job.DeferredFailure != "":
		return job.DeferredFailure
	case job.ParentKey != "":
		return "bullmq-go worker: job belongs to a flow (parent " + job.ParentKey + "); flows are not supported by the Go worker"
	case job.RepeatJobKey != "":
		return "bullmq-go worker: job was created by job scheduler " + job.RepeatJobKey + "; job schedulers are not supported by the Go worker"
	case len(job.Opts.Extra["repeat"]) > 0 && !isNull(job.Opts.Extra["repeat"]):
		return "bullmq-go worker: job is a repeatable job (opts.repeat); repeatable jobs are not supported by the Go worker"
	}
	return ""
}

// handle runs one job and finishes it, returning the next job when the
// finishing call fetched one.
func (w *Worker) handle(jobsCtx context.Context, job *Job) *Job {
	if job.decodeErr != nil {
		w.reportError(job.decodeErr)
		return w.fail(job, Unrecoverable(job.decodeErr), job.decodeErr.Error())
	}
	if reason := refuseReason(job); reason != "" {
		err := Unrecoverable(errors.New(reason))
		return w.fail(job, err, reason)
	}
	jctx, cancel := context.WithCancelCause(jobsCtx)
	aj := &activeJob{job: job, cancel: cancel}
	w.track(aj)
	result, stack, err := w.runProcessor(jctx, job)
	w.untrack(aj)
	shutdown := jobsCtx.Err() != nil
	cancel(nil)

	if aj.lost.Load() {
		w.log.Warn("bullmq: result of job not written: lock lost", "queue", w.keys.queue, "job", job.ID)
		return nil
	}
	if err != nil && shutdown {
		w.log.Info("bullmq: job interrupted by shutdown left active for the stalled checker",
			"queue", w.keys.queue, "job", job.ID, "err", err)
		return nil
	}
	if err == nil {
		value, merr := marshalResult(result)
		if merr == nil {
			return w.complete(job, value)
		}
		err = Unrecoverable(fmt.Errorf("encode return value: %w", merr))
		stack = err.Error()
	}
	return w.fail(job, err, stack)
}

// runProcessor calls the processor, turning a panic into an error; stack is
// the stack trace entry stored with a failure.
func (w *Worker) runProcessor(ctx context.Context, job *Job) (result any, stack string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
			stack = err.Error() + "\n" + string(debug.Stack())
			w.log.Error("bullmq: processor panicked", "queue", w.keys.queue, "job", job.ID, "panic", fmt.Sprint(r))
		}
	}()
	result, err = w.processor(ctx, job)
	if err != nil {
		stack = fmt.Sprintf("%+v", err)
	}
	return result, stack, err
}

// opCtx is the context of Redis writes that must happen even while the
// worker shuts down.
func (w *Worker) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), w.opts.LockDuration)
}

// complete writes job's result with moveToFinished, fetching the next job
// unless the worker is stopping.
func (w *Worker) complete(job *Job, value json.RawMessage) *Job {
	keep := resolveKeep(job.Opts.RemoveOnComplete, w.opts.RemoveOnComplete)
	next, ok := w.finish(job, "completed", string(value), "", keep)
	if ok {
		job.AttemptsMade++
		job.ReturnValue = value
		if fn := w.opts.OnCompleted; fn != nil {
			w.hooks.push(func() { fn(job, value) })
		}
	}
	return next
}

// fail ends a failed attempt: a retry (delayed by the backoff, or at once)
// while attempts remain, otherwise the final failure.
func (w *Worker) fail(job *Job, cause error, stack string) *Job {
	reason := cause.Error()
	stackJSON := appendStack(job, stack)
	var next *Job
	ok := false
	delay := time.Duration(-1)
	if shouldRetry(job, cause) {
		delay = retryDelay(job, cause, w.opts.BackoffStrategy, w.rnd)
	}
	if delay >= 0 {
		next, ok = w.retry(job, reason, stackJSON, delay)
	} else {
		keep := resolveKeep(job.Opts.RemoveOnFail, w.opts.RemoveOnFail)
		next, ok = w.finish(job, "failed", reason, stackJSON, keep)
	}
	if ok {
		job.AttemptsMade++
		job.FailedReason = reason
		if fn := w.opts.OnFailed; fn != nil {
			w.hooks.push(func() { fn(job, cause) })
		}
	}
	return next
}

// finish runs moveToFinished for target "completed" or "failed". ok reports
// whether the job was finished; next is the fetched next job, if any.
func (w *Worker) finish(job *Job, target, value, stackJSON string, keep keepPolicy) (next *Job, ok bool) {
	fetchNext := !w.isStopped()
	token := w.newToken()
	if w.finishReqs != nil {
		if next, finished, ok := w.finishBatched(job, target, value, stackJSON, keep, fetchNext, token); ok {
			return next, finished
		}
	}
	targetKey := w.keys.completed
	if target == "failed" {
		targetKey = w.keys.failed
	}
	args := []any{w.keys.base, job.ID, w.opts.Clock().UnixMilli(), job.Token, target, value, stackJSON,
		keep.Count, keep.Age.Milliseconds(), keep.Limit, job.Opts.Attempts, boolArg(fetchNext)}
	args = append(args, w.fetchArgs(token)...)
	keys := w.fetchKeys(targetKey, w.keys.job(job.ID))
	return w.runFinish(w.moveToFinished, "finish ("+target+")", job, keys, args, token)
}

// retry runs retryJob: back to delayed (delay > 0) or wait.
func (w *Worker) retry(job *Job, reason, stackJSON string, delay time.Duration) (next *Job, ok bool) {
	fetchNext := !w.isStopped()
	token := w.newToken()
	args := []any{w.keys.base, job.ID, w.opts.Clock().UnixMilli(), job.Token, delay.Milliseconds(), reason,
		stackJSON, boolArg(job.Opts.LIFO), boolArg(fetchNext)}
	args = append(args, w.fetchArgs(token)...)
	keys := w.fetchKeys(w.keys.job(job.ID))
	return w.runFinish(w.retryJob, "retry", job, keys, args, token)
}

// runFinish runs a finishing script, retrying transport errors a few times
// while the lock is still valid, and decodes its reply.
func (w *Worker) runFinish(s *script, op string, job *Job, keys []string, args []any, token string) (*Job, bool) {
	ctx, cancel := w.opCtx(context.Background())
	defer cancel()
	var reply any
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		reply, err = s.run(ctx, w.scripter(), keys, args...).Result()
		if err == nil || isScriptReplyError(err) {
			break
		}
		t := time.NewTimer(retryBackoff(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	if err != nil {
		w.reportError(fmt.Errorf("%s job %s: %w", op, job.ID, err))
		return nil, false
	}
	return w.finishReply(op, job, reply, token)
}

// finishReply decodes the reply of a finishing script (or of one entry of
// moveToFinishedBatch): ok reports whether the job was finished, next is
// the fetched next job, if any.
func (w *Worker) finishReply(op string, job *Job, reply any, token string) (next *Job, ok bool) {
	switch r := reply.(type) {
	case int64:
		if r < 0 {
			err := scriptError(op, job.ID, r)
			if errors.Is(err, ErrMissingLock) || errors.Is(err, ErrLockMismatch) {
				err = fmt.Errorf("%w (%w)", err, ErrLockLost)
			}
			w.reportError(err)
			return nil, false
		}
		return nil, true
	case error: // an entry of moveToFinishedBatch that raised an error
		w.reportError(fmt.Errorf("%s job %s: %w", op, job.ID, r))
		return nil, false
	case []any:
		res, err := w.parseFetch(r, token)
		if err != nil {
			w.reportError(err)
		}
		return res.job, true
	}
	w.reportError(fmt.Errorf("%s job %s: unexpected reply %v", op, job.ID, reply))
	return nil, true
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
