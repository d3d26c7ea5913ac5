package interop

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// streamMs is the ms part of a stream id "<ms>-<seq>".
func streamMs(tb testing.TB, id string) int64 {
	tb.Helper()
	ms, err := strconv.ParseInt(strings.SplitN(id, "-", 2)[0], 10, 64)
	if err != nil {
		tb.Fatalf("stream id %q: %v", id, err)
	}
	return ms
}

// TestGoWorkerProcessesNodeJobs: jobs added by the official Queue are
// processed by our Worker, and the official QueueEvents and getJob see
// active, completed with the return value, failed with the reason, and
// exponential retries 200/400/800 ms.
func TestGoWorkerProcessesNodeJobs(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("gowork")
			ne := e.startNode(t, "events.js", e.cfg(name, v, nil))
			ne.waitEv(10*time.Second, "ready", "")
			res := e.ops(name, v,
				op("add", "name", "ok", "data", map[string]any{"behave": map[string]any{"returnValue": map[string]any{"answer": 42}}}),
				op("add", "name", "bad", "data", map[string]any{"behave": map[string]any{"fail": "kaput"}}),
				op("add", "name", "retry", "data", map[string]any{"behave": map[string]any{"failAttempts": 10}},
					"opts", map[string]any{"attempts": 4, "backoff": map[string]any{"type": "exponential", "delay": 200}}),
			)
			var okID, badID, retryID string
			mustUnmarshal(t, res[0], &okID)
			mustUnmarshal(t, res[1], &badID)
			mustUnmarshal(t, res[2], &retryID)
			// While the retry job waits in delayed, its hash holds the backoff
			// it was given ("delay", reset to 0 on promotion): record them.
			var backoffs []int64
			stopPoll := make(chan struct{})
			polled := make(chan struct{})
			pollCtx := ctxT(t)
			go func() {
				defer close(polled)
				for {
					d, err := e.rdb.HGet(pollCtx, e.key(name, retryID), "delay").Int64()
					if err == nil && d != 0 && (len(backoffs) == 0 || backoffs[len(backoffs)-1] != d) {
						backoffs = append(backoffs, d)
					}
					select {
					case <-stopPoll:
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
			}()
			w := startGoWorker(t, e.cfg(name, v, map[string]any{"name": "go-w"}))

			a := ne.waitEv(10*time.Second, "active", okID)
			var prev string
			a.arg(t, "prev", &prev)
			if prev != "waiting" {
				t.Errorf("active prev %q", prev)
			}
			c := ne.waitEv(10*time.Second, "completed", okID)
			var rv any
			c.arg(t, "returnvalue", &rv)
			if fmt.Sprint(rv) != "map[answer:42]" {
				t.Errorf("completed returnvalue %v", rv)
			}
			f := ne.waitEv(10*time.Second, "failed", badID)
			var reason string
			f.arg(t, "failedReason", &reason)
			if reason != "kaput" {
				t.Errorf("failed reason %q", reason)
			}
			// Retries: three delayed events, due 200, 400, 800 ms after the
			// failed attempt (stream id time = when it was written).
			var dues []int64
			delayed := ne.waitN(10*time.Second, "retry delays", 3, isEv("delayed", retryID))
			for i, want := range []int64{200, 400, 800} {
				d := delayed[i]
				var due int64
				d.arg(t, "delay", &due)
				// The event is written a few ms after the worker read its
				// clock: a loose bound only; the exact check is backoffs.
				if got := due - streamMs(t, d.ID); got < want-150 || got > want+20 {
					t.Errorf("retry %d: due %d ms after the event, want %d", i+1, got, want)
				}
				dues = append(dues, due)
			}
			rf := ne.waitEv(10*time.Second, "failed", retryID)
			rf.arg(t, "failedReason", &reason)
			if reason != "attempt 4 failed" {
				t.Errorf("retry job failed reason %q", reason)
			}
			close(stopPoll)
			<-polled
			if fmt.Sprint(backoffs) != "[200 400 800]" {
				t.Errorf("retry backoffs stored in the job hash: %v, want [200 400 800]", backoffs)
			}
			x := ne.waitEv(5*time.Second, "retries-exhausted", retryID)
			var am string
			x.arg(t, "attemptsMade", &am)
			if am != "4" {
				t.Errorf("retries-exhausted attemptsMade %q, want 4", am)
			}
			// Each retry started no earlier than it was due. The start lines
			// come through the worker's stdout, which may still be behind
			// the events: wait for all four.
			var starts []int64
			for _, l := range w.waitN(5*time.Second, "retry job starts", 4, isEv("start", retryID)) {
				starts = append(starts, l.T)
			}
			if len(starts) != 4 {
				t.Fatalf("retry job started %d times, want 4", len(starts))
			}
			for i, due := range dues {
				if starts[i+1] < due {
					t.Errorf("attempt %d started at %d, before its due time %d", i+2, starts[i+1], due)
				}
			}
			// The official getWorkers() lists the Go worker by its name.
			var workers []struct {
				Name    string `json:"name"`
				RawName string `json:"rawname"`
			}
			mustUnmarshal(t, e.ops(name, v, op("getWorkers"))[0], &workers)
			found := false
			for _, wk := range workers {
				found = found || strings.HasSuffix(wk.RawName, ":w:go-w")
			}
			if !found {
				t.Errorf("Node getWorkers() = %+v, want one whose connection is named …:w:go-w", workers)
			}
			_, jobs, _ := e.nodeView(name, v, []string{okID, badID, retryID})
			if j := jobs[okID]; j == nil || !jsonEqual(j.ReturnValue, []byte(`{"answer":42}`)) || j.AttemptsMade != 1 || j.FinishedOn == 0 || j.ProcessedBy != "go-w" {
				t.Errorf("Node getJob(ok) = %+v", j)
			}
			if j := jobs[badID]; j == nil || j.FailedReason != "kaput" || j.AttemptsMade != 1 || j.FinishedOn == 0 || len(j.Stacktrace) == 0 {
				t.Errorf("Node getJob(bad) = %+v", j)
			}
			if j := jobs[retryID]; j == nil || j.AttemptsMade != 4 || j.AttemptsStarted != 4 || j.FailedReason != "attempt 4 failed" {
				t.Errorf("Node getJob(retry) = %+v", j)
			}
		})
	}
}

