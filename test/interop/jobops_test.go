package interop

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq"
)

// TestGoWorkerJobOps: progress and logs written by our Worker's jobs are
// seen by the official QueueEvents, getJob and getJobLogs; an Unrecoverable
// error fails at once; jobs of a flow or of a job scheduler are failed with
// an explicit reason without running.
func TestGoWorkerJobOps(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("jobops")
			ne := e.startNode(t, "events.js", e.cfg(name, v, nil))
			ne.waitEv(10*time.Second, "ready", "")
			res := e.ops(name, v,
				op("add", "name", "prog", "data", map[string]any{"behave": map[string]any{"progress": map[string]any{"pct": 50}, "log": "hello from go"}}),
				op("add", "name", "unrec", "data", map[string]any{"behave": map[string]any{"unrecoverable": "no way"}}, "opts", map[string]any{"attempts": 3, "backoff": 10}),
				op("flow", "name", "parent", "data", map[string]any{}, "children", []any{map[string]any{"name": "child", "data": map[string]any{}}}),
				op("upsertJobScheduler", "id", "every-hour", "repeat", map[string]any{"every": 3600000}, "template", map[string]any{"name": "tick", "data": map[string]any{}}),
				op("add", "name", "limits", "data", map[string]any{"behave": map[string]any{"log": "tried", "fail": "again"}},
					"opts", map[string]any{"attempts": 3, "stackTraceLimit": 1, "keepLogs": 1}),
			)
			var limitsID string
			mustUnmarshal(t, res[4], &limitsID)
			var progID, unrecID, schedID string
			mustUnmarshal(t, res[0], &progID)
			mustUnmarshal(t, res[1], &unrecID)
			var flow struct {
				ID       string   `json:"id"`
				Children []string `json:"children"`
			}
			mustUnmarshal(t, res[2], &flow)
			mustUnmarshal(t, res[3], &schedID)
			childID := flow.Children[0]

			w := startGoWorker(t, e.cfg(name, v, nil))
			p := ne.waitEv(10*time.Second, "progress", progID)
			var data map[string]any
			p.arg(t, "data", &data)
			if fmt.Sprint(data) != "map[pct:50]" {
				t.Errorf("progress event data %v", data)
			}
			ne.waitEv(10*time.Second, "completed", progID)
			f := ne.waitEv(10*time.Second, "failed", unrecID)
			var reason string
			f.arg(t, "failedReason", &reason)
			if reason != "no way" {
				t.Errorf("unrecoverable failed reason %q", reason)
			}
			for _, c := range []struct{ id, what string }{{childID, "flow"}, {schedID, "scheduler"}} {
				f := ne.waitEv(10*time.Second, "failed", c.id)
				f.arg(t, "failedReason", &reason)
				if !strings.Contains(reason, c.what) {
					t.Errorf("%s job failed with %q, want an explicit reason naming the %s", c.what, reason, c.what)
				}
				if w.count(isEv("start", c.id)) != 0 {
					t.Errorf("the processor ran the %s job", c.what)
				}
			}
			ne.waitEv(10*time.Second, "retries-exhausted", limitsID)
			r := e.ops(name, v, op("getJob", "id", progID), op("getJobLogs", "id", progID), op("getJob", "id", unrecID),
				op("getJob", "id", limitsID), op("getJobLogs", "id", limitsID))
			var lj nodeJob
			mustUnmarshal(t, r[3], &lj)
			var llogs struct {
				Logs  []string `json:"logs"`
				Count int      `json:"count"`
			}
			mustUnmarshal(t, r[4], &llogs)
			if lj.AttemptsMade != 3 || len(lj.Stacktrace) != 1 {
				t.Errorf("job with stackTraceLimit 1 after 3 failures: attemptsMade %d, %d stack entries", lj.AttemptsMade, len(lj.Stacktrace))
			}
			if llogs.Count != 1 {
				t.Errorf("job with keepLogs 1 after 3 logged attempts: %+v", llogs)
			}
			var pj, uj nodeJob
			mustUnmarshal(t, r[0], &pj)
			mustUnmarshal(t, r[2], &uj)
			if !jsonEqual(pj.Progress, []byte(`{"pct":50}`)) {
				t.Errorf("Node getJob progress %s", pj.Progress)
			}
			var logs struct {
				Logs  []string `json:"logs"`
				Count int      `json:"count"`
			}
			mustUnmarshal(t, r[1], &logs)
			if logs.Count != 1 || len(logs.Logs) != 1 || logs.Logs[0] != "hello from go" {
				t.Errorf("Node getJobLogs = %+v", logs)
			}
			if uj.AttemptsMade != 1 || uj.FailedReason != "no way" || uj.FinishedOn == 0 {
				t.Errorf("unrecoverable job after one attempt: %+v", uj)
			}
		})
	}
}

