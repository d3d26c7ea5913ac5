package bullmq

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestGetJobParsesAllFields(t *testing.T) {
	ctx := context.Background()
	q, c := newTestQueue(t, time.Now())
	// A job hash as a Node worker leaves it after a failure with retries.
	c.HSet(ctx, q.keys.job("7"), map[string]any{
		"name": "n", "data": `{"a":1}`, "timestamp": "1732700000000", "delay": "0", "priority": "2",
		"opts": `{"attempts":3,"backoff":5000,"removeOnComplete":true,"removeOnFail":{"age":60},"kl":5,"lifo":false}`,
		"atm":  "2", "ats": "3", "stc": "1", "processedOn": "1732700001000", "finishedOn": "1732700002000",
		"pb": "w1", "returnvalue": `{"ok":true}`, "failedReason": "boom", "stacktrace": `["at a","at b"]`,
		"progress": "42", "parentKey": "bull:p:1", "parent": `{"id":"1","queueKey":"bull:p"}`, "rjk": "sched",
		"deid": "d1", "defa": "job stalled more than allowable limit",
	})
	j, err := q.GetJob(ctx, "7")
	if err != nil {
		t.Fatal(err)
	}
	if j.Name != "n" || string(j.Data) != `{"a":1}` || j.Priority != 2 || j.AttemptsMade != 2 || j.AttemptsStarted != 3 ||
		j.StalledCount != 1 || j.ProcessedOn.UnixMilli() != 1732700001000 || j.FinishedOn.UnixMilli() != 1732700002000 ||
		j.Timestamp.UnixMilli() != 1732700000000 || j.ProcessedBy != "w1" || string(j.ReturnValue) != `{"ok":true}` ||
		j.FailedReason != "boom" || !reflect.DeepEqual(j.Stacktrace, []string{"at a", "at b"}) || string(j.Progress) != "42" ||
		j.ParentKey != "bull:p:1" || j.RepeatJobKey != "sched" || j.DeduplicationID != "d1" || j.DeferredFailure == "" ||
		string(j.Parent) != `{"id":"1","queueKey":"bull:p"}` {
		t.Fatalf("job = %+v", j)
	}
	if j.Opts.Attempts != 3 || j.Opts.Backoff.Type != "fixed" || j.Opts.Backoff.Delay != 5*time.Second ||
		j.Opts.RemoveOnComplete.Keep || j.Opts.RemoveOnFail.Age != time.Minute || string(j.Opts.Extra["kl"]) != "5" {
		t.Fatalf("opts = %+v", j.Opts)
	}
	b, _ := json.Marshal(j.Opts)
	assertJSONEqual(t, string(b), `{"attempts":3,"backoff":{"type":"fixed","delay":5000},"removeOnComplete":true,"removeOnFail":{"age":60},"kl":5,"lifo":false}`)

	// Legacy attemptsMade.
	c.HSet(ctx, q.keys.job("8"), "name", "x", "attemptsMade", "4", "returnvalue", "not json")
	j, err = q.GetJob(ctx, "8")
	if err != nil {
		t.Fatal(err)
	}
	if j.AttemptsMade != 4 || string(j.ReturnValue) != `"not json"` || string(j.Data) != "{}" {
		t.Fatalf("legacy job = %+v", j)
	}
	if _, err := q.GetJob(ctx, "nope"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("missing job: %v", err)
	}
}

