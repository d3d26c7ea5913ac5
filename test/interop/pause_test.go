package interop

import (
	"fmt"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestPauseResumeWithNodeFleet runs official workers of both versions on one
// queue. Pause and resume, from Go or from Node (each version), stop and
// restart them, and every job added before, during and after the pause runs
// exactly once.
func TestPauseResumeWithNodeFleet(t *testing.T) {
	type step struct{ pauseBy, resumeBy string } // "go", "node5", "node6"
	cases := []step{
		{"go", "go"},
		{"go", "node5"},
		{"go", "node6"},
		{"node5", "go"},
		{"node6", "go"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("pause-%s-resume-%s", c.pauseBy, c.resumeBy), func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("pause")
			q := newQueue(t, e, name)
			ctx := ctxT(t)
			// A v5 resume RENAMEs `paused` over `wait`: a v6 worker that
			// promoted a delayed job into `wait` during the pause loses it
			// there, Go or no Go (Node's own mixed-fleet hazard). So a queue
			// resumed by v5 Node runs v5 workers only.
			fleet := versions
			if c.resumeBy == "node5" {
				fleet = []string{"5"}
			}
			var workers []*proc
			for _, v := range fleet {
				w := e.startNode(t, "worker.js", e.cfg(name, v, map[string]any{"concurrency": 2}))
				w.waitEv(10*time.Second, "ready", "")
				workers = append(workers, w)
			}
			started := map[string]int{}
			collect := func(p *proc) {
				for _, l := range p.snapshot() {
					if l.Ev == "start" {
						started[l.ID]++
					}
				}
			}
			var ids []string
			add := func(n int, o *bullmq.JobOptions) {
				for i := 0; i < n; i++ {
					j, err := q.Add(ctx, "job", map[string]any{"i": len(ids)}, o)
					if err != nil {
						t.Fatalf("Add: %v", err)
					}
					ids = append(ids, j.ID)
				}
			}
			completedCount := func(want int64) {
				t.Helper()
				testenv.Eventually(t, 15*time.Second, fmt.Sprintf("%d jobs completed", want), func() error {
					n, err := e.rdb.ZCard(ctx, e.key(name, "completed")).Result()
					if err != nil || n != want {
						return fmt.Errorf("completed %d (%v)", n, err)
					}
					return nil
				})
			}
			act := func(who, what string) {
				t.Helper()
				switch who {
				case "go":
					var err error
					if what == "pause" {
						err = q.Pause(ctx)
					} else {
						err = q.Resume(ctx)
					}
					if err != nil {
						t.Fatalf("Go %s: %v", what, err)
					}
				case "node5":
					e.ops(name, "5", op(what))
				case "node6":
					e.ops(name, "6", op(what))
				}
			}

			add(6, nil)
			completedCount(6)
			act(c.pauseBy, "pause")
			if p, err := q.IsPaused(ctx); err != nil || !p {
				t.Fatalf("IsPaused after pause: %v, %v", p, err)
			}
			for _, v := range versions {
				var np bool
				mustUnmarshal(t, e.ops(name, v, op("isPaused"))[0], &np)
				if !np {
					t.Errorf("Node v%s isPaused = false after %s pause", v, c.pauseBy)
				}
			}
			add(8, nil)
			add(2, &bullmq.JobOptions{Priority: 2})
			add(1, &bullmq.JobOptions{Delay: 100 * time.Millisecond})
			add(1, &bullmq.JobOptions{LIFO: true})
			before := 0
			for _, w := range workers {
				before += w.count(isEv("start", ""))
			}
			time.Sleep(1200 * time.Millisecond) // nothing may start: a negative check needs a window
			after := 0
			for _, w := range workers {
				after += w.count(isEv("start", ""))
			}
			if after != before {
				t.Errorf("%d jobs started while the queue was paused", after-before)
			}
			if n, _ := e.rdb.ZCard(ctx, e.key(name, "completed")).Result(); n != 6 {
				t.Errorf("%d jobs completed while paused, want 6", n)
			}
			act(c.resumeBy, "resume")
			if p, err := q.IsPaused(ctx); err != nil || p {
				t.Fatalf("IsPaused after resume: %v, %v", p, err)
			}
			defer func() {
				if t.Failed() {
					for _, id := range ids {
						h, _ := e.rdb.HGetAll(ctx, e.key(name, id)).Result()
						st, _ := q.GetJobState(ctx, id)
						t.Logf("job %s: %s opts=%s delay=%s", id, st, h["opts"], h["delay"])
					}
				}
			}()
			completedCount(int64(len(ids)))
			for _, w := range workers {
				collect(w)
			}
			for _, id := range ids {
				if started[id] != 1 {
					t.Errorf("job %s started %d times", id, started[id])
				}
			}
			cnt, err := q.GetJobCounts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for st, n := range cnt {
				if st != bullmq.StateCompleted && n != 0 {
					t.Errorf("after resume: %d jobs %s", n, st)
				}
			}
		})
	}
}