// TestMixedFleetSharesJobs: a Go and a Node worker on one queue share 2,000
// jobs added by both producers; each job runs exactly once.
func TestMixedFleetSharesJobs(t *testing.T) {
	const perSide = 1000
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("fleet")
			q := newQueue(t, e, name)
			ctx := ctxT(t)
			nw := e.startNode(t, "worker.js", e.cfg(name, v, map[string]any{"concurrency": 8}))
			gw := startGoWorker(t, e.cfg(name, v, map[string]any{"concurrency": 8}))
			nw.waitEv(10*time.Second, "ready", "")
			gw.waitEv(10*time.Second, "ready", "")

			var nodeJobs []map[string]any
			for i := 0; i < perSide; i++ {
				nodeJobs = append(nodeJobs, map[string]any{"name": "n", "data": map[string]any{"i": i}})
			}
			// The Node producer runs while Go adds its own jobs.
			np := e.startNode(t, "queue.js", e.cfg(name, v, map[string]any{"ops": []any{op("addBulk", "jobs", nodeJobs)}}))
			var bulk []bullmq.BulkJob
			for i := 0; i < perSide; i++ {
				bulk = append(bulk, bullmq.BulkJob{Name: "g", Data: map[string]any{"i": i}})
			}
			want := map[string]bool{}
			for i := 0; i < perSide; i += 100 {
				jobs, err := q.AddBulk(ctx, bulk[i:i+100])
				if err != nil {
					t.Fatalf("AddBulk: %v", err)
				}
				for _, j := range jobs {
					want[j.ID] = true
				}
			}
			l := np.waitFor(60*time.Second, "addBulk result", func(l line) bool { return l.Op != "" })
			var r struct {
				Result []string `json:"result"`
			}
			l.decode(t, &r)
			for _, id := range r.Result {
				want[id] = true
			}
			if len(want) != 2*perSide {
				t.Fatalf("%d distinct ids added, want %d", len(want), 2*perSide)
			}
			testenv.Eventually(t, 60*time.Second, "all jobs completed", func() error {
				n, err := e.rdb.ZCard(ctx, e.key(name, "completed")).Result()
				if err != nil || n != 2*perSide {
					return fmt.Errorf("completed %d (%v)", n, err)
				}
				return nil
			})
			// A job is completed in Redis before its worker's output lines
			// reach us: wait until every start line has been read.
			isStart := func(l line) bool { return l.Ev == "start" }
			testenv.Eventually(t, 10*time.Second, "every start line read", func() error {
				if n := nw.count(isStart) + gw.count(isStart); n < 2*perSide {
					return fmt.Errorf("%d start lines", n)
				}
				return nil
			})
			seen := map[string]string{}
			count := map[string]int{}
			for who, p := range map[string]*proc{"node": nw, "go": gw} {
				for _, l := range p.snapshot() {
					if l.Ev != "start" {
						continue
					}
					if prev, dup := seen[l.ID]; dup {
						t.Errorf("job %s processed by %s and %s", l.ID, prev, who)
					}
					seen[l.ID] = who
					count[who]++
				}
			}
			for id := range want {
				if _, ok := seen[id]; !ok {
					t.Errorf("job %s never started", id)
				}
			}
			t.Logf("processed: node %d, go %d", count["node"], count["go"])
			if count["node"] == 0 || count["go"] == 0 {
				t.Errorf("one side did nothing: %v", count)
			}
			// Redis agrees: one attempt started and made per job.
			pipe := e.rdb.Pipeline()
			cmds := map[string]interface{ Val() []any }{}
			for id := range want {
				cmds[id] = pipe.HMGet(ctx, e.key(name, id), "atm", "ats")
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatal(err)
			}
			for id, c := range cmds {
				if fmt.Sprint(c.Val()) != "[1 1]" {
					t.Errorf("job %s: atm, ats = %v, want 1 1", id, c.Val())
				}
			}
			if n, _ := e.rdb.LLen(ctx, e.key(name, "active")).Result(); n != 0 {
				t.Errorf("%d jobs left active", n)
			}
		})
	}
}

