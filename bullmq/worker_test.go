package bullmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

func TestWorkerProcessesInOrder(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-order")
	var ids []string
	for i := range 10 {
		ids = append(ids, e.add("n", map[string]int{"i": i}, nil).ID)
	}
	rec := newRecorder()
	var completed atomic.Int32
	e.startWorker(func(ctx context.Context, job *Job) (any, error) {
		rec.add(job.ID)
		if job.Token == "" || job.AttemptsStarted != 1 || job.AttemptsMade != 0 {
			return nil, fmt.Errorf("token %q ats %d atm %d", job.Token, job.AttemptsStarted, job.AttemptsMade)
		}
		var d struct{ I int }
		if err := json.Unmarshal(job.Data, &d); err != nil {
			return nil, err
		}
		return map[string]int{"double": d.I * 2}, nil
	}, &WorkerOptions{Name: "order-w", OnCompleted: func(*Job, json.RawMessage) { completed.Add(1) }})

	bullmqtest.WaitFor(t, 5*time.Second, "10 completions", func() bool { return completed.Load() == 10 })
	if got := rec.list(); strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("processing order %v, want %v", got, ids)
	}
	for i, id := range ids {
		j := e.job(id)
		if string(j.ReturnValue) != fmt.Sprintf(`{"double":%d}`, i*2) {
			t.Errorf("job %s returnvalue %s", id, j.ReturnValue)
		}
		if j.AttemptsMade != 1 || j.AttemptsStarted != 1 || j.ProcessedBy != "order-w" ||
			j.FinishedOn.IsZero() || j.ProcessedOn.IsZero() {
			t.Errorf("job %s: atm %d ats %d pb %q finishedOn %v processedOn %v", id,
				j.AttemptsMade, j.AttemptsStarted, j.ProcessedBy, j.FinishedOn, j.ProcessedOn)
		}
		if s := e.state(id); s != StateCompleted {
			t.Errorf("job %s state %s", id, s)
		}
		if n := len(e.eventsOf("active", id)); n != 1 {
			t.Errorf("job %s: %d active events", id, n)
		}
		ev := e.eventsOf("completed", id)
		if len(ev) != 1 || ev[0]["returnvalue"] != fmt.Sprintf(`{"double":%d}`, i*2) || ev[0]["prev"] != "active" {
			t.Errorf("job %s completed events %v", id, ev)
		}
	}
	bullmqtest.WaitFor(t, 2*time.Second, "drained event", func() bool { return len(e.eventsOf("drained", "")) > 0 })
	if n, _ := e.client.LLen(context.Background(), e.k.active).Result(); n != 0 {
		t.Errorf("%d jobs left active", n)
	}
}

