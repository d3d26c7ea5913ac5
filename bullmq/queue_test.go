package bullmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// newTestQueue returns a Queue on a unique queue name with a fixed clock.
func newTestQueue(t *testing.T, now time.Time) (*Queue, redis.UniversalClient) {
	t.Helper()
	c := testClient(t)
	name := uniqueQueue(t, "q")
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

func TestNoScriptFallback(t *testing.T) {
	ctx := context.Background()
	q, c := newTestQueue(t, time.Now())
	// A script cache flush (as after a restart or failover) must not break adds.
	// SCRIPT FLUSH is global; other tests simply fall back to EVAL as well.
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