// TestDeferredFailure: a job with defa is failed by our worker without
// running, with the defa text as the reason.
func TestDeferredFailure(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("defa")
			ctx := ctxT(t)
			res := e.ops(name, v,
				op("add", "name", "doomed", "data", map[string]any{}, "opts", map[string]any{"attempts": 3}),
				op("add", "name", "fine", "data", map[string]any{}),
			)
			var doomed, fine string
			mustUnmarshal(t, res[0], &doomed)
			mustUnmarshal(t, res[1], &fine)
			// The flow code and the stalled checker write defa on a job in wait.
			if err := e.rdb.HSet(ctx, e.key(name, doomed), "defa", "child bull:x:1 failed").Err(); err != nil {
				t.Fatal(err)
			}
			ne := e.startNode(t, "events.js", e.cfg(name, v, nil))
			ne.waitEv(10*time.Second, "ready", "")
			w := startGoWorker(t, e.cfg(name, v, nil))
			f := ne.waitEv(10*time.Second, "failed", doomed)
			var reason string
			f.arg(t, "failedReason", &reason)
			if reason != "child bull:x:1 failed" {
				t.Errorf("failed reason %q", reason)
			}
			w.waitEv(10*time.Second, "completed", fine)
			for _, l := range w.snapshot() {
				if l.Ev == "start" && l.ID == doomed {
					t.Errorf("processor ran the job with defa")
				}
			}
			states, jobs, _ := e.nodeView(name, v, []string{doomed})
			if states[doomed] != "failed" || jobs[doomed].FailedReason != reason || jobs[doomed].FinishedOn == 0 {
				t.Errorf("Node sees %s: %+v", states[doomed], jobs[doomed])
			}
			if ex, _ := e.rdb.HExists(ctx, e.key(name, doomed), "defa").Result(); ex {
				t.Errorf("defa left on the failed job")
			}
		})
	}
}

