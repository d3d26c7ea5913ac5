package bullmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

// TestFinishBatchWritesAsSingle checks that finishing jobs in batches
// (Concurrency > 1) writes the same job hashes, dedup keys, sets and events
// as finishing them one call at a time (Concurrency 1, NoAutoPipeline).
func TestFinishBatchWritesAsSingle(t *testing.T) {
	snap := func(t *testing.T, conc int, noBatch bool) map[string]any {
		e := newWorkerEnv(t, "w-batch")
		ctx := context.Background()
		const n = 24
		ids := make([]string, n)
		for i := range n {
			o := &JobOptions{Attempts: 1}
			if i%5 == 0 {
				o.RemoveOnComplete = RemoveAll()
				o.RemoveOnFail = RemoveAll()
			}
			ids[i] = e.add("j", i, o).ID
			if i%4 == 0 {
				deid := fmt.Sprintf("d%d", i)
				if err := e.client.HSet(ctx, e.k.job(ids[i]), "deid", deid).Err(); err != nil {
					t.Fatal(err)
				}
				if err := e.client.Set(ctx, e.k.base+"de:"+deid, ids[i], 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
		var done atomic.Int64
		e.startWorker(func(_ context.Context, j *Job) (any, error) {
			var i int
			if err := json.Unmarshal(j.Data, &i); err != nil {
				return nil, err
			}
			if i%3 == 0 {
				return nil, errors.New("boom")
			}
			return map[string]int{"i": i}, nil
		}, &WorkerOptions{Concurrency: conc, NoAutoPipeline: noBatch,
			OnCompleted: func(*Job, json.RawMessage) { done.Add(1) },
			OnFailed:    func(*Job, error) { done.Add(1) }})
		bullmqtest.WaitFor(t, 20*time.Second, "all jobs finished", func() bool { return done.Load() == n })
		out := map[string]any{}
		for i, id := range ids {
			h, err := e.client.HGetAll(ctx, e.k.job(id)).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"timestamp", "processedOn", "finishedOn", "pb"} {
				if _, ok := h[f]; ok {
					h[f] = "set"
				}
			}
			if st, ok := h["stacktrace"]; ok && st != "" {
				h["stacktrace"] = "set"
			}
			out[fmt.Sprintf("job %d", i)] = h
			if i%4 == 0 {
				out[fmt.Sprintf("dedup %d", i)] = e.client.Exists(ctx, e.k.base+fmt.Sprintf("de:d%d", i)).Val()
			}
		}
		for _, set := range []string{e.k.completed, e.k.failed} {
			m, err := e.client.ZRange(ctx, set, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(m)
			out[set[len(e.k.base):]] = len(m)
		}
		counts := map[string]int{}
		for _, ev := range e.events() {
			if ev["event"] != "drained" {
				counts[ev["event"]]++
			}
		}
		out["events"] = counts
		out["active"] = e.client.LLen(ctx, e.k.active).Val()
		return out
	}
	single := snap(t, 1, true)
	for _, conc := range []int{1, 4, 16} {
		got := snap(t, conc, false)
		if !reflect.DeepEqual(got, single) {
			t.Errorf("concurrency %d: state differs from the single-call path:\n got %v\nwant %v", conc, got, single)
		}
	}
}

// TestFinishBatchEntryError checks that an error raised while finishing one
// job of a batch fails that job's finish only.
func TestFinishBatchEntryError(t *testing.T) {
	e := newWorkerEnv(t, "w-batch-err")
	ctx := context.Background()
	const n = 30
	bad := ""
	for i := range n {
		id := e.add("j", i, nil).ID
		if i == n/2 {
			bad = id
			// SCARD on a string raises WRONGTYPE inside the finish script.
			if err := e.client.Set(ctx, e.k.job(id)+":dependencies", "x", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var completed, errs atomic.Int64
	release := make(chan struct{})
	e.startWorker(func(ctx context.Context, j *Job) (any, error) {
		select { // hold the jobs so that they finish together
		case <-release:
		case <-ctx.Done():
		}
		return "ok", nil
	}, &WorkerOptions{Concurrency: n,
		OnCompleted: func(*Job, json.RawMessage) { completed.Add(1) },
		OnError:     func(error) { errs.Add(1) }})
	bullmqtest.WaitFor(t, 10*time.Second, "all jobs active", func() bool { return e.client.LLen(ctx, e.k.active).Val() == n })
	close(release)
	bullmqtest.WaitFor(t, 10*time.Second, "other jobs completed", func() bool { return completed.Load() == n-1 })
	bullmqtest.WaitFor(t, 10*time.Second, "error reported", func() bool { return errs.Load() >= 1 })
	if got := e.client.ZCard(ctx, e.k.completed).Val(); got != n-1 {
		t.Errorf("completed set has %d jobs, want %d", got, n-1)
	}
	if st := e.state(bad); st != StateActive {
		t.Errorf("job whose finish failed is %s, want active", st)
	}
	if err := e.client.Del(ctx, e.k.job(bad)+":dependencies").Err(); err != nil {
		t.Fatal(err)
	}
}

// TestFinishBatchTakesFromWaitAndPrioritized holds a first wave of jobs so
// that they finish in one batch, then checks what that batch takes next:
// plain jobs from wait, then prioritized ones, a legacy "0:" marker id in
// wait dropped (BullMQ <= 4), every job run exactly once and nothing left
// behind.
func TestFinishBatchTakesFromWaitAndPrioritized(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			e := newWorkerEnv(t, "w-batch-take")
			ctx := context.Background()
			const first = 10
			for i := range first {
				e.add("first", i, nil)
			}
			release := make(chan struct{})
			var mu sync.Mutex
			runs := map[string]int{}
			var done atomic.Int64
			e.startWorker(func(ctx context.Context, j *Job) (any, error) {
				if j.Name == "first" {
					select {
					case <-release:
					case <-ctx.Done():
					}
				}
				mu.Lock()
				runs[j.ID]++
				mu.Unlock()
				return "ok", nil
			}, &WorkerOptions{Concurrency: first, OnCompleted: func(*Job, json.RawMessage) { done.Add(1) }})
			bullmqtest.WaitFor(t, 10*time.Second, "first wave active", func() bool { return e.client.LLen(ctx, e.k.active).Val() == first })

			var ids []string
			for i := range 4 {
				ids = append(ids, e.add("plain", i, nil).ID)
			}
			for i := range 4 {
				ids = append(ids, e.add("prio", i, &JobOptions{Priority: 4 - i}).ID)
			}
			if legacy {
				// Where the next RPOPLPUSH would find it.
				if err := e.client.RPush(ctx, e.k.wait, "0:1700000000000").Err(); err != nil {
					t.Fatal(err)
				}
			}
			close(release)
			bullmqtest.WaitFor(t, 10*time.Second, "all jobs completed", func() bool { return done.Load() == first+8 })
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if runs[id] != 1 {
					t.Errorf("job %s ran %d times, want 1", id, runs[id])
				}
			}
			for _, k := range []string{e.k.wait, e.k.active} {
				if got := e.client.LRange(ctx, k, 0, -1).Val(); len(got) != 0 {
					t.Errorf("%s holds %v, want nothing", k, got)
				}
			}
			if n := e.client.ZCard(ctx, e.k.prioritized).Val(); n != 0 {
				t.Errorf("prioritized holds %d jobs", n)
			}
			if got := e.client.ZCard(ctx, e.k.completed).Val(); got != first+8 {
				t.Errorf("completed set has %d jobs, want %d", got, first+8)
			}
		})
	}
}

// TestFinishReportsVanishedJob deletes the hash of a job while it runs and
// checks that finishing it reports ErrJobNotFound and writes nothing back,
// on the one-job path (concurrency 1) and on the batched one.
func TestFinishReportsVanishedJob(t *testing.T) {
	for _, conc := range []int{1, 4} {
		t.Run(fmt.Sprintf("concurrency=%d", conc), func(t *testing.T) {
			e := newWorkerEnv(t, "w-vanished")
			ctx := context.Background()
			id := e.add("gone", 1, nil).ID
			var notFound atomic.Int64
			e.startWorker(func(ctx context.Context, j *Job) (any, error) {
				if err := e.client.Del(ctx, e.k.job(j.ID)).Err(); err != nil {
					return nil, err
				}
				return "ok", nil
			}, &WorkerOptions{Concurrency: conc, OnError: func(err error) {
				if errors.Is(err, ErrJobNotFound) {
					notFound.Add(1)
				}
			}})
			bullmqtest.WaitFor(t, 10*time.Second, "ErrJobNotFound reported", func() bool { return notFound.Load() == 1 })
			if n := e.client.Exists(ctx, e.k.job(id)).Val(); n != 0 {
				t.Errorf("job hash written back after its deletion")
			}
			if n := e.client.ZCard(ctx, e.k.completed).Val(); n != 0 {
				t.Errorf("completed set has %d jobs, want 0", n)
			}
		})
	}
}