// TestLockRenewalAcrossFleet: a job that runs for several lock durations
// keeps its lock, so the other implementation's stalled checker, running
// often, never takes it back.
func TestLockRenewalAcrossFleet(t *testing.T) {
	for _, v := range versions {
		for _, owner := range []string{"go", "node"} {
			t.Run("v"+v+"/"+owner+"-owns", func(t *testing.T) {
				e := newEnv(t)
				name := e.queue("locks")
				q := newQueue(t, e, name)
				ctx := ctxT(t)
				start := func(impl string, cfg map[string]any) *proc {
					cfg = e.cfg(name, v, cfg)
					if impl == "node" {
						return e.startNode(t, "worker.js", cfg)
					}
					return startGoWorker(t, cfg)
				}
				checker := "node"
				if owner == "node" {
					checker = "go"
				}
				ow := start(owner, map[string]any{"lockDuration": 500, "stalledInterval": 300})
				ow.waitEv(10*time.Second, "ready", "")
				j, err := q.Add(ctx, "long", map[string]any{"behave": map[string]any{"sleepMs": 2000}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				ow.waitEv(10*time.Second, "start", j.ID)
				cw := start(checker, map[string]any{"lockDuration": 500, "stalledInterval": 300})
				ow.waitEv(10*time.Second, "completed", j.ID)
				if n := cw.count(isEv("start", j.ID)); n != 0 {
					t.Errorf("the %s checker took the job back %d times", checker, n)
				}
				h, err := e.rdb.HGetAll(ctx, e.key(name, j.ID)).Result()
				if err != nil {
					t.Fatal(err)
				}
				if h["stc"] != "" || h["atm"] != "1" || h["ats"] != "1" {
					t.Errorf("job after a long run: stc=%q atm=%q ats=%q", h["stc"], h["atm"], h["ats"])
				}
			})
		}
	}
}

// TestGoAdminOnNodeJobs: Remove, Clean, Drain and Obliterate from Go on a
// queue filled and worked by the official package, checked with Node's
// getters and QueueEvents.
func TestGoAdminOnNodeJobs(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("admin")
			q := newQueue(t, e, name)
			ctx := ctxT(t)
			ne := e.startNode(t, "events.js", e.cfg(name, v, nil))
			ne.waitEv(10*time.Second, "ready", "")
			adds := []map[string]any{}
			for i := 0; i < 3; i++ {
				adds = append(adds, op("add", "name", "done", "data", map[string]any{"i": i}))
			}
			adds = append(adds, op("add", "name", "busy", "data", map[string]any{"behave": map[string]any{"hang": true}}))
			res := e.ops(name, v, adds...)
			var busy string
			mustUnmarshal(t, res[3], &busy)
			w := e.startNode(t, "worker.js", e.cfg(name, v, nil))
			w.waitEv(10*time.Second, "start", busy)
			res = e.ops(name, v,
				op("add", "name", "w1", "data", map[string]any{}),
				op("add", "name", "w2", "data", map[string]any{}),
				op("add", "name", "d1", "data", map[string]any{}, "opts", map[string]any{"delay": 3600000}),
				op("add", "name", "p1", "data", map[string]any{}, "opts", map[string]any{"priority": 4}),
			)
			ids := make([]string, 4)
			for i := range res {
				mustUnmarshal(t, res[i], &ids[i])
			}
			w1 := ids[0]

			if err := q.Remove(ctx, busy); !errors.Is(err, bullmq.ErrJobLocked) {
				t.Errorf("Remove(active locked job) = %v, want ErrJobLocked", err)
			}
			if err := q.Remove(ctx, w1); err != nil {
				t.Fatalf("Remove(waiting job): %v", err)
			}
			rm := ne.waitEv(10*time.Second, "removed", w1)
			var prev string
			rm.arg(t, "prev", &prev)
			if prev != "wait" && prev != "waiting" {
				t.Errorf("removed event prev %q", prev)
			}
			if err := q.Remove(ctx, w1); !errors.Is(err, bullmq.ErrJobNotFound) {
				t.Errorf("Remove(removed job) = %v, want ErrJobNotFound", err)
			}
			cleaned, err := q.Clean(ctx, 0, 0, bullmq.StateCompleted)
			if err != nil || len(cleaned) != 3 {
				t.Fatalf("Clean(completed) = %v, %v; want 3 ids", cleaned, err)
			}
			ce := ne.waitEv(10*time.Second, "cleaned", "")
			var count string
			ce.arg(t, "count", &count)
			if count != "3" {
				t.Errorf("cleaned event count %q", count)
			}
			counts := func() map[string]int64 {
				var c map[string]int64
				mustUnmarshal(t, e.ops(name, v, op("getJobCounts"))[0], &c)
				return c
			}
			if c := counts(); c["completed"] != 0 || c["waiting"] != 1 || c["active"] != 1 || c["delayed"] != 1 || c["prioritized"] != 1 {
				t.Errorf("Node counts after Remove and Clean: %v", c)
			}
			if err := q.Drain(ctx, false); err != nil {
				t.Fatal(err)
			}
			if c := counts(); c["waiting"] != 0 || c["prioritized"] != 0 || c["delayed"] != 1 || c["active"] != 1 {
				t.Errorf("Node counts after Drain(false): %v", c)
			}
			if err := q.Drain(ctx, true); err != nil {
				t.Fatal(err)
			}
			if c := counts(); c["delayed"] != 0 || c["active"] != 1 {
				t.Errorf("Node counts after Drain(true): %v", c)
			}
			if err := q.Obliterate(ctx, false); !errors.Is(err, bullmq.ErrActiveJobs) {
				t.Errorf("Obliterate(not forced, active job) = %v, want ErrActiveJobs", err)
			}
			w.kill()
			if err := q.Obliterate(ctx, true); err != nil {
				t.Fatalf("Obliterate(force): %v", err)
			}
			for _, id := range append(ids, busy) {
				if n, _ := e.rdb.Exists(ctx, e.key(name, id), e.key(name, id)+":lock").Result(); n != 0 {
					t.Errorf("job %s left after Obliterate", id)
				}
			}
			for st, n := range counts() {
				if n != 0 {
					t.Errorf("Node count %s after Obliterate: %d", st, n)
				}
			}
		})
	}
}

