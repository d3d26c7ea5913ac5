package bullmq

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

func TestWorkerRetention(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		jobKeep   *KeepJobs // job option (removeOnComplete / removeOnFail)
		workerKep *KeepJobs // worker fallback
		fail      bool
		wantKept  int // of 4 jobs run, plus 2 old jobs seeded 2h ago
	}{
		{name: "default keeps all", wantKept: 6},
		{name: "true removes at once", jobKeep: RemoveAll(), wantKept: 2},
		{name: "false keeps all", jobKeep: KeepAll(), workerKep: RemoveAll(), wantKept: 6},
		{name: "count", jobKeep: KeepLast(3), wantKept: 3},
		{name: "age removes old", jobKeep: KeepFor(time.Hour, 0), wantKept: 4},
		{name: "age and count", jobKeep: KeepFor(time.Hour, 2), wantKept: 2},
		{name: "worker fallback", workerKep: KeepLast(1), wantKept: 1},
		{name: "failed count", jobKeep: KeepLast(2), fail: true, wantKept: 2},
		{name: "failed true", jobKeep: RemoveAll(), fail: true, wantKept: 2},
		{name: "failed worker fallback age", workerKep: KeepFor(time.Hour, 0), fail: true, wantKept: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newWorkerEnv(t, "w-keep")
			ctx := context.Background()
			set, state := e.k.completed, StateCompleted
			if tt.fail {
				set, state = e.k.failed, StateFailed
			}
			// Two jobs that finished two hours ago.
			old := time.Now().Add(-2 * time.Hour).UnixMilli()
			for _, id := range []string{"old-1", "old-2"} {
				e.client.HSet(ctx, e.k.job(id), "name", "old", "data", "{}", "opts", "{}", "finishedOn", old)
				e.client.ZAdd(ctx, set, redisZ(float64(old), id))
			}
			var ids []string
			for i := range 4 {
				o := &JobOptions{}
				if tt.fail {
					o.RemoveOnFail = tt.jobKeep
				} else {
					o.RemoveOnComplete = tt.jobKeep
				}
				ids = append(ids, e.add("n", i, o).ID)
			}
			var done atomic.Int32
			wo := &WorkerOptions{}
			if tt.fail {
				wo.RemoveOnFail = tt.workerKep
				wo.OnFailed = func(*Job, error) { done.Add(1) }
			} else {
				wo.RemoveOnComplete = tt.workerKep
				wo.OnCompleted = func(*Job, json.RawMessage) { done.Add(1) }
			}
			e.startWorker(func(ctx context.Context, j *Job) (any, error) {
				if tt.fail {
					return nil, errBoom
				}
				return nil, nil
			}, wo)
			bullmqtest.WaitFor(t, 5*time.Second, "4 jobs finished", func() bool { return done.Load() == 4 })
			kept, err := e.client.ZRange(ctx, set, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(kept) != tt.wantKept {
				t.Fatalf("kept %v, want %d jobs", kept, tt.wantKept)
			}
			// Every kept id has its hash, every removed one has none.
			keptSet := map[string]bool{}
			for _, id := range kept {
				keptSet[id] = true
			}
			for _, id := range append([]string{"old-1", "old-2"}, ids...) {
				n, _ := e.client.Exists(ctx, e.k.job(id)).Result()
				if keptSet[id] != (n == 1) {
					t.Errorf("job %s: in set %v, hash exists %v", id, keptSet[id], n == 1)
				}
			}
			// The newest jobs are the ones kept by count.
			if tt.wantKept > 0 && tt.wantKept < 4 && tt.jobKeep != nil && tt.jobKeep.Count > 0 || tt.workerKep != nil && tt.workerKep.Count > 0 {
				last := ids[len(ids)-1]
				if !keptSet[last] {
					t.Errorf("newest job %s removed", last)
				}
				if s := e.state(last); s != state {
					t.Errorf("state %s", s)
				}
			}
		})
	}
}
