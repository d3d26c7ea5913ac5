package interop

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq"
)

// goEvents runs our QueueEvents from the start of the stream and collects
// every event it delivers.
type goEvents struct {
	t    *testing.T
	mu   sync.Mutex
	evs  []bullmq.Event
	ch   chan bullmq.Event
	done chan error
}

func startGoEvents(t *testing.T, e *env, queue string) *goEvents {
	t.Helper()
	qe, err := bullmq.NewQueueEvents(e.rdb, queue, &bullmq.QueueEventsOptions{Prefix: e.prefix, LastID: "0", BlockTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatalf("NewQueueEvents: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &goEvents{t: t, ch: make(chan bullmq.Event, 10000), done: make(chan error, 1)}
	go func() {
		g.done <- qe.Run(ctx, func(_ context.Context, ev bullmq.Event) error {
			g.mu.Lock()
			g.evs = append(g.evs, ev)
			g.mu.Unlock()
			g.ch <- ev
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-g.done:
			if err != nil {
				t.Errorf("QueueEvents.Run returned %v after cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("QueueEvents.Run did not return within 5s of cancel")
		}
	})
	return g
}

// waitFor waits for the first event (seen so far or to come) of type typ
// for job id ("" = any job).
func (g *goEvents) waitFor(timeout time.Duration, typ bullmq.EventType, id string) bullmq.Event {
	g.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		for _, ev := range g.snapshot() {
			if ev.Type == typ && (id == "" || ev.JobID == id) {
				return ev
			}
		}
		select {
		case <-g.ch:
		case <-timer.C:
			g.t.Fatalf("Go QueueEvents: no %s for job %q within %s", typ, id, timeout)
		}
	}
}

func (g *goEvents) snapshot() []bullmq.Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]bullmq.Event(nil), g.evs...)
}

// TestGoEventsSeeNodeEvents: our QueueEvents decodes what an official
// producer and worker write, and agrees with the official QueueEvents on
// every entry of the stream.
func TestGoEventsSeeNodeEvents(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("gevents")
			ge := startGoEvents(t, e, name)
			ne := e.startNode(t, "events.js", e.cfg(name, v, nil))
			ne.waitEv(10*time.Second, "ready", "")
			res := e.ops(name, v,
				op("add", "name", "ok", "data", map[string]any{"behave": map[string]any{"returnValue": map[string]any{"answer": 42, "s": "x"}, "progress": map[string]any{"pct": 70}}}),
				op("add", "name", "bad", "data", map[string]any{"behave": map[string]any{"fail": "kaput: it broke"}},
					"opts", map[string]any{"attempts": 2, "backoff": map[string]any{"type": "fixed", "delay": 150}}),
			)
			var okID, badID string
			mustUnmarshal(t, res[0], &okID)
			mustUnmarshal(t, res[1], &badID)
			w := e.startNode(t, "worker.js", e.cfg(name, v, nil))

			ge.waitFor(10*time.Second, "added", okID)
			act := ge.waitFor(10*time.Second, "active", okID)
			if act.Prev != "waiting" {
				t.Errorf("active event prev %q, want waiting", act.Prev)
			}
			if p := ge.waitFor(10*time.Second, "progress", okID); !jsonEqual(p.Data, []byte(`{"pct":70}`)) {
				t.Errorf("progress event data %s", p.Data)
			}
			c := ge.waitFor(10*time.Second, "completed", okID)
			if !jsonEqual(c.ReturnValue, []byte(`{"answer":42,"s":"x"}`)) {
				t.Errorf("completed return value %s", c.ReturnValue)
			}
			d := ge.waitFor(10*time.Second, "delayed", badID)
			if d.Delay.IsZero() {
				t.Errorf("delayed event without due time: %+v", d)
			}
			f := ge.waitFor(10*time.Second, "failed", badID)
			if f.FailedReason != "kaput: it broke" {
				t.Errorf("failed reason %q", f.FailedReason)
			}
			x := ge.waitFor(5*time.Second, "retries-exhausted", badID)
			if x.AttemptsMade != 2 {
				t.Errorf("retries-exhausted attemptsMade %d, want 2", x.AttemptsMade)
			}
			ge.waitFor(5*time.Second, "drained", "")
			w.waitEv(5*time.Second, "failed", badID)

			// Entry by entry, the Go reader and the Node reader agree.
			ne.waitEv(10*time.Second, "drained", "")
			nodeEvs := ne.snapshot()
			goEvs := ge.snapshot()
			byID := map[string]bullmq.Event{}
			for _, ev := range goEvs {
				byID[ev.ID] = ev
			}
			n := 0
			for _, l := range nodeEvs {
				if l.Ev == "ready" || l.Ev == "error" {
					continue
				}
				n++
				g, ok := byID[l.ID]
				if !ok {
					t.Errorf("Go reader missed %s", l.Raw)
					continue
				}
				if string(g.Type) != l.Ev || g.JobID != l.jobID() {
					t.Errorf("entry %s: Go %s/%s, Node %s", l.ID, g.Type, g.JobID, l.Raw)
				}
				switch l.Ev {
				case "delayed":
					var due int64
					l.arg(t, "delay", &due)
					if g.Delay.UnixMilli() != due {
						t.Errorf("delayed %s: Go due %d, Node %d", l.ID, g.Delay.UnixMilli(), due)
					}
				case "progress":
					var d json.RawMessage
					l.arg(t, "data", &d)
					if !jsonEqual(g.Data, d) {
						t.Errorf("progress %s: Go %s, Node %s", l.ID, g.Data, d)
					}
				case "completed":
					var rv json.RawMessage
					l.arg(t, "returnvalue", &rv)
					if !jsonEqual(g.ReturnValue, rv) {
						t.Errorf("completed %s: Go %s, Node %s", l.ID, g.ReturnValue, rv)
					}
				}
			}
			if n != len(goEvs) {
				t.Errorf("Node saw %d events, Go %d", n, len(goEvs))
			}
		})
	}
}

