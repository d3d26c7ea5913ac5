package interop

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// nodeJob is the job view printed by test/node/lib.js jobView.
type nodeJob struct {
	ID              string          `json:"id"`
	Name            string          `json:"name"`
	Data            json.RawMessage `json:"data"`
	Opts            json.RawMessage `json:"opts"`
	Progress        json.RawMessage `json:"progress"`
	Delay           int64           `json:"delay"`
	Priority        int             `json:"priority"`
	Timestamp       int64           `json:"timestamp"`
	AttemptsMade    int             `json:"attemptsMade"`
	AttemptsStarted int             `json:"attemptsStarted"`
	StalledCounter  int             `json:"stalledCounter"`
	FailedReason    string          `json:"failedReason"`
	Stacktrace      []string        `json:"stacktrace"`
	ReturnValue     json.RawMessage `json:"returnvalue"`
	FinishedOn      int64           `json:"finishedOn"`
	ProcessedOn     int64           `json:"processedOn"`
	ProcessedBy     string          `json:"processedBy"`
	ParentKey       string          `json:"parentKey"`
	RepeatJobKey    string          `json:"repeatJobKey"`
	DeferredFailure string          `json:"deferredFailure"`
}

// nodeView reads states, jobs and counts with the official Queue.
func (e *env) nodeView(queue, version string, ids []string) (map[string]string, map[string]*nodeJob, map[string]int64) {
	e.t.Helper()
	var ops []map[string]any
	for _, id := range ids {
		ops = append(ops, op("getState", "id", id), op("getJob", "id", id))
	}
	ops = append(ops, op("getJobCounts"))
	res := e.ops(queue, version, ops...)
	states := map[string]string{}
	jobs := map[string]*nodeJob{}
	for i, id := range ids {
		var s string
		mustUnmarshal(e.t, res[2*i], &s)
		states[id] = s
		var j *nodeJob
		mustUnmarshal(e.t, res[2*i+1], &j)
		jobs[id] = j
	}
	var counts map[string]int64
	mustUnmarshal(e.t, res[len(res)-1], &counts)
	return states, jobs, counts
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// compareViews checks that our getters and the official ones agree on every
// job of ids and on the counts.
func (e *env) compareViews(t *testing.T, q *bullmq.Queue, queue, version string, ids []string) (map[string]string, map[string]*nodeJob) {
	t.Helper()
	ctx := ctxT(t)
	states, njobs, ncounts := e.nodeView(queue, version, ids)
	for _, id := range ids {
		st, err := q.GetJobState(ctx, id)
		if err != nil {
			t.Errorf("GetJobState %s: %v", id, err)
		} else if string(st) != states[id] {
			t.Errorf("job %s: Go state %q, Node state %q", id, st, states[id])
		}
		n := njobs[id]
		g, err := q.GetJob(ctx, id)
		if n == nil {
			if !errors.Is(err, bullmq.ErrJobNotFound) {
				t.Errorf("job %s: Node has none, Go GetJob returned %v, %v", id, g, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("GetJob %s: %v", id, err)
			continue
		}
		diff := func(field string, got, want any) {
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("job %s (%s): %s: Go %v, Node %v", id, n.Name, field, got, want)
			}
		}
		diff("id", g.ID, n.ID)
		diff("name", g.Name, n.Name)
		diff("timestamp", ms(g.Timestamp), n.Timestamp)
		diff("delay", g.Delay.Milliseconds(), n.Delay)
		diff("priority", g.Priority, n.Priority)
		diff("attemptsMade", g.AttemptsMade, n.AttemptsMade)
		diff("attemptsStarted", g.AttemptsStarted, n.AttemptsStarted)
		diff("stalledCounter", g.StalledCount, n.StalledCounter)
		diff("failedReason", g.FailedReason, n.FailedReason)
		diff("processedOn", ms(g.ProcessedOn), n.ProcessedOn)
		diff("finishedOn", ms(g.FinishedOn), n.FinishedOn)
		diff("processedBy", g.ProcessedBy, n.ProcessedBy)
		diff("parentKey", g.ParentKey, n.ParentKey)
		diff("repeatJobKey", g.RepeatJobKey, n.RepeatJobKey)
		diff("deferredFailure", g.DeferredFailure, n.DeferredFailure)
		diff("stacktrace", fmt.Sprintf("%q", nonNil(g.Stacktrace)), fmt.Sprintf("%q", nonNil(n.Stacktrace)))
		if !jsonEqual(g.Data, n.Data) {
			t.Errorf("job %s: data: Go %s, Node %s", id, g.Data, n.Data)
		}
		if gp := orJSON(g.Progress, "0"); !jsonEqual(gp, n.Progress) {
			t.Errorf("job %s: progress: Go %s, Node %s", id, gp, n.Progress)
		}
		if gr, nr := orJSON(g.ReturnValue, "null"), orJSON(n.ReturnValue, "null"); !jsonEqual(gr, nr) {
			t.Errorf("job %s: returnvalue: Go %s, Node %s", id, gr, nr)
		}
		// Options: our encoding of what we decoded must equal Node's decoded
		// opts for the keys both name the same way.
		gopts, err := json.Marshal(g.Opts)
		if err != nil {
			t.Errorf("job %s: marshal opts: %v", id, err)
			continue
		}
		var gm, nm map[string]json.RawMessage
		mustUnmarshal(t, gopts, &gm)
		mustUnmarshal(t, n.Opts, &nm)
		for k, nv := range nm {
			if k == "keepLogs" || k == "deduplication" || k == "telemetry" || k == "parent" {
				continue // renamed short keys (kl, de, tm) in Go's wire form
			}
			if !jsonEqual(gm[k], nv) {
				t.Errorf("job %s: opts.%s: Go %s, Node %s", id, k, gm[k], nv)
			}
		}
	}
	gcounts, err := q.GetJobCounts(ctx)
	if err != nil {
		t.Fatalf("GetJobCounts: %v", err)
	}
	for st, n := range ncounts {
		if gcounts[bullmq.JobState(st)] != n {
			t.Errorf("count %s: Go %d, Node %d (Go %v, Node %v)", st, gcounts[bullmq.JobState(st)], n, gcounts, ncounts)
		}
	}
	total, err := q.Count(ctx)
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	nc := e.ops(queue, version, op("count"))
	var ntotal int64
	mustUnmarshal(t, nc[0], &ntotal)
	if total != ntotal {
		t.Errorf("Count: Go %d, Node %d", total, ntotal)
	}
	return states, njobs
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orJSON(b json.RawMessage, def string) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage(def)
	}
	return b
}

func wantStates(t *testing.T, states map[string]string, ids map[string]string, want map[string]string) {
	t.Helper()
	for name, st := range want {
		if states[ids[name]] != st {
			t.Errorf("job %s (%s): state %q, want %q", name, ids[name], states[ids[name]], st)
		}
	}
}

// TestNodeReadsGoJobs makes jobs from Go in every state (a Go worker
// finishes some and holds one) and reads them with the official getters.
func TestNodeReadsGoJobs(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("goread")
			q := newQueue(t, e, name)
			ctx := ctxT(t)
			ids := map[string]string{}
			add := func(n string, data map[string]any, o *bullmq.JobOptions) {
				j, err := q.Add(ctx, n, data, o)
				if err != nil {
					t.Fatalf("Add %s: %v", n, err)
				}
				ids[n] = j.ID
			}
			add("completed", map[string]any{"behave": map[string]any{"returnValue": map[string]any{"answer": 42}}}, &bullmq.JobOptions{Attempts: 2})
			add("failed", map[string]any{"behave": map[string]any{"fail": "boom"}}, &bullmq.JobOptions{RemoveOnFail: bullmq.KeepLast(10)})
			add("active", map[string]any{"behave": map[string]any{"hang": true}}, &bullmq.JobOptions{JobID: "active-one"})
			w := startGoWorker(t, e.cfg(name, v, map[string]any{"name": "go-reader"}))
			w.waitEv(10*time.Second, "start", ids["active"])
			add("waiting", map[string]any{"x": []int{1, 2}}, &bullmq.JobOptions{Attempts: 3, Backoff: &bullmq.Backoff{Type: "exponential", Delay: time.Second}})
			add("delayed", nil, &bullmq.JobOptions{Delay: time.Hour})
			add("prioritized", map[string]any{"p": 1}, &bullmq.JobOptions{Priority: 7, RemoveOnComplete: bullmq.KeepFor(time.Hour, 5)})
			testenv.Eventually(t, 10*time.Second, "completed and failed jobs finished", func() error {
				c, err := q.GetJobCounts(ctx, bullmq.StateCompleted, bullmq.StateFailed)
				if err != nil {
					return err
				}
				if c[bullmq.StateCompleted] != 1 || c[bullmq.StateFailed] != 1 {
					return fmt.Errorf("counts %v", c)
				}
				return nil
			})
			var all []string
			for _, id := range ids {
				all = append(all, id)
			}
			states, njobs := e.compareViews(t, q, name, v, all)
			wantStates(t, states, ids, map[string]string{"completed": "completed", "failed": "failed", "active": "active",
				"waiting": "waiting", "delayed": "delayed", "prioritized": "prioritized"})
			if c := njobs[ids["completed"]]; c == nil || !jsonEqual(c.ReturnValue, []byte(`{"answer":42}`)) || c.AttemptsMade != 1 || c.FinishedOn == 0 || c.ProcessedBy != "go-reader" {
				t.Errorf("Node view of the completed job: %+v", c)
			}
			if f := njobs[ids["failed"]]; f == nil || f.FailedReason != "boom" || f.AttemptsMade != 1 {
				t.Errorf("Node view of the failed job: %+v", f)
			}
			if d := njobs[ids["delayed"]]; d == nil || d.Delay != 3600000 || string(d.Data) != "{}" && string(d.Data) != "null" {
				t.Errorf("Node view of the delayed job: %+v", d)
			}
		})
	}
}

