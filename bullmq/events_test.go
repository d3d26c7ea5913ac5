package bullmq

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		want   Event
	}{
		{"added", map[string]any{"event": "added", "jobId": "1", "name": "n"},
			Event{Type: EventAdded, JobID: "1", Name: "n"}},
		{"waiting", map[string]any{"event": "waiting", "jobId": "1", "prev": "delayed"},
			Event{Type: EventWaiting, JobID: "1", Prev: "delayed"}},
		{"completed", map[string]any{"event": "completed", "jobId": "1", "returnvalue": `{"x":1}`, "prev": "active"},
			Event{Type: EventCompleted, JobID: "1", Prev: "active", ReturnValue: []byte(`{"x":1}`)}},
		{"completed not json", map[string]any{"event": "completed", "jobId": "1", "returnvalue": `oops`},
			Event{Type: EventCompleted, JobID: "1", ReturnValue: []byte(`"oops"`)}},
		{"failed", map[string]any{"event": "failed", "jobId": "1", "failedReason": "boom", "prev": "active"},
			Event{Type: EventFailed, JobID: "1", Prev: "active", FailedReason: "boom"}},
		{"retries-exhausted", map[string]any{"event": "retries-exhausted", "jobId": "1", "attemptsMade": "3"},
			Event{Type: EventRetriesExhausted, JobID: "1", AttemptsMade: 3}},
		{"delayed", map[string]any{"event": "delayed", "jobId": "1", "delay": "1732700005000"},
			Event{Type: EventDelayed, JobID: "1", Delay: time.UnixMilli(1732700005000)}},
		{"progress", map[string]any{"event": "progress", "jobId": "1", "data": `{"pct":50}`},
			Event{Type: EventProgress, JobID: "1", Data: []byte(`{"pct":50}`)}},
		{"cleaned", map[string]any{"event": "cleaned", "count": "12"}, Event{Type: EventCleaned, Count: 12}},
		{"drained", map[string]any{"event": "drained"}, Event{Type: EventDrained}},
		{"deduplicated", map[string]any{"event": "deduplicated", "jobId": "1", "deduplicationId": "d", "deduplicatedJobId": "9"},
			Event{Type: EventDeduplicated, JobID: "1", DeduplicationID: "d", DeduplicatedJobID: "9"}},
		{"active", map[string]any{"event": "active", "jobId": "1", "prev": "waiting"},
			Event{Type: EventActive, JobID: "1", Prev: "waiting"}},
		{"stalled", map[string]any{"event": "stalled", "jobId": "1"}, Event{Type: EventStalled, JobID: "1"}},
		{"removed", map[string]any{"event": "removed", "jobId": "1", "prev": "delayed"},
			Event{Type: EventRemoved, JobID: "1", Prev: "delayed"}},
		{"paused", map[string]any{"event": "paused"}, Event{Type: EventPaused}},
		{"resumed", map[string]any{"event": "resumed"}, Event{Type: EventResumed}},
		{"duplicated", map[string]any{"event": "duplicated", "jobId": "t-1"}, Event{Type: EventDuplicated, JobID: "t-1"}},
		{"debounced", map[string]any{"event": "debounced", "jobId": "1", "debounceId": "d"},
			Event{Type: EventDebounced, JobID: "1", DeduplicationID: "d"}},
		{"waiting-children", map[string]any{"event": "waiting-children", "jobId": "p"},
			Event{Type: EventWaitingChildren, JobID: "p"}},
		{"custom", map[string]any{"event": "my-event", "foo": "bar"}, Event{Type: "my-event"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeEvent(redis.XMessage{ID: "1732700000000-3", Values: tt.values})
			want := tt.want
			want.ID = "1732700000000-3"
			want.Time = time.UnixMilli(1732700000000)
			want.Fields = map[string]string{}
			for k, v := range tt.values {
				want.Fields[k] = v.(string)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// collector gathers events handed to Run.
type collector struct {
	mu  sync.Mutex
	evs []Event
	ch  chan struct{}
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1000)} }

func (c *collector) handle(_ context.Context, ev Event) error {
	c.mu.Lock()
	c.evs = append(c.evs, ev)
	c.mu.Unlock()
	c.ch <- struct{}{}
	return nil
}

// waitFor waits until n events arrived, or fails after a deadline.
func (c *collector) waitFor(t *testing.T, n int) []Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.evs) >= n {
			out := append([]Event(nil), c.evs...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %d events, have %d", n, len(c.evs))
		}
	}
}

