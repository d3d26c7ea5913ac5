package bullmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

// newTestQueue returns a Queue on a unique queue name with a fixed clock.
func newTestQueue(t *testing.T, now time.Time) (*Queue, redis.UniversalClient) {
	t.Helper()
	c := bullmqtest.RedisClient(t)
	name := bullmqtest.QueueName(t, "q")
	q, err := NewQueue(c, name, &QueueOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return q, c
}

// streamEvents returns the events stream as a list of field maps.
func streamEvents(t *testing.T, c redis.UniversalClient, q *Queue) []map[string]string {
	t.Helper()
	msgs, err := c.XRange(context.Background(), q.keys.events, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]map[string]string, len(msgs))
	for i, m := range msgs {
		f := map[string]string{}
		for k, v := range m.Values {
			f[k] = fmt.Sprint(v)
		}
		out[i] = f
	}
	return out
}

func assertJSONEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("got is not JSON: %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want is not JSON: %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("JSON mismatch:\n got  %s\n want %s", got, want)
	}
}

func TestAddStandardLayout(t *testing.T) {
	ctx := context.Background()
	now := time.UnixMilli(1_732_700_000_123)
	q, c := newTestQueue(t, now)

	j, err := q.Add(ctx, "email", map[string]any{"to": "a<b>@x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != "1" {
		t.Fatalf("id = %q, want 1", j.ID)
	}
	h := c.HGetAll(ctx, q.keys.job("1")).Val()
	want := map[string]string{"name": "email", "data": `{"to":"a<b>@x"}`, "opts": `{"attempts":0}`,
		"timestamp": "1732700000123", "delay": "0", "priority": "0"}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("hash = %v\nwant %v", h, want)
	}
	if got := c.LRange(ctx, q.keys.wait, 0, -1).Val(); !reflect.DeepEqual(got, []string{"1"}) {
		t.Fatalf("wait = %v", got)
	}
	if got := c.ZRangeWithScores(ctx, q.keys.marker, 0, -1).Val(); len(got) != 1 || got[0].Member != "0" || got[0].Score != 0 {
		t.Fatalf("marker = %v", got)
	}
	meta := c.HGetAll(ctx, q.keys.meta).Val()
	if meta["opts.maxLenEvents"] != "10000" || meta["version"] != "bullmq-go:"+Version {
		t.Fatalf("meta = %v", meta)
	}
	ev := streamEvents(t, c, q)
	wantEv := []map[string]string{{"event": "added", "jobId": "1", "name": "email"}, {"event": "waiting", "jobId": "1"}}
	if !reflect.DeepEqual(ev, wantEv) {
		t.Fatalf("events = %v", ev)
	}

	// FIFO: a second job goes to the left (tail); LIFO to the right (head).
	if _, err := q.Add(ctx, "b", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Add(ctx, "c", nil, &JobOptions{LIFO: true}); err != nil {
		t.Fatal(err)
	}
	if got := c.LRange(ctx, q.keys.wait, 0, -1).Val(); !reflect.DeepEqual(got, []string{"2", "1", "3"}) {
		t.Fatalf("wait = %v", got)
	}
	if got := c.HGet(ctx, q.keys.job("2"), "data").Val(); got != "{}" {
		t.Fatalf("nil data stored as %q", got)
	}
	assertJSONEqual(t, c.HGet(ctx, q.keys.job("3"), "opts").Val(), `{"attempts":0,"lifo":true}`)
}

func TestAddOptionsStored(t *testing.T) {
	ctx := context.Background()
	now := time.UnixMilli(1_732_700_000_000)
	q, c := newTestQueue(t, now)

	opts := &JobOptions{
		JobID:            "task-42",
		Attempts:         3,
		Backoff:          &Backoff{Type: "exponential", Delay: 2 * time.Second, Jitter: 0.5},
		RemoveOnComplete: KeepFor(time.Hour, 1000),
		RemoveOnFail:     KeepLast(50),
		Timestamp:        time.UnixMilli(1_700_000_000_000),
		Extra:            map[string]json.RawMessage{"kl": json.RawMessage("10")},
	}
	j, err := q.Add(ctx, "t", json.RawMessage(`{"n":12345678901234567890}`), opts)
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != "task-42" {
		t.Fatalf("id = %q", j.ID)
	}
	h := c.HGetAll(ctx, q.keys.job("task-42")).Val()
	assertJSONEqual(t, h["opts"], `{"attempts":3,"backoff":{"type":"exponential","delay":2000,"jitter":0.5},
		"jobId":"task-42","removeOnComplete":{"age":3600,"count":1000},"removeOnFail":50,"timestamp":1700000000000,"kl":10}`)
	if h["data"] != `{"n":12345678901234567890}` {
		t.Fatalf("data = %q", h["data"])
	}
	if h["timestamp"] != "1700000000000" {
		t.Fatalf("timestamp = %q", h["timestamp"])
	}
	if got := c.Get(ctx, q.keys.id).Val(); got != "1" {
		t.Fatalf("id counter = %q, want 1 (custom ids INCR it too)", got)
	}

	// Duplicate: nothing changes, counter moves, "duplicated" event.
	j2, err := q.Add(ctx, "other", map[string]int{"x": 1}, &JobOptions{JobID: "task-42"})
	if err != nil {
		t.Fatal(err)
	}
	if j2.ID != "task-42" {
		t.Fatalf("dup id = %q", j2.ID)
	}
	if got := c.HGet(ctx, q.keys.job("task-42"), "name").Val(); got != "t" {
		t.Fatalf("duplicate overwrote name: %q", got)
	}
	if got := c.LLen(ctx, q.keys.wait).Val(); got != 1 {
		t.Fatalf("wait len = %d", got)
	}
	if got := c.Get(ctx, q.keys.id).Val(); got != "2" {
		t.Fatalf("id counter = %q, want 2", got)
	}
	ev := streamEvents(t, c, q)
	last := ev[len(ev)-1]
	if !reflect.DeepEqual(last, map[string]string{"event": "duplicated", "jobId": "task-42"}) {
		t.Fatalf("last event = %v", last)
	}
}

func TestAddDelayedLayout(t *testing.T) {
	ctx := context.Background()
	now := time.UnixMilli(1_732_700_000_000)
	q, c := newTestQueue(t, now)

	for i := 0; i < 3; i++ {
		if _, err := q.Add(ctx, "d", nil, &JobOptions{Delay: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	due := now.UnixMilli() + 5000
	z := c.ZRangeWithScores(ctx, q.keys.delayed, 0, -1).Val()
	if len(z) != 3 {
		t.Fatalf("delayed = %v", z)
	}
	for i, m := range z {
		if want := float64(due*4096 + int64(i)); m.Score != want || m.Member != strconv.Itoa(i+1) {
			t.Fatalf("delayed[%d] = %v, want score %.0f", i, m, want)
		}
	}
	h := c.HGetAll(ctx, q.keys.job("1")).Val()
	if h["delay"] != "5000" {
		t.Fatalf("delay field = %q", h["delay"])
	}
	assertJSONEqual(t, h["opts"], `{"attempts":0,"delay":5000}`)
	mk := c.ZRangeWithScores(ctx, q.keys.marker, 0, -1).Val()
	if len(mk) != 1 || mk[0].Member != "1" || mk[0].Score != float64(due) {
		t.Fatalf("marker = %v, want 1@%d", mk, due)
	}
	ev := streamEvents(t, c, q)
	if !reflect.DeepEqual(ev[1], map[string]string{"event": "delayed", "jobId": "1", "delay": strconv.FormatInt(due, 10)}) {
		t.Fatalf("events = %v", ev)
	}
	for _, e := range ev {
		if e["event"] == "waiting" {
			t.Fatalf("delayed add wrote waiting: %v", ev)
		}
	}
}

func TestAddPrioritizedLayout(t *testing.T) {
	ctx := context.Background()
	q, c := newTestQueue(t, time.UnixMilli(1_732_700_000_000))
	for _, p := range []int{5, 1, 5} {
		if _, err := q.Add(ctx, "p", nil, &JobOptions{Priority: p}); err != nil {
			t.Fatal(err)
		}
	}
	z := c.ZRangeWithScores(ctx, q.keys.prioritized, 0, -1).Val()
	want := []redis.Z{{Score: 1<<32 + 2, Member: "2"}, {Score: 5<<32 + 1, Member: "1"}, {Score: 5<<32 + 3, Member: "3"}}
	if !reflect.DeepEqual(z, want) {
		t.Fatalf("prioritized = %v\nwant %v", z, want)
	}
	if got := c.Get(ctx, q.keys.pc).Val(); got != "3" {
		t.Fatalf("pc = %q", got)
	}
	if c.ZScore(ctx, q.keys.marker, "0").Err() != nil {
		t.Fatal("no marker 0")
	}
	if got := c.HGet(ctx, q.keys.job("2"), "priority").Val(); got != "1" {
		t.Fatalf("priority field = %q", got)
	}
	if _, err := q.Add(ctx, "p", nil, &JobOptions{Priority: MaxPriority + 1}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("priority too high: err = %v", err)
	}
}

func TestAddBulk(t *testing.T) {
	ctx := context.Background()
	q, c := newTestQueue(t, time.UnixMilli(1_732_700_000_000))
	n := 1234
	jobs := make([]BulkJob, n)
	for i := range jobs {
		jobs[i] = BulkJob{Name: "b", Data: map[string]int{"i": i}}
	}
	jobs[10].Opts = &JobOptions{JobID: "custom-10"}
	jobs[11].Opts = &JobOptions{Delay: time.Second}
	jobs[12].Opts = &JobOptions{Priority: 3}
	out, err := q.AddBulk(ctx, jobs)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != n || out[0].ID != "1" || out[10].ID != "custom-10" || out[n-1].ID != strconv.Itoa(n) {
		t.Fatalf("ids: %q %q %q", out[0].ID, out[10].ID, out[n-1].ID)
	}
	counts, err := q.GetJobCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[StateWaiting] != int64(n-2) || counts[StateDelayed] != 1 || counts[StatePrioritized] != 1 {
		t.Fatalf("counts = %v", counts)
	}
	// Order: the wait list tail (right) is the first job.
	if got := c.LIndex(ctx, q.keys.wait, -1).Val(); got != "1" {
		t.Fatalf("head of wait = %q", got)
	}
	if _, err := q.AddBulk(ctx, []BulkJob{{Name: "x"}, {Name: "y", Opts: &JobOptions{JobID: "123"}}}); !errors.Is(err, ErrInvalidJobID) {
		t.Fatalf("integer custom id: err = %v", err)
	}
	if got, _ := q.Count(ctx); got != int64(n) {
		t.Fatalf("count = %d (a rejected bulk must add nothing)", got)
	}
}

func TestAddWhilePausedAndMaxed(t *testing.T) {
	ctx := context.Background()
	q, c := newTestQueue(t, time.UnixMilli(1_732_700_000_000))
	if err := q.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Add(ctx, "a", nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := c.LRange(ctx, q.keys.paused, 0, -1).Val(); !reflect.DeepEqual(got, []string{"1"}) {
		t.Fatalf("paused = %v", got)
	}
	if n := c.Exists(ctx, q.keys.marker).Val(); n != 0 {
		t.Fatal("marker written while paused")
	}
	if err := q.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	// Global concurrency reached: job goes to wait, but no marker.
	c.HSet(ctx, q.keys.meta, "concurrency", 1)
	c.Del(ctx, q.keys.marker)
	c.LPush(ctx, q.keys.active, "x")
	if _, err := q.Add(ctx, "b", nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, q.keys.marker).Val(); n != 0 {
		t.Fatal("marker written while maxed")
	}
	if got := c.LRange(ctx, q.keys.wait, 0, -1).Val(); !reflect.DeepEqual(got, []string{"2", "1"}) {
		t.Fatalf("wait = %v", got)
	}
}

// privateQueue returns a Queue and its client on a private redis-server
// (so the test may flush its script cache or restart it), and the server.
func privateQueue(t *testing.T) (*Queue, *redis.Client, *bullmqtest.RedisServer) {
	t.Helper()
	srv := bullmqtest.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	q, err := NewQueue(c, "restart", nil)
	if err != nil {
		t.Fatal(err)
	}
	return q, c, srv
}

// assertScriptCacheEmpty fails unless none of q's scripts is cached on the
// server, so the next call must go through the NOSCRIPT fallback.
func assertScriptCacheEmpty(t *testing.T, c redis.UniversalClient, q *Queue) {
	t.Helper()
	sc := q.scripts()
	shas := []string{sc.add.sha, sc.remove.sha, sc.clean.sha, sc.pause.sha, sc.resume.sha, sc.drain.sha, sc.obliterate.sha}
	got, err := c.ScriptExists(context.Background(), shas...).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, ok := range got {
		if ok {
			t.Fatalf("script %s still cached", shas[i])
		}
	}
}

func TestNoScriptFallback(t *testing.T) {
	ctx := context.Background()
	q, c, _ := privateQueue(t)
	// A script cache flush (as after a failover to a replica that never ran
	// the script) must not break adds.
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Add(ctx, "a", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	jobs := make([]BulkJob, 1200)
	if _, err := q.AddBulk(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	if n, _ := q.Count(ctx); n != 1201 {
		t.Fatalf("count = %d", n)
	}
	// Order kept across the NOSCRIPT retry.
	if got := c.LIndex(ctx, q.keys.wait, 0).Val(); got != "1201" {
		t.Fatalf("tail = %q", got)
	}
}

// TestScriptsReloadedAfterRestart kills Redis and starts it again on the
// same port: the pooled connections are dead and the script cache is empty.
// Every Queue operation must work again at the first call, without error.
func TestScriptsReloadedAfterRestart(t *testing.T) {
	ctx := context.Background()
	q, c, srv := privateQueue(t)
	restart := func() {
		t.Helper()
		srv.Kill()
		srv.Start()
		assertScriptCacheEmpty(t, c, q)
	}
	// Warm up: every script cached, connections pooled.
	if _, err := q.Add(ctx, "warm", nil, &JobOptions{JobID: "w"}); err != nil {
		t.Fatal(err)
	}
	if err := q.Remove(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Clean(ctx, 0, 0, StateCompleted); err != nil {
		t.Fatal(err)
	}
	if err := q.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Drain(ctx, true); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name string
		run  func() error
	}{
		{"Add", func() error { _, err := q.Add(ctx, "a", nil, &JobOptions{JobID: "a"}); return err }},
		{"AddBulk", func() error { _, err := q.AddBulk(ctx, make([]BulkJob, 1200)); return err }},
		{"GetJobCounts", func() error { _, err := q.GetJobCounts(ctx); return err }},
		{"Remove", func() error {
			// The restart emptied the queue: the script runs and finds nothing.
			if err := q.Remove(ctx, "a"); !errors.Is(err, ErrJobNotFound) {
				return fmt.Errorf("got %v, want ErrJobNotFound", err)
			}
			return nil
		}},
		{"Clean", func() error { _, err := q.Clean(ctx, 0, 0, StateWaiting); return err }},
		{"Pause", func() error { return q.Pause(ctx) }},
		{"Resume", func() error { return q.Resume(ctx) }},
		{"Drain", func() error { return q.Drain(ctx, true) }},
		{"Obliterate", func() error { return q.Obliterate(ctx, true) }},
	}
	for _, st := range steps {
		restart()
		if err := st.run(); err != nil {
			t.Fatalf("%s after restart: %v", st.name, err)
		}
	}
	// The data written after the last restarts is all there.
	restart()
	jobs, err := q.AddBulk(ctx, make([]BulkJob, 3))
	if err != nil {
		t.Fatal(err)
	}
	if jobs[2].ID != "3" {
		t.Fatalf("ids after restart: %s %s %s", jobs[0].ID, jobs[1].ID, jobs[2].ID)
	}
	if n, err := q.Count(ctx); err != nil || n != 3 {
		t.Fatalf("count = %d, %v", n, err)
	}
}

func TestNewQueueValidation(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := NewQueue(c, "", nil); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("empty name: %v", err)
	}
	if _, err := NewQueue(nil, "x", nil); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("nil client: %v", err)
	}
	q, err := NewQueue(c, "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = q.Close()
	_ = q.Close()
	if _, err := q.Add(context.Background(), "a", nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("add after close: %v", err)
	}
}

// TestAddBulkSharedOptions checks that jobs sharing one *JobOptions (encoded
// once per AddBulk) store the same opts as jobs with their own copies, and
// that a shared invalid value is still rejected.
func TestAddBulkSharedOptions(t *testing.T) {
	ctx := context.Background()
	q, c := newTestQueue(t, time.UnixMilli(1_732_700_000_000))
	shared := seedOptions()
	jobs := []BulkJob{{Name: "a", Opts: shared}, {Name: "b", Opts: seedOptions()}, {Name: "c"}, {Name: "d", Opts: shared}}
	out, err := q.AddBulk(ctx, jobs)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"attempts":3,"backoff":{"delay":2000,"type":"exponential"},"removeOnComplete":{"age":3600,"count":1000}}`
	for _, i := range []int{0, 1, 3} {
		if got := c.HGet(ctx, q.keys.job(out[i].ID), "opts").Val(); got != want {
			t.Errorf("job %d opts = %s\nwant %s", i, got, want)
		}
	}
	if got := c.HGet(ctx, q.keys.job(out[2].ID), "opts").Val(); got != `{"attempts":0}` {
		t.Errorf("job without options: opts = %s", got)
	}
	bad := &JobOptions{Attempts: -1}
	if _, err := q.AddBulk(ctx, []BulkJob{{Name: "x", Opts: bad}, {Name: "y", Opts: bad}}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("shared invalid options: err = %v", err)
	}
}

// TestAddBulkTrimsEventsOnce checks that a bulk, whose events are trimmed
// once at the end of each script call, leaves the stream capped near
// opts.maxLenEvents like per-event trimming does.
func TestAddBulkTrimsEventsOnce(t *testing.T) {
	ctx := context.Background()
	c := bullmqtest.RedisClient(t)
	q, err := NewQueue(c, bullmqtest.QueueName(t, "trim"), &QueueOptions{MaxLenEvents: 100})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.AddBulk(ctx, make([]BulkJob, 1200)); err != nil {
		t.Fatal(err)
	}
	// Approximate trimming keeps whole stream nodes (100 entries each by
	// default): at least maxLen entries, and less than maxLen plus a node.
	n := c.XLen(ctx, q.keys.events).Val()
	if n < 100 || n >= 200 {
		t.Fatalf("events stream has %d entries, want 100..199", n)
	}
	// The newest event is the last job's "waiting".
	last := c.XRevRangeN(ctx, q.keys.events, "+", "-", 1).Val()[0]
	if last.Values["event"] != "waiting" || last.Values["jobId"] != "1200" {
		t.Fatalf("last event = %v", last.Values)
	}
}

// TestConcurrentAdds runs many Adds at once (they are combined into shared
// script calls) and checks every job landed once, in the order each
// goroutine added its own jobs, also across a script cache flush.
func TestConcurrentAdds(t *testing.T) {
	ctx := context.Background()
	q, c, _ := privateQueue(t)
	rec := &scriptKeysRecorder{}
	c.AddHook(rec)
	const workers, each = 20, 50
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				if i == each/2 && w == 0 {
					c.ScriptFlush(ctx) // the others hit NOSCRIPT mid-flight
				}
				if _, err := q.Add(ctx, "a", map[string]int{"w": w, "i": i}, &JobOptions{JobID: fmt.Sprintf("w%d-%d", w, i)}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	ids := c.LRange(ctx, q.keys.wait, 0, -1).Val()
	if len(ids) != workers*each {
		t.Fatalf("wait has %d jobs, want %d", len(ids), workers*each)
	}
	// LPUSH: the list runs newest first; each goroutine's jobs appear in
	// its own order.
	next := make(map[int]int)
	for i := len(ids) - 1; i >= 0; i-- {
		var w, k int
		if _, err := fmt.Sscanf(ids[i], "w%d-%d", &w, &k); err != nil {
			t.Fatalf("job id %q: %v", ids[i], err)
		}
		if k != next[w] {
			t.Fatalf("goroutine %d: job %d before job %d", w, k, next[w])
		}
		next[w]++
	}
	if n := c.XLen(ctx, q.keys.events).Val(); n != 2*workers*each {
		t.Fatalf("events = %d, want %d", n, 2*workers*each)
	}
	rec.mu.Lock()
	calls := len(rec.calls)
	rec.mu.Unlock()
	if calls >= workers*each {
		t.Fatalf("%d script calls for %d adds: nothing was combined", calls, workers*each)
	}
	t.Logf("%d adds in %d script calls", workers*each, calls)
}

// gateHook holds every EVALSHA/EVAL while closed, and reports each one it
// holds on held.
type gateHook struct {
	open chan struct{}
	held chan struct{}
}

func (g *gateHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (g *gateHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (g *gateHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			g.held <- struct{}{}
			<-g.open
		}
		return next(ctx, cmd)
	}
}

// TestCombinedAddCancel checks the contexts of combined Adds: an Add still
// waiting for its turn withdraws when its ctx ends (its job is not added),
// and a leader whose ctx ends while its call is in flight does not fail the
// jobs of the others it carries.
func TestCombinedAddCancel(t *testing.T) {
	ctx := context.Background()
	q, c, _ := privateQueue(t)
	// Load the script first: a NOSCRIPT fallback would pass the gate twice.
	if _, err := q.Add(ctx, "warm", nil, nil); err != nil {
		t.Fatal(err)
	}
	c.Del(ctx, q.keys.wait)
	gate := &gateHook{open: make(chan struct{}), held: make(chan struct{}, 10)}
	c.AddHook(gate)
	type result struct {
		id  string
		err error
	}
	add := func(ctx context.Context, id string) chan result {
		ch := make(chan result, 1)
		go func() {
			j, err := q.Add(ctx, "a", nil, &JobOptions{JobID: id})
			if j != nil {
				ch <- result{j.ID, err}
				return
			}
			ch <- result{"", err}
		}()
		return ch
	}
	waitPending := func(n int) {
		t.Helper()
		bullmqtest.Eventually(t, 5*time.Second, "pending adds", func() error {
			q.adds.mu.Lock()
			got := len(q.adds.pending)
			q.adds.mu.Unlock()
			if got != n {
				return fmt.Errorf("pending = %d, want %d", got, n)
			}
			return nil
		})
	}

	// Two leaders, each alone in its call, held at the gate.
	first := add(ctx, "first")
	<-gate.held
	second := add(ctx, "second")
	<-gate.held
	cctx, cancel := context.WithCancel(ctx)
	withdrawn := add(cctx, "withdrawn")
	waitPending(1)
	cancel()
	if r := <-withdrawn; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("withdrawn add: %+v", r)
	}
	waitPending(0)

	lctx, lcancel := context.WithCancel(ctx)
	leader := add(lctx, "leader") // will lead the next call...
	waitPending(1)
	follower := add(ctx, "follower") // ...which carries this one too
	waitPending(2)
	gate.open <- struct{}{} // release one of the first two calls
	<-gate.held             // the leader's call, with both jobs, is at the gate
	waitPending(0)
	lcancel()
	close(gate.open)
	for name, ch := range map[string]chan result{"first": first, "second": second, "leader": leader, "follower": follower} {
		if r := <-ch; r.err != nil || r.id != name {
			t.Fatalf("%s: %+v", name, r)
		}
	}
	got := c.LRange(ctx, q.keys.wait, 0, -1).Val()
	if len(got) != 4 || !slices.Contains(got, "first") || !slices.Contains(got, "second") {
		t.Fatalf("wait = %v", got)
	}
	if i := slices.Index(got, "follower"); i < 0 || i+1 >= len(got) || got[i+1] != "leader" {
		t.Fatalf("wait = %v: leader and follower not added together in order", got)
	}
	q.adds.mu.Lock()
	if q.adds.leaders != 0 || len(q.adds.pending) != 0 {
		t.Errorf("combiner not idle: %d leaders, %d pending", q.adds.leaders, len(q.adds.pending))
	}
	q.adds.mu.Unlock()
	// The combiner is idle again: a new Add leads at once.
	if _, err := q.Add(ctx, "a", nil, nil); err != nil {
		t.Fatal(err)
	}
}