// TestCrashRecovery: a worker SIGKILLed in the middle of jobs loses them to
// the live worker of the other implementation: every job completes once,
// with stc 1, and none stays active.
func TestCrashRecovery(t *testing.T) {
	const jobs = 3
	type tc struct{ victim, rescuer string }
	for _, v := range versions {
		for _, c := range []tc{{"node", "go"}, {"go", "node"}, {"go", "go"}} {
			t.Run(fmt.Sprintf("v%s/%s-killed-%s-recovers", v, c.victim, c.rescuer), func(t *testing.T) {
				e := newEnv(t)
				name := e.queue("crash")
				q := newQueue(t, e, name)
				ctx := ctxT(t)
				start := func(impl string, cfg map[string]any) *proc {
					cfg = e.cfg(name, v, cfg)
					if impl == "node" {
						return e.startNode(t, "worker.js", cfg)
					}
					return startGoWorker(t, cfg)
				}
				ne := e.startNode(t, "events.js", e.cfg(name, v, nil))
				ne.waitEv(10*time.Second, "ready", "")
				victim := start(c.victim, map[string]any{"name": "victim", "concurrency": jobs, "lockDuration": 1000,
					"stalledInterval": 1000, "behave": map[string]any{"hang": true}})
				victim.waitEv(10*time.Second, "ready", "")
				var ids []string
				for i := 0; i < jobs; i++ {
					j, err := q.Add(ctx, "precious", map[string]any{"i": i}, &bullmq.JobOptions{Attempts: 2})
					if err != nil {
						t.Fatal(err)
					}
					ids = append(ids, j.ID)
				}
				for _, id := range ids {
					victim.waitEv(10*time.Second, "start", id)
				}
				rescuer := start(c.rescuer, map[string]any{"name": "rescuer", "concurrency": 2, "lockDuration": 2000, "stalledInterval": 500})
				rescuer.waitEv(10*time.Second, "ready", "")
				killed := time.Now()
				victim.kill()
				for _, id := range ids {
					rescuer.waitEv(15*time.Second, "completed", id)
				}
				t.Logf("%d jobs recovered %s after SIGKILL", jobs, time.Since(killed))
				for _, id := range ids { // the official QueueEvents saw the checker's work
					ne.waitEv(5*time.Second, "stalled", id)
				}
				for _, id := range ids {
					h, err := e.rdb.HGetAll(ctx, e.key(name, id)).Result()
					if err != nil {
						t.Fatal(err)
					}
					if h["stc"] != "1" || h["atm"] != "1" || h["ats"] != "2" || h["pb"] != "rescuer" || h["finishedOn"] == "" {
						t.Errorf("job %s after recovery: stc=%s atm=%s ats=%s pb=%s finishedOn=%s", id, h["stc"], h["atm"], h["ats"], h["pb"], h["finishedOn"])
					}
				}
				cnt, err := q.GetJobCounts(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if cnt[bullmq.StateCompleted] != jobs || cnt[bullmq.StateActive] != 0 || cnt[bullmq.StateWaiting] != 0 || cnt[bullmq.StateFailed] != 0 {
					t.Errorf("counts after recovery: %v", cnt)
				}
				for _, id := range ids {
					if n, _ := e.rdb.Exists(ctx, e.key(name, id)+":lock").Result(); n != 0 {
						t.Errorf("job %s still locked", id)
					}
				}
			})
		}
	}
}

// TestStalledTwiceFailsOnGoWorker: a job that stalls twice (a Node worker
// and then a Go worker SIGKILLed while holding it) gets defa from our
// stalled checker and is failed by the next Go worker without running.
func TestStalledTwiceFailsOnGoWorker(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("stall2")
			q := newQueue(t, e, name)
			ctx := ctxT(t)
			hang := map[string]any{"hang": true}
			n1 := e.startNode(t, "worker.js", e.cfg(name, v, map[string]any{"lockDuration": 800, "stalledInterval": 500, "behave": hang}))
			n1.waitEv(10*time.Second, "ready", "")
			j, err := q.Add(ctx, "cursed", nil, &bullmq.JobOptions{Attempts: 5})
			if err != nil {
				t.Fatal(err)
			}
			n1.waitEv(10*time.Second, "start", j.ID)
			g1 := startGoWorker(t, e.cfg(name, v, map[string]any{"lockDuration": 800, "stalledInterval": 500, "behave": hang}))
			n1.kill()
			g1.waitEv(15*time.Second, "start", j.ID)
			g2 := startGoWorker(t, e.cfg(name, v, map[string]any{"lockDuration": 800, "stalledInterval": 500, "maxStalledCount": 1}))
			g1.kill()
			testenv.Eventually(t, 15*time.Second, "job failed", func() error {
				st, err := q.GetJobState(ctx, j.ID)
				if err != nil || st != bullmq.StateFailed {
					return fmt.Errorf("state %s (%v)", st, err)
				}
				return nil
			})
			for _, l := range g2.snapshot() {
				if l.Ev == "start" && l.ID == j.ID {
					t.Errorf("the third worker ran the job")
				}
			}
			h, _ := e.rdb.HGetAll(ctx, e.key(name, j.ID)).Result()
			if h["failedReason"] != "job stalled more than allowable limit" || h["stc"] != "2" {
				t.Errorf("job after two stalls: failedReason=%q stc=%s", h["failedReason"], h["stc"])
			}
		})
	}
}