// TestGoWorkerClearsDeduplication: a job added by the official Queue with a
// deduplication id blocks duplicates while it lives; once our Worker has
// finished it, the same deduplication id adds a new job again.
func TestGoWorkerClearsDeduplication(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("dedup")
			dd := map[string]any{"deduplication": map[string]any{"id": "same-work"}}
			res := e.ops(name, v,
				op("add", "name", "first", "data", map[string]any{}, "opts", dd),
				op("add", "name", "dup", "data", map[string]any{}, "opts", dd),
			)
			var first, dup string
			mustUnmarshal(t, res[0], &first)
			mustUnmarshal(t, res[1], &dup)
			if dup != first {
				t.Fatalf("Node did not deduplicate: %s then %s", first, dup)
			}
			w := startGoWorker(t, e.cfg(name, v, nil))
			w.waitEv(10*time.Second, "completed", first)
			if n, _ := e.rdb.Exists(ctxT(t), e.key(name, "de:same-work")).Result(); n != 0 {
				t.Errorf("deduplication key left after the job completed")
			}
			var again string
			mustUnmarshal(t, e.ops(name, v, op("add", "name", "again", "data", map[string]any{}, "opts", dd))[0], &again)
			if again == first {
				t.Fatalf("the finished job still deduplicates new adds")
			}
			w.waitEv(10*time.Second, "completed", again)
		})
	}
}