func TestGetJobStateAndCounts(t *testing.T) {
	ctx := context.Background()
	q, c := newTestQueue(t, time.Now())
	add := func(o *JobOptions) string {
		t.Helper()
		j, err := q.Add(ctx, "s", nil, o)
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	w := add(nil)
	d := add(&JobOptions{Delay: time.Hour})
	p := add(&JobOptions{Priority: 1})
	a := add(nil)
	c.LRem(ctx, q.keys.wait, 0, a)
	c.LPush(ctx, q.keys.active, a)
	done := add(nil)
	c.LRem(ctx, q.keys.wait, 0, done)
	c.ZAdd(ctx, q.keys.completed, redisZ(1, done))
	f := add(nil)
	c.LRem(ctx, q.keys.wait, 0, f)
	c.ZAdd(ctx, q.keys.failed, redisZ(1, f))
	wc := "wc-job"
	c.ZAdd(ctx, q.keys.waitingChildren, redisZ(1, wc))

	want := map[string]JobState{w: StateWaiting, d: StateDelayed, p: StatePrioritized, a: StateActive,
		done: StateCompleted, f: StateFailed, wc: StateWaitingChildren, "missing": StateUnknown}
	for id, st := range want {
		got, err := q.GetJobState(ctx, id)
		if err != nil || got != st {
			t.Errorf("state(%s) = %q, %v; want %q", id, got, err, st)
		}
	}
	counts, err := q.GetJobCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantCounts := map[JobState]int64{StateWaiting: 1, StateDelayed: 1, StatePrioritized: 1, StateActive: 1,
		StateCompleted: 1, StateFailed: 1, StateWaitingChildren: 1, StatePaused: 0}
	if !reflect.DeepEqual(counts, wantCounts) {
		t.Fatalf("counts = %v", counts)
	}
	if n, _ := q.Count(ctx); n != 4 {
		t.Fatalf("count = %d, want 4", n)
	}
	if _, err := q.GetJobCounts(ctx, StateUnknown); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("unknown state: %v", err)
	}
	// While paused (v5 layout) waiting jobs count as paused, and the state
	// of a job in the paused list is "waiting", as in Node.
	if err := q.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	m, _ := q.GetJobCounts(ctx, StateWaiting, StatePaused)
	if m[StateWaiting] != 0 || m[StatePaused] != 1 {
		t.Fatalf("paused counts = %v", m)
	}
	if st, _ := q.GetJobState(ctx, w); st != StateWaiting {
		t.Fatalf("paused job state = %q", st)
	}
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	q, c := newTestQueue(t, time.Now())
	j, _ := q.Add(ctx, "r", nil, nil)
	c.RPush(ctx, q.keys.logs(j.ID), "line")
	if err := q.Remove(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, q.keys.job(j.ID), q.keys.logs(j.ID)).Val(); n != 0 {
		t.Fatalf("%d job keys left", n)
	}
	if n := c.LLen(ctx, q.keys.wait).Val(); n != 0 {
		t.Fatalf("wait len %d", n)
	}
	ev := streamEvents(t, c, q)
	if last := ev[len(ev)-1]; !reflect.DeepEqual(last, map[string]string{"event": "removed", "jobId": j.ID, "prev": "wait"}) {
		t.Fatalf("last event = %v", last)
	}
	if err := q.Remove(ctx, j.ID); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("remove missing: %v", err)
	}

	// An active, locked job is refused.
	j2, _ := q.Add(ctx, "r", nil, nil)
	c.LRem(ctx, q.keys.wait, 0, j2.ID)
	c.LPush(ctx, q.keys.active, j2.ID)
	c.Set(ctx, q.keys.lock(j2.ID), "tok", time.Minute)
	if err := q.Remove(ctx, j2.ID); !errors.Is(err, ErrJobLocked) {
		t.Fatalf("remove locked: %v", err)
	}
	c.Del(ctx, q.keys.lock(j2.ID))
	if err := q.Remove(ctx, j2.ID); err != nil {
		t.Fatalf("remove unlocked active: %v", err)
	}

	// Deduplication key is dropped with its job.
	j3, _ := q.Add(ctx, "r", nil, nil)
	c.HSet(ctx, q.keys.job(j3.ID), "deid", "dd")
	c.Set(ctx, q.keys.dedup("dd"), j3.ID, 0)
	if err := q.Remove(ctx, j3.ID); err != nil {
		t.Fatal(err)
	}
	if c.Exists(ctx, q.keys.dedup("dd")).Val() != 0 {
		t.Fatal("dedup key left")
	}
}

func TestClean(t *testing.T) {
	ctx := context.Background()
	now := time.UnixMilli(1_732_700_000_000)
	q, c := newTestQueue(t, now)
	for i := 1; i <= 5; i++ {
		id := strconv.Itoa(i)
		c.HSet(ctx, q.keys.job(id), "name", "c", "finishedOn", now.Add(-time.Duration(i)*time.Minute).UnixMilli())
		c.ZAdd(ctx, q.keys.completed, redisZ(float64(now.Add(-time.Duration(i)*time.Minute).UnixMilli()), id))
	}
	ids, err := q.Clean(ctx, 150*time.Second, 0, StateCompleted)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !reflect.DeepEqual(ids, []string{"3", "4", "5"}) {
		t.Fatalf("cleaned %v", ids)
	}
	if c.Exists(ctx, q.keys.job("3")).Val() != 0 || c.ZCard(ctx, q.keys.completed).Val() != 2 {
		t.Fatal("job 3 not removed")
	}
	ev := streamEvents(t, c, q)
	if last := ev[len(ev)-1]; !reflect.DeepEqual(last, map[string]string{"event": "cleaned", "count": "3"}) {
		t.Fatalf("last event = %v", last)
	}
	ids, err = q.Clean(ctx, 0, 1, StateCompleted)
	if err != nil || len(ids) != 1 || ids[0] != "2" {
		t.Fatalf("limit 1: %v %v", ids, err)
	}

	// Waiting jobs: by timestamp; locked active jobs are skipped.
	q, c = newTestQueue(t, now)
	old, _ := q.Add(ctx, "w", nil, &JobOptions{Timestamp: now.Add(-time.Hour)})
	recent, _ := q.Add(ctx, "w", nil, nil)
	ids, err = q.Clean(ctx, time.Minute, 0, StateWaiting)
	if err != nil || !reflect.DeepEqual(ids, []string{old.ID}) {
		t.Fatalf("clean wait: %v %v", ids, err)
	}
	if got := c.LRange(ctx, q.keys.wait, 0, -1).Val(); !reflect.DeepEqual(got, []string{recent.ID}) {
		t.Fatalf("wait = %v", got)
	}
	c.LRem(ctx, q.keys.wait, 0, recent.ID)
	c.LPush(ctx, q.keys.active, recent.ID)
	c.Set(ctx, q.keys.lock(recent.ID), "tok", time.Minute)
	if ids, _ := q.Clean(ctx, 0, 0, StateActive); len(ids) != 0 {
		t.Fatalf("cleaned locked active job: %v", ids)
	}
	if _, err := q.Clean(ctx, 0, 0, StateUnknown); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("unknown state: %v", err)
	}
}