// TestMixedFleetLimits: global concurrency and rate limits hold across a Go
// and a Node worker on one queue.
func TestMixedFleetLimits(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v+"/global-concurrency", func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("gconc")
			q := newQueue(t, e, name)
			ctx := ctxT(t)
			e.ops(name, v, op("setGlobalConcurrency", "n", 2))
			track := e.key(name, "test-running")
			behave := map[string]any{"sleepMs": 120, "trackKey": track}
			// Node holds at most 1 job and Go wants 3: only the global cap
			// keeps the fleet at 2, and both keep a slot (a worker that
			// finishes a job fetches the next in the same call).
			nw := e.startNode(t, "worker.js", e.cfg(name, v, map[string]any{"concurrency": 1, "behave": behave}))
			nw.waitEv(10*time.Second, "ready", "")
			const n = 16
			for i := 0; i < n; i++ {
				if _, err := q.Add(ctx, "c", map[string]any{"i": i}, nil); err != nil {
					t.Fatal(err)
				}
			}
			// The Go worker joins once Node holds jobs, so both take part.
			nw.waitEv(10*time.Second, "start", "")
			gw := startGoWorker(t, e.cfg(name, v, map[string]any{"concurrency": 3, "behave": behave}))
			maxActive := int64(0)
			testenv.Eventually(t, 30*time.Second, "all jobs completed", func() error {
				if a, _ := e.rdb.LLen(ctx, e.key(name, "active")).Result(); a > maxActive {
					maxActive = a
				}
				c, err := e.rdb.ZCard(ctx, e.key(name, "completed")).Result()
				if err != nil || c != n {
					return fmt.Errorf("completed %d", c)
				}
				return nil
			})
			peak, _ := e.rdb.Get(ctx, track+":max").Int64()
			t.Logf("peak running %d, peak active list %d", peak, maxActive)
			if peak > 2 || maxActive > 2 {
				t.Errorf("global concurrency 2 exceeded: %d processors at once, active list %d", peak, maxActive)
			}
			if peak < 2 {
				t.Errorf("peak %d: the fleet never used the allowed 2", peak)
			}
			if by := e.checkBoth(t, nw, gw, n); by["go"] == 0 || by["node"] == 0 {
				t.Errorf("one worker did nothing: %v", by)
			}
		})
		for _, mode := range []string{"worker-limiter", "global-rate-limit"} {
			t.Run("v"+v+"/"+mode, func(t *testing.T) {
				e := newEnv(t)
				name := e.queue("rate")
				q := newQueue(t, e, name)
				ctx := ctxT(t)
				const max, dur, n = 3, 400, 15
				extra := map[string]any{"concurrency": 4}
				if mode == "worker-limiter" {
					extra["limiter"] = map[string]any{"max": max, "duration": dur}
				} else {
					e.ops(name, v, op("setGlobalRateLimit", "max", max, "duration", dur))
				}
				nw := e.startNode(t, "worker.js", e.cfg(name, v, extra))
				gw := startGoWorker(t, e.cfg(name, v, extra))
				nw.waitEv(10*time.Second, "ready", "")
				gw.waitEv(10*time.Second, "ready", "")
				var ids []string
				for i := 0; i < n; i++ {
					j, err := q.Add(ctx, "r", map[string]any{"i": i}, nil)
					if err != nil {
						t.Fatal(err)
					}
					ids = append(ids, j.ID)
				}
				testenv.Eventually(t, 30*time.Second, "all jobs completed", func() error {
					c, err := e.rdb.ZCard(ctx, e.key(name, "completed")).Result()
					if err != nil || c != n {
						return fmt.Errorf("completed %d", c)
					}
					return nil
				})
				var starts []int64
				for _, id := range ids {
					p, _ := e.rdb.HGet(ctx, e.key(name, id), "processedOn").Int64()
					starts = append(starts, p)
				}
				sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
				// The limiter is a fixed window opened by the first job that
				// finds it empty: greedy windows of dur ms hold at most max
				// starts. processedOn is the worker's clock read just before
				// its script ran, so allow 60 ms for that lag on a busy host.
				for i := 0; i < len(starts); {
					w := starts[i]
					k := i
					for k < len(starts) && starts[k] < w+dur-60 {
						k++
					}
					if k-i > max {
						t.Errorf("%d jobs started in the window at %d (+%d ms): %v", k-i, w, dur, starts)
					}
					i = k
				}
				span := starts[len(starts)-1] - starts[0]
				if minSpan := int64((n/max - 1) * dur); span < minSpan-60 {
					t.Errorf("%d jobs started over %d ms, want at least %d", n, span, minSpan)
				}
				t.Logf("%d jobs over %d ms", n, span)
				e.checkBoth(t, nw, gw, n)
			})
		}
	}
}