func TestWorkerConcurrency(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-conc")
	const n, conc = 12, 4
	for i := range n {
		e.add("n", i, nil)
	}
	var inFlight, peak, done atomic.Int32
	release := make(chan struct{})
	e.startWorker(func(ctx context.Context, job *Job) (any, error) {
		cur := inFlight.Add(1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
		done.Add(1)
		return nil, nil
	}, &WorkerOptions{Concurrency: conc})
	bullmqtest.WaitFor(t, 5*time.Second, "4 jobs in flight", func() bool { return inFlight.Load() == conc })
	if n, _ := e.client.LLen(context.Background(), e.k.active).Result(); n != conc {
		t.Errorf("active list has %d jobs, want %d", n, conc)
	}
	close(release)
	bullmqtest.WaitFor(t, 5*time.Second, "all jobs done", func() bool { return done.Load() == n })
	if p := peak.Load(); p != conc {
		t.Errorf("peak concurrency %d, want %d", p, conc)
	}
}

func TestWorkerRetryBackoff(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-retry")
	job := e.add("n", nil, &JobOptions{Attempts: 4, Backoff: &Backoff{Type: "exponential", Delay: 200 * time.Millisecond}})
	var mu sync.Mutex
	var starts []time.Time
	var failedHooks atomic.Int32
	e.startWorker(func(ctx context.Context, j *Job) (any, error) {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		if j.AttemptsMade < 3 {
			return nil, fmt.Errorf("attempt %d: %w", j.AttemptsMade+1, errBoom)
		}
		return "ok", nil
	}, &WorkerOptions{OnFailed: func(*Job, error) { failedHooks.Add(1) }})
	e.waitState(job.ID, StateCompleted, 10*time.Second)

	mu.Lock()
	defer mu.Unlock()
	if len(starts) != 4 {
		t.Fatalf("%d attempts, want 4", len(starts))
	}
	for i, want := range []time.Duration{200, 400, 800} {
		gap := starts[i+1].Sub(starts[i])
		if gap < want*time.Millisecond || gap > want*time.Millisecond+700*time.Millisecond {
			t.Errorf("gap before attempt %d = %s, want about %dms", i+2, gap, want)
		}
	}
	delayed := e.eventsOf("delayed", job.ID)
	if len(delayed) != 3 {
		t.Fatalf("%d delayed events, want 3", len(delayed))
	}
	// The due time in each delayed event is the failure time plus the
	// backoff; the failure happens within the attempt that started at
	// starts[i], so due-start is the backoff plus the processing time.
	for i, want := range []int64{200, 400, 800} {
		due, _ := strconv.ParseInt(delayed[i]["delay"], 10, 64)
		lead := due - starts[i].UnixMilli()
		if lead < want || lead > want+500 {
			t.Errorf("delayed event %d: due-start = %dms, want about %dms", i, lead, want)
		}
	}
	if n := len(e.eventsOf("failed", job.ID)); n != 0 {
		t.Errorf("%d failed events for a job that was retried and completed", n)
	}
	if n := len(e.eventsOf("waiting", job.ID)); n != 4 { // added + 3 promotions
		t.Errorf("%d waiting events, want 4", n)
	}
	j := e.job(job.ID)
	if j.AttemptsMade != 4 || j.AttemptsStarted != 4 || j.FailedReason != "attempt 3: boom" || len(j.Stacktrace) != 3 {
		t.Errorf("job: atm %d ats %d failedReason %q stack %d", j.AttemptsMade, j.AttemptsStarted, j.FailedReason, len(j.Stacktrace))
	}
	bullmqtest.WaitFor(t, 2*time.Second, "3 OnFailed calls", func() bool { return failedHooks.Load() == 3 })
}

func TestWorkerRetryScoreAndImmediateRetry(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-retry-score")
	// A long backoff: the job stays in delayed, so its score can be checked.
	slow := e.add("slow", nil, &JobOptions{Attempts: 2, Backoff: &Backoff{Type: "fixed", Delay: time.Hour}})
	// No backoff: retried at once through wait.
	quick := e.add("quick", nil, &JobOptions{Attempts: 3})
	rec := newRecorder()
	before := time.Now().UnixMilli()
	e.startWorker(func(ctx context.Context, j *Job) (any, error) {
		rec.add(j.Name + strconv.Itoa(j.AttemptsMade))
		if j.Name == "quick" && j.AttemptsMade < 2 {
			return nil, errBoom
		}
		if j.Name == "slow" {
			return nil, errBoom
		}
		return nil, nil
	}, nil)
	e.waitState(slow.ID, StateDelayed, 5*time.Second)
	e.waitState(quick.ID, StateCompleted, 5*time.Second)
	after := time.Now().UnixMilli()
	score, err := e.client.ZScore(context.Background(), e.k.delayed, slow.ID).Result()
	if err != nil {
		t.Fatal(err)
	}
	due := int64(score) / 4096
	if due < before+3600_000 || due > after+3600_000 || int64(score)%4096 != 0 {
		t.Errorf("delayed score %v: due %d not in [%d, %d] or not ms*4096", score, due, before+3600_000, after+3600_000)
	}
	if j := e.job(slow.ID); j.Delay != time.Hour || j.AttemptsMade != 1 {
		t.Errorf("slow job delay %s atm %d", j.Delay, j.AttemptsMade)
	}
	if got := rec.count("quick0") + rec.count("quick1") + rec.count("quick2"); got != 3 {
		t.Errorf("quick attempts %v", rec.list())
	}
	var prevActive int
	for _, ev := range e.eventsOf("waiting", quick.ID) {
		if ev["prev"] == "active" {
			prevActive++
		}
	}
	if prevActive != 2 {
		t.Errorf("%d waiting(prev=active) events for the quick job, want 2", prevActive)
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	half := func() float64 { return 0.5 }
	job := func(atm int, b *Backoff) *Job { return &Job{AttemptsMade: atm, Opts: JobOptions{Backoff: b}} }
	exp := &Backoff{Type: "exponential", Delay: 200 * time.Millisecond}
	fixed := &Backoff{Type: "fixed", Delay: time.Second}
	tests := []struct {
		name string
		job  *Job
		want time.Duration
	}{
		{"none", job(0, nil), 0},
		{"fixed", job(3, fixed), time.Second},
		{"exp1", job(0, exp), 200 * time.Millisecond},
		{"exp2", job(1, exp), 400 * time.Millisecond},
		{"exp3", job(2, exp), 800 * time.Millisecond},
		{"fixed jitter", job(0, &Backoff{Type: "fixed", Delay: time.Second, Jitter: 0.5}), 750 * time.Millisecond},
		{"exp jitter", job(1, &Backoff{Type: "exponential", Delay: 100 * time.Millisecond, Jitter: 1}), 100 * time.Millisecond},
		{"custom without strategy", job(0, &Backoff{Type: "mine", Delay: time.Second}), 0},
	}
	for _, tt := range tests {
		if got := retryDelay(tt.job, errBoom, nil, half); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
	strategy := func(n int, typ string, err error, j *Job) time.Duration { return time.Duration(n) * time.Minute }
	if got := retryDelay(job(2, &Backoff{Type: "mine"}), errBoom, strategy, half); got != 3*time.Minute {
		t.Errorf("custom strategy: %s", got)
	}
	if !shouldRetry(&Job{AttemptsMade: 0, Opts: JobOptions{Attempts: 2}}, errBoom) ||
		shouldRetry(&Job{AttemptsMade: 1, Opts: JobOptions{Attempts: 2}}, errBoom) ||
		shouldRetry(&Job{AttemptsMade: 0, Opts: JobOptions{Attempts: 2}}, Unrecoverable(errBoom)) ||
		shouldRetry(&Job{Opts: JobOptions{Attempts: 0}}, errBoom) {
		t.Error("shouldRetry does not follow attemptsMade+1 < attempts")
	}
}

func TestWorkerUnrecoverableAndPanic(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-unrec")
	opts := &JobOptions{Attempts: 5, Backoff: &Backoff{Type: "fixed", Delay: 10 * time.Millisecond}}
	unrec := e.add("unrec", nil, opts)
	pan := e.add("panic", nil, &JobOptions{Attempts: 1})
	after := e.add("after", nil, nil)
	var calls atomic.Int32
	var gotErr atomic.Value
	e.startWorker(func(ctx context.Context, j *Job) (any, error) {
		calls.Add(1)
		switch j.Name {
		case "unrec":
			return nil, Unrecoverable(fmt.Errorf("bad input: %w", errBoom))
		case "panic":
			panic("kaboom")
		}
		return "fine", nil
	}, &WorkerOptions{OnFailed: func(j *Job, err error) {
		if j.Name == "unrec" {
			gotErr.Store(err)
		}
	}})
	e.waitState(unrec.ID, StateFailed, 5*time.Second)
	e.waitState(pan.ID, StateFailed, 5*time.Second)
	e.waitState(after.ID, StateCompleted, 5*time.Second)
	if n := calls.Load(); n != 3 {
		t.Errorf("processor called %d times, want 3 (no retry of the unrecoverable job)", n)
	}
	j := e.job(unrec.ID)
	if j.FailedReason != "bad input: boom" || j.AttemptsMade != 1 {
		t.Errorf("unrecoverable job: reason %q atm %d", j.FailedReason, j.AttemptsMade)
	}
	if ev := e.eventsOf("failed", unrec.ID); len(ev) != 1 || ev[0]["failedReason"] != "bad input: boom" {
		t.Errorf("failed events %v", ev)
	}
	if n := len(e.eventsOf("retries-exhausted", unrec.ID)); n != 0 {
		t.Errorf("retries-exhausted emitted for atm 1 < attempts 5")
	}
	p := e.job(pan.ID)
	if p.FailedReason != "panic: kaboom" || len(p.Stacktrace) != 1 || !strings.Contains(p.Stacktrace[0], "goroutine") {
		t.Errorf("panicked job: reason %q stack %v", p.FailedReason, p.Stacktrace)
	}
	if ev := e.eventsOf("retries-exhausted", pan.ID); len(ev) != 1 || ev[0]["attemptsMade"] != "1" {
		t.Errorf("retries-exhausted events %v", ev)
	}
	bullmqtest.WaitFor(t, 2*time.Second, "OnFailed", func() bool { return gotErr.Load() != nil })
	if err := gotErr.Load().(error); !errors.Is(err, ErrUnrecoverable) || !errors.Is(err, errBoom) {
		t.Errorf("OnFailed error %v does not match ErrUnrecoverable and the cause", err)
	}
}

func TestWorkersShareQueueExactlyOnce(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-share")
	const n = 1500
	bulk := make([]BulkJob, n)
	for i := range bulk {
		bulk[i] = BulkJob{Name: "n", Data: i}
	}
	if _, err := e.q.AddBulk(context.Background(), bulk); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	runs := map[string]int{}
	var completed atomic.Int32
	proc := func(ctx context.Context, j *Job) (any, error) {
		mu.Lock()
		runs[j.ID]++
		mu.Unlock()
		return nil, nil
	}
	for i, conc := range []int{1, 7, 20} {
		e.startWorker(proc, &WorkerOptions{Name: fmt.Sprintf("share-%d", i), Concurrency: conc,
			OnCompleted: func(*Job, json.RawMessage) { completed.Add(1) }})
	}
	bullmqtest.WaitFor(t, 30*time.Second, "all jobs completed", func() bool { return completed.Load() == n })
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != n {
		t.Errorf("%d distinct jobs ran, want %d", len(runs), n)
	}
	for id, c := range runs {
		if c != 1 {
			t.Errorf("job %s ran %d times", id, c)
		}
	}
	counts, err := e.q.GetJobCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if counts[StateCompleted] != n || counts[StateActive] != 0 || counts[StateWaiting] != 0 {
		t.Errorf("counts %v", counts)
	}
}