// TestGoReadsNodeJobs makes jobs with the official Queue and Worker in every
// state (including waiting-children through a flow, and paused) and reads
// them with our getters.
func TestGoReadsNodeJobs(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("noderead")
			q := newQueue(t, e, name)
			res := e.ops(name, v,
				op("add", "name", "completed", "data", map[string]any{"behave": map[string]any{"returnValue": []any{"r", 1}}}, "opts", map[string]any{"attempts": 2, "backoff": 1000}),
				op("add", "name", "failed", "data", map[string]any{"behave": map[string]any{"fail": "kaput"}}, "opts", map[string]any{"removeOnFail": map[string]any{"age": 60}}),
				op("add", "name", "active", "data", map[string]any{"behave": map[string]any{"hang": true}}, "opts", map[string]any{"jobId": "node-active", "removeOnComplete": true}),
			)
			ids := map[string]string{}
			for i, n := range []string{"completed", "failed", "active"} {
				var id string
				mustUnmarshal(t, res[i], &id)
				ids[n] = id
			}
			w := e.startNode(t, "worker.js", e.cfg(name, v, map[string]any{"name": "node-reader"}))
			w.waitEv(10*time.Second, "start", ids["active"])
			res = e.ops(name, v,
				op("updateProgress", "id", ids["active"], "progress", map[string]any{"pct": 50}),
				op("add", "name", "waiting", "data", map[string]any{"w": true}, "opts", map[string]any{"attempts": 3, "backoff": map[string]any{"type": "exponential", "delay": 1000, "jitter": 0.25}, "keepLogs": 5}),
				op("add", "name", "delayed", "data", nil, "opts", map[string]any{"delay": 3600000}),
				op("add", "name", "prioritized", "data", map[string]any{}, "opts", map[string]any{"priority": 9, "lifo": true, "removeOnComplete": 3}),
				op("flow", "name", "parent", "data", map[string]any{"p": 1}, "children", []any{
					map[string]any{"name": "child", "data": map[string]any{"behave": map[string]any{"hang": true}}, "opts": map[string]any{"delay": 3600000}},
				}),
			)
			for i, n := range []string{"waiting", "delayed", "prioritized"} {
				var id string
				mustUnmarshal(t, res[i+1], &id)
				ids[n] = id
			}
			var flow struct {
				ID       string   `json:"id"`
				Children []string `json:"children"`
			}
			mustUnmarshal(t, res[4], &flow)
			ids["parent"], ids["child"] = flow.ID, flow.Children[0]
			ids["missing"] = "no-such-job"
			testenv.Eventually(t, 10*time.Second, "completed and failed jobs finished", func() error {
				c, err := q.GetJobCounts(ctxT(t), bullmq.StateCompleted, bullmq.StateFailed)
				if err != nil {
					return err
				}
				if c[bullmq.StateCompleted] != 1 || c[bullmq.StateFailed] != 1 {
					return fmt.Errorf("counts %v", c)
				}
				return nil
			})
			var all []string
			for _, id := range ids {
				all = append(all, id)
			}
			states, _ := e.compareViews(t, q, name, v, all)
			wantStates(t, states, ids, map[string]string{"completed": "completed", "failed": "failed", "active": "active",
				"waiting": "waiting", "delayed": "delayed", "prioritized": "prioritized", "parent": "waiting-children",
				"child": "delayed", "missing": "unknown"})

			// Paused by Node: v5 moves the wait list to "paused".
			e.ops(name, v, op("pause"))
			paused, err := q.IsPaused(ctxT(t))
			if err != nil || !paused {
				t.Errorf("IsPaused after Node pause: %v, %v", paused, err)
			}
			e.compareViews(t, q, name, v, all)
		})
	}
}