// startEvents runs qe.Run in the background; the returned stop cancels it
// and waits for Run to return nil.
func startEvents(t *testing.T, qe *QueueEvents, fn func(context.Context, Event) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- qe.Run(ctx, fn) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not stop within 5s of cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestQueueEventsReadsFromDollarAndResumes(t *testing.T) {
	ctx := context.Background()
	q, c := newTestQueue(t, time.Now())
	// An event before Run starts is not delivered with "$".
	if _, err := q.Add(ctx, "before", nil, nil); err != nil {
		t.Fatal(err)
	}

	qe, err := NewQueueEvents(c, q.Name(), &QueueEventsOptions{BlockTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	stop := startEvents(t, qe, col.handle)
	// Wait until Run has pinned "$" to a real id, so the next add is seen.
	bullmqtest.WaitFor(t, 5*time.Second, `LastID past "$"`, func() bool { return qe.LastID() != "$" })
	j, _ := q.Add(ctx, "after", nil, &JobOptions{Delay: time.Minute})
	evs := col.waitFor(t, 2)
	if evs[0].Type != EventAdded || evs[0].JobID != j.ID || evs[0].Name != "after" || evs[1].Type != EventDelayed ||
		evs[1].Delay.UnixMilli() != j.Timestamp.UnixMilli()+60000 {
		t.Fatalf("events = %+v", evs)
	}
	// Stop must interrupt the 30s blocking read promptly.
	start := time.Now()
	stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stop took %s", d)
	}
	last := qe.LastID()
	if last != evs[1].ID {
		t.Fatalf("LastID = %q, want %q", last, evs[1].ID)
	}

	// Resume from the saved id: events added while stopped are delivered.
	if _, err := q.Add(ctx, "offline", nil, nil); err != nil {
		t.Fatal(err)
	}
	qe2, _ := NewQueueEvents(c, q.Name(), &QueueEventsOptions{LastID: last})
	col2 := newCollector()
	startEvents(t, qe2, col2.handle)
	evs2 := col2.waitFor(t, 2)
	if evs2[0].Type != EventAdded || evs2[0].Name != "offline" || evs2[1].Type != EventWaiting {
		t.Fatalf("resumed events = %+v", evs2)
	}
}

func TestQueueEventsHandlerRetry(t *testing.T) {
	ctx := context.Background()
	q, c := newTestQueue(t, time.Now())
	if _, err := q.Add(ctx, "a", nil, nil); err != nil {
		t.Fatal(err)
	}
	qe, _ := NewQueueEvents(c, q.Name(), &QueueEventsOptions{LastID: "0", RetryDelay: time.Millisecond})
	var mu sync.Mutex
	var seen []string
	fails := 2
	col := newCollector()
	startEvents(t, qe, func(ctx context.Context, ev Event) error {
		mu.Lock()
		seen = append(seen, string(ev.Type))
		if ev.Type == EventAdded && fails > 0 {
			fails--
			mu.Unlock()
			return errors.New("db down")
		}
		mu.Unlock()
		return col.handle(ctx, ev)
	})
	col.waitFor(t, 2)
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(seen, []string{"added", "added", "added", "waiting"}) {
		t.Fatalf("handler calls = %v", seen)
	}
}

func TestQueueEventsToleratesTrimAndReconnect(t *testing.T) {
	ctx := context.Background()
	q, c := newTestQueue(t, time.Now())
	for i := 0; i < 10; i++ {
		if _, err := q.Add(ctx, "a", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	first := c.XRangeN(ctx, q.keys.events, "-", "+", 1).Val()[0].ID
	// Trim the stream past the saved id: reading resumes at the oldest entry left.
	c.XTrimMaxLen(ctx, q.keys.events, 4)
	qe, _ := NewQueueEvents(c, q.Name(), &QueueEventsOptions{LastID: first, RetryDelay: 10 * time.Millisecond})
	col := newCollector()
	startEvents(t, qe, col.handle)
	evs := col.waitFor(t, 4)
	if len(evs) != 4 {
		t.Fatalf("got %d events", len(evs))
	}
	// Kill the reader's own connection (found by the name Node would give
	// it): Run reconnects and goes on.
	killClientByName(t, c, q.keys.connName(":qe"))
	if _, err := q.Add(ctx, "after-kill", nil, nil); err != nil {
		t.Fatal(err)
	}
	evs = col.waitFor(t, 6)
	if evs[4].Name != "after-kill" {
		t.Fatalf("after reconnect: %+v", evs[4])
	}
}

// killClientByName kills the connections named name (only those: the
// Redis is shared with other tests).
func killClientByName(t *testing.T, c redis.UniversalClient, name string) {
	t.Helper()
	ctx := context.Background()
	list, err := c.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		var id, n string
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(f, "name="); ok {
				n = v
			}
		}
		if n == name && id != "" {
			if err := c.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed == 0 {
		t.Fatalf("no connection named %q", name)
	}
}

func TestQueueEventsDedicatedReader(t *testing.T) {
	// No I/O: only checks which reader each client type gets.
	single := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", PoolSize: 50})
	defer single.Close()
	qe, err := NewQueueEvents(single, "q", nil)
	if err != nil {
		t.Fatal(err)
	}
	r, closeFn := qe.openReader()
	d, ok := r.(*redis.Client)
	if !ok || d == single || d.Options().PoolSize != 1 || d.Options().ClientName != "bull:cQ==:qe" || d.Options().Addr != "127.0.0.1:1" {
		t.Fatalf("single-node reader = %T %+v", r, r)
	}
	closeFn()

	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cluster.Close()
	qe, _ = NewQueueEvents(cluster, "{q}", &QueueEventsOptions{Prefix: "p"})
	r, closeFn = qe.openReader()
	dc, ok := r.(*redis.ClusterClient)
	if !ok || dc == cluster || dc.Options().PoolSize != 1 || dc.Options().ClientName != "p:e3F9:qe" {
		t.Fatalf("cluster reader = %T", r)
	}
	closeFn()

	if _, err := NewQueueEvents(single, "", nil); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("empty name: %v", err)
	}
	if _, err := NewQueueEvents(single, "q", &QueueEventsOptions{RetryDelay: time.Second, MaxRetryDelay: time.Millisecond}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("MaxRetryDelay below RetryDelay: %v", err)
	}
	if qe, err := NewQueueEvents(single, "q", &QueueEventsOptions{RetryDelay: 8 * time.Second}); err != nil || qe.opts.MaxRetryDelay != 8*time.Second {
		t.Fatalf("RetryDelay above the default cap: %v, MaxRetryDelay %s", err, qe.opts.MaxRetryDelay)
	}
	if err := qe.Run(context.Background(), nil); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("nil handler: %v", err)
	}
}

// TestQueueEventsNoRaceWithLiveClient starts QueueEvents on a client whose
// first connection is being made at the same time: go-redis then updates
// the client's maintenance-notifications config, which the dedicated reader
// must not read (run with -race).
func TestQueueEventsNoRaceWithLiveClient(t *testing.T) {
	ctx := context.Background()
	bullmqtest.RedisAddr(t) // skip or fail without Redis
	o := bullmqtest.RedisOptions(t)
	o.MaintNotificationsConfig = nil // go-redis's default: it updates the config at the first connection
	c := redis.NewClient(o)
	defer c.Close()
	name := bullmqtest.QueueName(t, "qe-race")
	qe, err := NewQueueEvents(c, name, &QueueEventsOptions{LastID: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if m := qe.single.MaintNotificationsConfig; m == nil || m.Mode != maintnotifications.ModeDisabled || m == c.Options().MaintNotificationsConfig {
		t.Fatalf("dedicated reader maintenance config = %+v, want its own, disabled", m)
	}
	col := newCollector()
	pinged := make(chan error, 1)
	go func() { pinged <- c.Ping(ctx).Err() }()
	startEvents(t, qe, col.handle)
	if err := <-pinged; err != nil {
		t.Fatal(err)
	}
	q, _ := NewQueue(c, name, nil)
	if _, err := q.Add(ctx, "a", nil, nil); err != nil {
		t.Fatal(err)
	}
	if evs := col.waitFor(t, 2); evs[0].Type != EventAdded {
		t.Fatalf("events = %+v", evs)
	}
}

// TestQueueEventsSurvivesRestart kills Redis under a blocked reader and
// starts it again: Run reconnects on its own and delivers later events.
func TestQueueEventsSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	q, c, srv := privateQueue(t)
	qe, err := NewQueueEvents(c, q.Name(), &QueueEventsOptions{LastID: "0", RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	startEvents(t, qe, col.handle)
	if _, err := q.Add(ctx, "before", nil, nil); err != nil {
		t.Fatal(err)
	}
	col.waitFor(t, 2)
	srv.Kill()
	srv.Start()
	if _, err := q.Add(ctx, "after", nil, nil); err != nil {
		t.Fatal(err)
	}
	evs := col.waitFor(t, 4)
	if evs[2].Type != EventAdded || evs[2].Name != "after" || evs[3].Type != EventWaiting {
		t.Fatalf("events after restart = %+v", evs[2:])
	}
}