func TestPauseResumeMerges(t *testing.T) {
	ctx := context.Background()
	q, c := newTestQueue(t, time.Now())
	for i := 0; i < 3; i++ {
		if _, err := q.Add(ctx, "p", nil, nil); err != nil { // ids 1..3; wait = [3 2 1]
			t.Fatal(err)
		}
	}
	if err := q.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := q.IsPaused(ctx); !ok {
		t.Fatal("not paused")
	}
	if got := c.LRange(ctx, q.keys.paused, 0, -1).Val(); !reflect.DeepEqual(got, []string{"3", "2", "1"}) {
		t.Fatalf("paused = %v", got)
	}
	// A v6 producer adds to wait while paused; our resume must keep it and
	// run the older paused jobs first.
	c.LPush(ctx, q.keys.wait, "v6job")
	if err := q.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := q.IsPaused(ctx); ok {
		t.Fatal("still paused")
	}
	if got := c.LRange(ctx, q.keys.wait, 0, -1).Val(); !reflect.DeepEqual(got, []string{"v6job", "3", "2", "1"}) {
		t.Fatalf("wait = %v", got)
	}
	if c.Exists(ctx, q.keys.paused).Val() != 0 {
		t.Fatal("paused list left")
	}
	if c.ZScore(ctx, q.keys.marker, "0").Err() != nil {
		t.Fatal("no marker after resume")
	}
	// Pause when a legacy paused list already exists: merged, not overwritten.
	c.RPush(ctx, q.keys.paused, "legacy")
	if err := q.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.LRange(ctx, q.keys.paused, 0, -1).Val(); !reflect.DeepEqual(got, []string{"v6job", "3", "2", "1", "legacy"}) {
		t.Fatalf("paused = %v", got)
	}
	if c.Exists(ctx, q.keys.marker).Val() != 0 {
		t.Fatal("marker kept while paused")
	}
	var types []string
	for _, e := range streamEvents(t, c, q) {
		if e["event"] == "paused" || e["event"] == "resumed" {
			types = append(types, e["event"])
		}
	}
	if !reflect.DeepEqual(types, []string{"paused", "resumed", "paused"}) {
		t.Fatalf("events = %v", types)
	}
	// Resume with only delayed jobs sets the delay marker.
	q2, c2 := newTestQueue(t, time.UnixMilli(1_732_700_000_000))
	if _, err := q2.Add(ctx, "d", nil, &JobOptions{Delay: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := q2.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q2.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if s := c2.ZScore(ctx, q2.keys.marker, "1").Val(); s != 1_732_700_001_000 {
		t.Fatalf("delay marker = %v", s)
	}
}

func TestDrainAndObliterate(t *testing.T) {
	ctx := context.Background()
	q, c := newTestQueue(t, time.Now())
	if _, err := q.Add(ctx, "a", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Add(ctx, "b", nil, &JobOptions{Priority: 2}); err != nil {
		t.Fatal(err)
	}
	d, _ := q.Add(ctx, "c", nil, &JobOptions{Delay: time.Hour})
	if err := q.Drain(ctx, false); err != nil {
		t.Fatal(err)
	}
	m, _ := q.GetJobCounts(ctx)
	if m[StateWaiting] != 0 || m[StatePrioritized] != 0 || m[StateDelayed] != 1 {
		t.Fatalf("after drain: %v", m)
	}
	if c.Exists(ctx, q.keys.job("1")).Val() != 0 || c.Exists(ctx, q.keys.job(d.ID)).Val() != 1 {
		t.Fatal("drain removed the wrong jobs")
	}
	if err := q.Drain(ctx, true); err != nil {
		t.Fatal(err)
	}
	if n, _ := q.Count(ctx); n != 0 {
		t.Fatalf("count after full drain = %d", n)
	}

	jobs := make([]BulkJob, 2500)
	if _, err := q.AddBulk(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	a, _ := q.Add(ctx, "active", nil, nil)
	c.LRem(ctx, q.keys.wait, 0, a.ID)
	c.LPush(ctx, q.keys.active, a.ID)
	if err := q.Obliterate(ctx, false); !errors.Is(err, ErrActiveJobs) {
		t.Fatalf("obliterate with active: %v", err)
	}
	if err := q.Obliterate(ctx, true); err != nil {
		t.Fatal(err)
	}
	keys := c.Keys(ctx, q.keys.base+"*").Val()
	if len(keys) != 0 {
		t.Fatalf("keys left after obliterate: %v", keys[:min(10, len(keys))])
	}
	// The queue works again afterwards (meta is rewritten).
	if _, err := q.Add(ctx, "again", nil, nil); err != nil {
		t.Fatal(err)
	}
	if v, _ := q.Version(ctx); v != "bullmq-go:"+Version {
		t.Fatalf("version = %q", v)
	}
}
