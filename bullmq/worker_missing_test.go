package bullmq

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

// missingEnv is a queue holding, besides real jobs, ids whose job hash is
// missing: ids pushed without a hash, and one "half-written" hash without
// the fields every job has.
type missingEnv struct {
	*workerEnv
	w *Worker
}

func newMissingEnv(t *testing.T, conc int) *missingEnv {
	t.Helper()
	e := newWorkerEnv(t, "w-missing")
	w, err := NewWorker(e.client, e.name, func(context.Context, *Job) (any, error) { return nil, nil },
		&WorkerOptions{Name: "w-missing", Concurrency: conc, NoAutoPipeline: true, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	w.initScripter()
	return &missingEnv{workerEnv: e, w: w}
}

// ghost pushes id onto wait (or, with priority > 0, into prioritized)
// without a job hash.
func (e *missingEnv) ghost(id string, priority int) {
	e.tb.Helper()
	ctx := context.Background()
	var err error
	if priority > 0 {
		err = e.client.ZAdd(ctx, e.k.prioritized, redisZ(float64(priority)*4294967296, id)).Err()
	} else {
		err = e.client.LPush(ctx, e.k.wait, id).Err()
	}
	if err != nil {
		e.tb.Fatal(err)
	}
}

// checkGone checks that none of ids is left in the queue's lists and sets,
// and that no hash was created for them.
func (e *missingEnv) checkGone(ids ...string) {
	e.tb.Helper()
	ctx := context.Background()
	for _, id := range ids {
		for _, l := range []string{e.k.wait, e.k.active} {
			if ids := e.client.LRange(ctx, l, 0, -1).Val(); slices.Contains(ids, id) {
				e.tb.Errorf("id %s still in %s", id, l)
			}
		}
		if _, err := e.client.ZScore(ctx, e.k.prioritized, id).Result(); err == nil {
			e.tb.Errorf("id %s still in prioritized", id)
		}
		if n := e.client.Exists(ctx, e.k.job(id)).Val(); n != 0 && id != "half" {
			e.tb.Errorf("a hash was created for id %s: %v", id, e.client.HGetAll(ctx, e.k.job(id)).Val())
		}
	}
	if h := e.client.HGetAll(ctx, e.k.job("half")).Val(); len(h) > 0 && (len(h) != 1 || h["processedOn"] != "1") {
		e.tb.Errorf("the half-written hash was changed: %v", h)
	}
}

// TestFetchSkipsIDsWithoutJobHash: moveToActive (and moveToFinished's and
// retryJob's fetch, which share its code) never runs an id whose job hash
// is missing: it removes the id from the queue, takes the next job and
// reports the skipped ids.
func TestFetchSkipsIDsWithoutJobHash(t *testing.T) {
	t.Parallel()
	e := newMissingEnv(t, 1)
	ctx := context.Background()
	e.ghost("ghost-a", 0)
	good := e.add("good", 1, nil)
	e.ghost("ghost-b", 0)
	if err := e.client.HSet(ctx, e.k.job("half"), "processedOn", "1").Err(); err != nil {
		t.Fatal(err)
	}
	e.ghost("half", 0)
	e.ghost("ghost-p", 1)

	res, err := e.w.fetchOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.job == nil || res.job.ID != good.ID || !slices.Equal(res.skipped, []string{"ghost-a"}) {
		t.Fatalf("first fetch: job %v, skipped %v; want %s after skipping ghost-a", res.job, res.skipped, good.ID)
	}
	if string(res.job.Data) != "1" {
		t.Errorf("fetched job data %s, want 1", res.job.Data)
	}
	res, err = e.w.fetchOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.job != nil || !slices.Equal(res.skipped, []string{"ghost-b", "half", "ghost-p"}) {
		t.Fatalf("second fetch: job %v, skipped %v; want none after skipping ghost-b, half, ghost-p", res.job, res.skipped)
	}
	e.checkGone("ghost-a", "ghost-b", "half", "ghost-p")
	if act := e.client.LRange(ctx, e.k.active, 0, -1).Val(); !slices.Equal(act, []string{good.ID}) {
		t.Errorf("active = %v, want [%s]", act, good.ID)
	}
	// The finish script's fetch of the next job skips as well.
	e.ghost("ghost-c", 0)
	next := e.add("next", 2, nil)
	nextJob, ok := e.w.finish(heldJob(t, e, good.ID), "completed", "null", "", keepPolicy{Count: -1})
	if !ok || nextJob == nil || nextJob.ID != next.ID {
		t.Fatalf("finish fetched %v (ok %v), want %s", nextJob, ok, next.ID)
	}
	e.checkGone("ghost-c")
}

// res2 returns the active job id as the worker holds it (with its lock
// token), read back from the first fetch.
func heldJob(t *testing.T, e *missingEnv, id string) *Job {
	t.Helper()
	tok, err := e.client.Get(context.Background(), e.k.lock(id)).Result()
	if err != nil {
		t.Fatalf("lock of %s: %v", id, err)
	}
	j := e.job(id)
	j.Token = tok
	return j
}

// TestFetchBatchSkipsIDsWithoutJobHash: moveToFinishedBatch, which takes the
// next jobs of several slots at once from wait and prioritized, skips ids
// without a job hash on both paths and still gives each slot a real job.
func TestFetchBatchSkipsIDsWithoutJobHash(t *testing.T) {
	t.Parallel()
	e := newMissingEnv(t, 2)
	ctx := context.Background()
	a, b := e.add("a", "a", nil), e.add("b", "b", nil)
	held := make([]*Job, 0, 2)
	for range 2 {
		res, err := e.w.fetchOnce(ctx)
		if err != nil || res.job == nil {
			t.Fatalf("fetch: %v %v", res.job, err)
		}
		held = append(held, res.job)
	}
	// Wait path: [ghost-c, good3] are taken together; ghost-c is skipped
	// and the second slot fetches good4 on its own.
	e.ghost("ghost-c", 0)
	good3 := e.add("good3", 3, nil)
	good4 := e.add("good4", 4, nil)
	got, skipped := e.finishBatch(held)
	if !slices.Equal(got, []string{good3.ID, good4.ID}) || !slices.Equal(skipped, []string{"ghost-c"}) {
		t.Fatalf("batch 1 fetched %v, skipped %v; want [%s %s], [ghost-c]", got, skipped, good3.ID, good4.ID)
	}
	// Prioritized path: wait holds good5 only; the rest comes from
	// prioritized, where ghost-e comes before good6.
	held = []*Job{heldJob(t, e, good3.ID), heldJob(t, e, good4.ID)}
	good5 := e.add("good5", 5, nil)
	e.ghost("ghost-e", 1)
	good6 := e.add("good6", 6, &JobOptions{Priority: 2})
	got, skipped = e.finishBatch(held)
	if !slices.Equal(got, []string{good5.ID, good6.ID}) || !slices.Equal(skipped, []string{"ghost-e"}) {
		t.Fatalf("batch 2 fetched %v, skipped %v; want [%s %s], [ghost-e]", got, skipped, good5.ID, good6.ID)
	}
	e.checkGone("ghost-c", "ghost-e")
	for _, id := range []string{a.ID, b.ID, good3.ID, good4.ID} {
		if st := e.state(id); st != StateCompleted {
			t.Errorf("job %s is %s, want completed", id, st)
		}
	}
}

// finishBatch completes jobs in one moveToFinishedBatch call, each
// fetching a next job, and returns the next job ids and the skipped ids.
func (e *missingEnv) finishBatch(jobs []*Job) (next, skipped []string) {
	e.tb.Helper()
	batch := make([]*finishReq, len(jobs))
	for i, j := range jobs {
		batch[i] = &finishReq{job: j, target: "completed", value: "null", keep: keepPolicy{Count: -1},
			fetchNext: true, token: e.w.newToken(), done: make(chan finishRes, 1)}
	}
	e.w.runFinishBatch(batch)
	for _, r := range batch {
		res := <-r.done
		if res.err != nil {
			e.tb.Fatalf("batch: %v", res.err)
		}
		f, err := e.w.parseFetch(res.reply, r.token)
		if err != nil {
			e.tb.Fatalf("batch reply %v: %v", res.reply, err)
		}
		if f.job != nil {
			next = append(next, f.job.ID)
		}
		skipped = append(skipped, f.skipped...)
	}
	return next, skipped
}

// TestWorkerNeverRunsIDsWithoutJobHash: a running worker (batched finishes)
// meets ids without a hash among real jobs: it runs every real job once,
// never calls the processor for the others, and reports each to
// OnMissingJob.
func TestWorkerNeverRunsIDsWithoutJobHash(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-missing-run")
	const n = 40
	var ghosts []string
	for i := range n {
		e.add("j", i, nil)
		if i%4 == 0 {
			id := fmt.Sprintf("ghost-%d", i)
			ghosts = append(ghosts, id)
			if err := e.client.LPush(context.Background(), e.k.wait, id).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var (
		mu      sync.Mutex
		missing []string
		runs    atomic.Int64
		bad     atomic.Int64
	)
	e.startWorker(func(_ context.Context, j *Job) (any, error) {
		runs.Add(1)
		if j.Name != "j" {
			bad.Add(1)
		}
		return nil, nil
	}, &WorkerOptions{Concurrency: 4, OnMissingJob: func(id string) {
		mu.Lock()
		missing = append(missing, id)
		mu.Unlock()
	}})
	bullmqtest.WaitFor(t, 20*time.Second, "all jobs and ghosts handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return runs.Load() == n && len(missing) == len(ghosts)
	})
	mu.Lock()
	slices.Sort(missing)
	slices.Sort(ghosts)
	if !slices.Equal(missing, ghosts) {
		t.Errorf("OnMissingJob got %v, want %v", missing, ghosts)
	}
	mu.Unlock()
	if bad.Load() != 0 {
		t.Errorf("the processor ran %d jobs without a hash", bad.Load())
	}
}
