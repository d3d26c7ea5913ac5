package workerapp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/executor"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/testenv"
)

func TestCompletedTaskPostsResult(t *testing.T) {
	client := testenv.RedisClient(t)
	cfg := testConfig(t)
	exec := &funcExecutor{fn: func(ctx context.Context, in executor.Input) (executor.Output, error) {
		if in.Prompt != "say hi" || in.Code != "print(1)\n" || in.Timeout != 10*time.Second {
			return executor.Output{}, errors.New("unexpected input")
		}
		return executor.Output{Result: json.RawMessage(`{"answer":"hi"}`)}, nil
	}}
	app, _ := startApp(t, client, cfg, exec)
	tasks := newQueue(t, client, cfg.Names.Tasks())
	results := newQueue(t, client, cfg.Names.Results())

	id := addTask(t, tasks, "say hi", nil)
	res, raw := waitResult(t, results, taskqueue.ResultJobID(id, 0), 10*time.Second)

	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if got := strings.Join(keys, ","); got != "errorMessage,executionTime,result,status,taskId,workerId" {
		t.Errorf("result keys = %s", got)
	}
	if res.TaskID != id || res.WorkerID != cfg.WorkerID || res.Status != taskqueue.ResultCompleted ||
		string(res.Result) != `{"answer":"hi"}` || res.ErrorMessage != nil || res.ExecutionTime == nil || *res.ExecutionTime < 0 {
		t.Errorf("result = %+v", res)
	}
	testenv.WaitFor(t, 5*time.Second, "task job completed", func() bool { return jobState(t, tasks, id) == bullmq.StateCompleted })
	job, err := tasks.GetJob(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if job.ProcessedBy != cfg.WorkerID {
		t.Errorf("pb = %q, want %q", job.ProcessedBy, cfg.WorkerID)
	}
	if !strings.Contains(string(job.ReturnValue), taskqueue.ResultJobID(id, 0)) {
		t.Errorf("return value = %s", job.ReturnValue)
	}

	// /health and /metrics.
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	body := get(t, srv.URL+"/health", http.StatusOK)
	if !strings.Contains(body, `"status":"ok"`) {
		t.Errorf("/health = %s", body)
	}
	body = get(t, srv.URL+"/metrics", http.StatusOK)
	for _, want := range []string{`worker_tasks_total{outcome="completed"} 1`, `worker_results_posted_total{status="completed"} 1`,
		"worker_tasks_in_flight 0", `worker_task_duration_seconds_count{outcome="completed"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func get(t *testing.T, url string, wantCode int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Errorf("GET %s = %d, want %d: %s", url, resp.StatusCode, wantCode, b)
	}
	return string(b)
}

func TestFailedResultOnlyOnFinalFailure(t *testing.T) {
	client := testenv.RedisClient(t)
	cfg := testConfig(t)
	exec := &funcExecutor{fn: func(ctx context.Context, in executor.Input) (executor.Output, error) {
		return executor.Output{}, errors.New("agent crashed")
	}}
	startApp(t, client, cfg, exec)
	tasks := newQueue(t, client, cfg.Names.Tasks())
	results := newQueue(t, client, cfg.Names.Results())

	id := addTask(t, tasks, "p", &bullmq.JobOptions{Attempts: 3, Backoff: &bullmq.Backoff{Type: "fixed", Delay: 10 * time.Millisecond}})
	res, _ := waitResult(t, results, taskqueue.ResultJobID(id, 2), 10*time.Second)
	if res.Status != taskqueue.ResultFailed || res.ErrorMessage == nil || *res.ErrorMessage != "agent crashed" || string(res.Result) != "null" {
		t.Errorf("result = %+v", res)
	}
	testenv.WaitFor(t, 5*time.Second, "task job failed", func() bool { return jobState(t, tasks, id) == bullmq.StateFailed })
	if n := exec.runs.Load(); n != 3 {
		t.Errorf("executor ran %d times, want 3", n)
	}
	if n := resultCount(t, results); n != 1 {
		t.Errorf("%d result jobs, want only the final one", n)
	}
}

func TestUnrecoverableFailsAtOnce(t *testing.T) {
	client := testenv.RedisClient(t)
	cfg := testConfig(t)
	exec := &funcExecutor{fn: func(ctx context.Context, in executor.Input) (executor.Output, error) {
		return executor.Output{}, executor.Unrecoverable(errors.New("bad setup"))
	}}
	startApp(t, client, cfg, exec)
	tasks := newQueue(t, client, cfg.Names.Tasks())
	results := newQueue(t, client, cfg.Names.Results())

	id := addTask(t, tasks, "p", &bullmq.JobOptions{Attempts: 3})
	res, _ := waitResult(t, results, taskqueue.ResultJobID(id, 0), 10*time.Second)
	if res.Status != taskqueue.ResultFailed || *res.ErrorMessage != "bad setup" {
		t.Errorf("result = %+v", res)
	}
	testenv.WaitFor(t, 5*time.Second, "task job failed", func() bool { return jobState(t, tasks, id) == bullmq.StateFailed })
	if n := exec.runs.Load(); n != 1 {
		t.Errorf("executor ran %d times, want 1", n)
	}
}

func TestInvalidJobDataFailsWithResult(t *testing.T) {
	client := testenv.RedisClient(t)
	cfg := testConfig(t)
	exec := &funcExecutor{fn: func(ctx context.Context, in executor.Input) (executor.Output, error) {
		return executor.Output{Result: json.RawMessage(`1`)}, nil
	}}
	startApp(t, client, cfg, exec)
	tasks := newQueue(t, client, cfg.Names.Tasks())
	results := newQueue(t, client, cfg.Names.Results())

	id := "task-with-bad-data"
	if _, err := tasks.Add(context.Background(), taskqueue.JobName, "not an object", &bullmq.JobOptions{JobID: id, Attempts: 3}); err != nil {
		t.Fatal(err)
	}
	res, _ := waitResult(t, results, taskqueue.ResultJobID(id, 0), 10*time.Second)
	if res.TaskID != id || res.Status != taskqueue.ResultFailed || !strings.Contains(*res.ErrorMessage, "invalid task data") {
		t.Errorf("result = %+v", res)
	}
	if n := exec.runs.Load(); n != 0 {
		t.Errorf("executor ran %d times, want 0", n)
	}
}

func TestCancelStopsRunningTask(t *testing.T) {
	client := testenv.RedisClient(t)
	cfg := testConfig(t)
	cmd, err := executor.NewCommand([]string{"sh", "-c", "cat >/dev/null; sleep 30"}, executor.ProcessOptions{KillGrace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	app, _ := startApp(t, client, cfg, cmd)
	tasks := newQueue(t, client, cfg.Names.Tasks())
	results := newQueue(t, client, cfg.Names.Results())

	id := addTask(t, tasks, "p", &bullmq.JobOptions{Attempts: 3})
	testenv.WaitFor(t, 10*time.Second, "task running", func() bool { return app.running.count() == 1 })
	start := time.Now()
	requestCancel(t, client, cfg, id)
	res, _ := waitResult(t, results, taskqueue.ResultJobID(id, 0), 10*time.Second)
	if res.Status != taskqueue.ResultFailed || *res.ErrorMessage != "cancelled" {
		t.Errorf("result = %+v", res)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %s", d)
	}
	testenv.WaitFor(t, 5*time.Second, "task job failed", func() bool { return jobState(t, tasks, id) == bullmq.StateFailed })
	job, err := tasks.GetJob(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if job.AttemptsMade != 1 || job.FailedReason != "cancelled" {
		t.Errorf("job attempts %d, reason %q: want 1 attempt, no retry", job.AttemptsMade, job.FailedReason)
	}
}

func TestCancelJustBeforeStartIsApplied(t *testing.T) {
	r := newRunningTasks(time.Now)
	if r.cancel("t1") {
		t.Fatal("cancel of an unknown task reported a run")
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	remove := r.add("t1", cancel)
	defer remove()
	if !errors.Is(context.Cause(ctx), ErrCancelled) {
		t.Errorf("cause = %v, want ErrCancelled", context.Cause(ctx))
	}
}

// TestShutdownLeavesKilledTaskForRecovery: a task still running when the
// shutdown timeout passes is killed, nothing is posted, its job stays active,
// and another worker recovers and completes it once.
func TestShutdownLeavesKilledTaskForRecovery(t *testing.T) {
	client := testenv.RedisClient(t)
	cfg := testConfig(t)
	cfg.ShutdownTimeout = 300 * time.Millisecond
	started := make(chan struct{}, 1)
	blocking := &funcExecutor{fn: func(ctx context.Context, in executor.Input) (executor.Output, error) {
		started <- struct{}{}
		<-ctx.Done()
		return executor.Output{}, context.Cause(ctx)
	}}
	_, stop := startApp(t, client, cfg, blocking)
	tasks := newQueue(t, client, cfg.Names.Tasks())
	results := newQueue(t, client, cfg.Names.Results())

	id := addTask(t, tasks, "p", &bullmq.JobOptions{Attempts: 1})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("task did not start")
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if s := jobState(t, tasks, id); s != bullmq.StateActive {
		t.Fatalf("job state after shutdown = %s, want active", s)
	}
	if n := resultCount(t, results); n != 0 {
		t.Fatalf("%d results posted for an abandoned task", n)
	}

	cfg2 := testConfig(t)
	cfg2.Names = cfg.Names
	ok := &funcExecutor{fn: func(ctx context.Context, in executor.Input) (executor.Output, error) {
		return executor.Output{Result: json.RawMessage(`"recovered"`)}, nil
	}}
	startApp(t, client, cfg2, ok)
	res, _ := waitResult(t, results, taskqueue.ResultJobID(id, 0), 15*time.Second)
	if res.Status != taskqueue.ResultCompleted || res.WorkerID != cfg2.WorkerID || string(res.Result) != `"recovered"` {
		t.Errorf("result = %+v", res)
	}
	testenv.WaitFor(t, 5*time.Second, "task job completed", func() bool { return jobState(t, tasks, id) == bullmq.StateCompleted })
	if n := ok.runs.Load(); n != 1 {
		t.Errorf("recovering worker ran the task %d times, want 1", n)
	}
	if n := resultCount(t, results); n != 1 {
		t.Errorf("%d result jobs, want 1", n)
	}
}

// TestShutdownLetsRunningTasksFinish: tasks running at shutdown complete
// and post their results before Run returns.
func TestShutdownLetsRunningTasksFinish(t *testing.T) {
	client := testenv.RedisClient(t)
	cfg := testConfig(t)
	cfg.Concurrency = 2
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	exec := &funcExecutor{fn: func(ctx context.Context, in executor.Input) (executor.Output, error) {
		started <- struct{}{}
		select {
		case <-release:
			return executor.Output{Result: json.RawMessage(`"done"`)}, nil
		case <-ctx.Done():
			return executor.Output{}, context.Cause(ctx)
		}
	}}
	_, stop := startApp(t, client, cfg, exec)
	tasks := newQueue(t, client, cfg.Names.Tasks())
	results := newQueue(t, client, cfg.Names.Results())
	ids := []string{addTask(t, tasks, "a", nil), addTask(t, tasks, "b", nil)}
	for range ids {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("tasks did not start")
		}
	}
	third := addTask(t, tasks, "c", nil)
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.AfterFunc(300*time.Millisecond, func() { close(release) })
	if err := <-stopped; err != nil {
		t.Fatalf("Run = %v", err)
	}
	for _, id := range ids {
		res, _ := waitResult(t, results, taskqueue.ResultJobID(id, 0), time.Second)
		if res.Status != taskqueue.ResultCompleted {
			t.Errorf("task %s: %+v", id, res)
		}
		if s := jobState(t, tasks, id); s != bullmq.StateCompleted {
			t.Errorf("task %s job state %s", id, s)
		}
	}
	if s := jobState(t, tasks, third); s != bullmq.StateWaiting {
		t.Errorf("task added during shutdown: state %s, want waiting", s)
	}
}

// TestLongTaskKeepsItsLock: a run lasting many lock durations keeps its
// lock (renewed by the bullmq worker), is not declared stalled, runs once.
func TestLongTaskKeepsItsLock(t *testing.T) {
	client := testenv.RedisClient(t)
	cfg := testConfig(t)
	cfg.LockDuration = 200 * time.Millisecond
	cfg.StalledInterval = 100 * time.Millisecond
	exec := &funcExecutor{fn: func(ctx context.Context, in executor.Input) (executor.Output, error) {
		select {
		case <-time.After(1500 * time.Millisecond): // the work: 7.5 lock durations
			return executor.Output{Result: json.RawMessage(`"long"`)}, nil
		case <-ctx.Done():
			return executor.Output{}, context.Cause(ctx)
		}
	}}
	startApp(t, client, cfg, exec)
	// A second worker on the queue would take the job if it stalled.
	cfg2 := testConfig(t)
	cfg2.Names, cfg2.LockDuration, cfg2.StalledInterval = cfg.Names, cfg.LockDuration, cfg.StalledInterval
	startApp(t, client, cfg2, exec)
	tasks := newQueue(t, client, cfg.Names.Tasks())
	results := newQueue(t, client, cfg.Names.Results())

	id := addTask(t, tasks, "p", &bullmq.JobOptions{Attempts: 3})
	res, _ := waitResult(t, results, taskqueue.ResultJobID(id, 0), 10*time.Second)
	if res.Status != taskqueue.ResultCompleted {
		t.Errorf("result = %+v", res)
	}
	testenv.WaitFor(t, 5*time.Second, "task job completed", func() bool { return jobState(t, tasks, id) == bullmq.StateCompleted })
	job, err := tasks.GetJob(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if n := exec.runs.Load(); n != 1 || job.StalledCount != 0 || job.AttemptsMade != 1 {
		t.Errorf("runs %d, stalled %d, attempts %d; want 1, 0, 1", n, job.StalledCount, job.AttemptsMade)
	}
}

// TestDeferredFailurePostsResult: a job that stalled more often than allowed
// is failed by BullMQ without running; the worker still posts its result.
func TestDeferredFailurePostsResult(t *testing.T) {
	client := testenv.RedisClient(t)
	cfg := testConfig(t)
	exec := &funcExecutor{fn: func(ctx context.Context, in executor.Input) (executor.Output, error) {
		return executor.Output{Result: json.RawMessage(`1`)}, nil
	}}
	tasks := newQueue(t, client, cfg.Names.Tasks())
	results := newQueue(t, client, cfg.Names.Results())
	id := addTask(t, tasks, "p", &bullmq.JobOptions{Attempts: 3})
	// What the stalled checker writes on a job past MaxStalledCount.
	if err := client.HSet(context.Background(), "bull:"+cfg.Names.Tasks()+":"+id, "defa", "job stalled more than allowable limit").Err(); err != nil {
		t.Fatal(err)
	}
	startApp(t, client, cfg, exec)
	testenv.WaitFor(t, 10*time.Second, "a result job", func() bool { return resultCount(t, results) == 1 })
	testenv.WaitFor(t, 5*time.Second, "task job failed", func() bool { return jobState(t, tasks, id) == bullmq.StateFailed })
	job, err := tasks.GetJob(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := waitResult(t, results, taskqueue.ResultJobID(id, job.AttemptsMade), time.Second)
	if res.Status != taskqueue.ResultFailed || res.TaskID != id || *res.ErrorMessage != "job stalled more than allowable limit" {
		t.Errorf("result = %+v", res)
	}
	if n := exec.runs.Load(); n != 0 {
		t.Errorf("executor ran %d times, want 0", n)
	}
}

// TestRetriedTaskResultIDs: the job of a retried task carries an attempt
// offset; its results are posted under ids that continue the task's
// attempts (ResultJobID(id, offset + attemptsMade)), so that they never
// collide with the results of the earlier run, which BullMQ would drop.
func TestRetriedTaskResultIDs(t *testing.T) {
	client := testenv.RedisClient(t)
	cfg := testConfig(t)
	exec := &funcExecutor{fn: func(ctx context.Context, in executor.Input) (executor.Output, error) {
		if in.Prompt == "fail" {
			return executor.Output{}, errors.New("agent crashed")
		}
		return executor.Output{Result: json.RawMessage(`1`)}, nil
	}}
	startApp(t, client, cfg, exec)
	tasks := newQueue(t, client, cfg.Names.Tasks())
	results := newQueue(t, client, cfg.Names.Results())
	add := func(prompt string, offset int, opts *bullmq.JobOptions) string {
		id := uuid.NewString()
		opts.JobID = id
		if _, err := tasks.Add(context.Background(), taskqueue.JobName,
			taskqueue.Job{TaskID: id, Code: "c", Prompt: prompt, Timeout: 10_000, AttemptOffset: offset}, opts); err != nil {
			t.Fatal(err)
		}
		return id
	}
	ok := add("ok", 3, &bullmq.JobOptions{})
	if res, _ := waitResult(t, results, taskqueue.ResultJobID(ok, 3), 10*time.Second); res.Status != taskqueue.ResultCompleted {
		t.Errorf("completed result = %+v", res)
	}
	failed := add("fail", 2, &bullmq.JobOptions{Attempts: 2, Backoff: &bullmq.Backoff{Type: "fixed", Delay: 10 * time.Millisecond}})
	if res, _ := waitResult(t, results, taskqueue.ResultJobID(failed, 3), 10*time.Second); res.Status != taskqueue.ResultFailed {
		t.Errorf("failed result = %+v", res)
	}
}