// checkBoth reports how the two workers shared n jobs; each job must have
// started once.
func (e *env) checkBoth(t *testing.T, nw, gw *proc, n int) map[string]int {
	t.Helper()
	isStart := func(l line) bool { return l.Ev == "start" }
	testenv.Eventually(t, 10*time.Second, "every start line read", func() error {
		if got := nw.count(isStart) + gw.count(isStart); got < n {
			return fmt.Errorf("%d start lines, want %d", got, n)
		}
		return nil
	})
	seen := map[string]int{}
	by := map[string]int{}
	for who, p := range map[string]*proc{"node": nw, "go": gw} {
		for _, l := range p.snapshot() {
			if l.Ev == "start" {
				seen[l.ID]++
				by[who]++
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct jobs started, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("job %s started %d times", id, c)
		}
	}
	t.Logf("jobs by worker: %v", by)
	return by
}

// TestGoWorkerOrderAndRetention: jobs added by the official Queue (standard,
// custom id, bulk, lifo, prioritized, delayed, retention options) are taken
// by our Worker in the order an official worker takes them, and each job's
// own removeOnComplete is applied.
func TestGoWorkerOrderAndRetention(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("goorder")
			specs := addSpecs()
			ids := e.addFromNode(name, v, specs)
			w := startGoWorker(t, e.cfg(name, v, nil))
			var order []string
			starts := map[string]line{}
			for _, l := range w.waitN(20*time.Second, "job starts", len(specs), isEv("start", "")) {
				var s struct {
					Name string `json:"name"`
				}
				l.decode(t, &s)
				starts[s.Name] = l
				if !strings.HasPrefix(s.Name, "delayed") {
					order = append(order, s.Name)
				}
			}
			if strings.Join(order, ",") != strings.Join(processOrder, ",") {
				t.Errorf("processing order\n got %v\nwant %v", order, processOrder)
			}
			w.waitN(10*time.Second, "completions", len(specs), isEv("completed", ""))
			ctx := ctxT(t)
			for _, s := range specs {
				ex, err := e.rdb.Exists(ctx, e.key(name, ids[s.name])).Result()
				if err != nil {
					t.Fatal(err)
				}
				removed := s.name == "r1" || s.name == "r3"
				if removed != (ex == 0) {
					t.Errorf("job %s: hash exists=%d after completion, want removed=%v", s.name, ex, removed)
				}
			}
			due, _ := e.rdb.HGet(ctx, e.key(name, ids["delayed"]), "timestamp").Int64()
			if starts["delayed"].T < due+300 {
				t.Errorf("delayed job started at %d, due at %d", starts["delayed"].T, due+300)
			}
		})
	}
}