// TestNodeEventsSeeGoAdds: the official QueueEvents sees our added,
// waiting, delayed and duplicated events, in order.
func TestNodeEventsSeeGoAdds(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("nevents")
			q := newQueue(t, e, name)
			ctx := ctxT(t)
			ne := e.startNode(t, "events.js", e.cfg(name, v, nil))
			ne.waitEv(10*time.Second, "ready", "")
			a, err := q.Add(ctx, "std", map[string]any{"a": 1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			d, err := q.Add(ctx, "later", nil, &bullmq.JobOptions{Delay: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			p, err := q.Add(ctx, "urgent", nil, &bullmq.JobOptions{Priority: 1})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				if _, err := q.Add(ctx, "dup", nil, &bullmq.JobOptions{JobID: "dup-1"}); err != nil {
					t.Fatal(err)
				}
			}
			want := []string{
				"added " + a.ID + " std", "waiting " + a.ID,
				"added " + d.ID + " later", "delayed " + d.ID,
				"added " + p.ID + " urgent", "waiting " + p.ID,
				"added dup-1 dup", "waiting dup-1", "duplicated dup-1",
			}
			var got []string
			for _, l := range ne.waitN(10*time.Second, "events", len(want), func(l line) bool { return l.Ev != "ready" }) {
				s := l.Ev + " " + l.jobID()
				switch l.Ev {
				case "added":
					var n string
					l.arg(t, "name", &n)
					s += " " + n
				case "delayed":
					var due int64
					l.arg(t, "delay", &due)
					if want := d.Timestamp.Add(time.Hour).UnixMilli(); due != want {
						t.Errorf("delayed due %d, want %d", due, want)
					}
				}
				got = append(got, s)
			}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("Node QueueEvents saw\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}