// TestGoWorkerGracefulClose: on SIGTERM our worker finishes the job in
// flight before it exits; a job that outlives the Close deadline is left
// active, unfinished and uncounted, and an official worker recovers it.
func TestGoWorkerGracefulClose(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("close")
			q := newQueue(t, e, name)
			ctx := ctxT(t)
			// Short stalled intervals everywhere: the fleet-wide
			// stalled-check key lives for the interval of whichever worker
			// set it, and a 30 s default would block the rescuer's check.
			slow, err := q.Add(ctx, "slow", map[string]any{"behave": map[string]any{"sleepMs": 600}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			w := startGoWorker(t, e.cfg(name, v, map[string]any{"stalledInterval": 500}))
			w.waitEv(10*time.Second, "start", slow.ID)
			w.term(5 * time.Second)
			if w.count(isEv("completed", slow.ID)) != 1 || w.count(isEv("closed", "")) != 1 {
				t.Fatalf("worker exited without finishing its job: %v", w.snapshot())
			}
			if st, _ := q.GetJobState(ctx, slow.ID); st != bullmq.StateCompleted {
				t.Errorf("job in flight at SIGTERM is %s, want completed", st)
			}

			stuck, err := q.Add(ctx, "stuck", map[string]any{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			w2 := startGoWorker(t, e.cfg(name, v, map[string]any{"lockDuration": 1000, "stalledInterval": 500, "closeTimeoutMs": 200, "behave": map[string]any{"hang": true}}))
			w2.waitEv(10*time.Second, "start", stuck.ID)
			w2.term(5 * time.Second)
			if n := w2.count(isEv("failed", stuck.ID)) + w2.count(isEv("completed", stuck.ID)); n != 0 {
				t.Errorf("the job cut short by Close was finished by the closing worker")
			}
			h, _ := e.rdb.HGetAll(ctx, e.key(name, stuck.ID)).Result()
			if h["atm"] != "" && h["atm"] != "0" {
				t.Errorf("the cut-short attempt was counted: atm=%s", h["atm"])
			}
			nw := e.startNode(t, "worker.js", e.cfg(name, v, map[string]any{"stalledInterval": 500}))
			defer func() {
				if t.Failed() {
					st, _ := q.GetJobState(ctx, stuck.ID)
					h, _ := e.rdb.HGetAll(ctx, e.key(name, stuck.ID)).Result()
					lock, _ := e.rdb.PTTL(ctx, e.key(name, stuck.ID)+":lock").Result()
					active, _ := e.rdb.LRange(ctx, e.key(name, "active"), 0, -1).Result()
					stalled, _ := e.rdb.SMembers(ctx, e.key(name, "stalled")).Result()
					t.Logf("stuck job: state %s, hash %v, lock pttl %v, active %v, stalled %v, worker lines %d", st, h, lock, active, stalled, len(w2.snapshot()))
					for _, l := range w2.snapshot() {
						t.Logf("goworker: %s", l.Raw)
					}
				}
			}()
			nw.waitEv(15*time.Second, "completed", stuck.ID)
			h, _ = e.rdb.HGetAll(ctx, e.key(name, stuck.ID)).Result()
			if h["atm"] != "1" || h["stc"] != "1" {
				t.Errorf("recovered job: atm=%s stc=%s, want 1 and 1", h["atm"], h["stc"])
			}
		})
	}
}
