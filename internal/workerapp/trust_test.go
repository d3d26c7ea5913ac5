package workerapp

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/executor"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// requestCancel cancels task id as the orchestrator does: it records the
// request in the cancel requests set, then publishes the id.
func requestCancel(t *testing.T, client redis.UniversalClient, cfg *Config, id string) {
	t.Helper()
	ctx := context.Background()
	key := cfg.Names.CancelRequests()
	if err := client.ZAdd(ctx, key, redis.Z{Score: float64(time.Now().UnixMilli()), Member: id}).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Del(context.Background(), key) })
	if err := client.Publish(ctx, cfg.Names.CancelChannel(), id).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestForgedCancelIsIgnored: a task id published on the cancel channel by
// anyone but the orchestrator (not in the cancel requests set, or recorded
// too long ago) stops nothing; the task runs to its end.
func TestForgedCancelIsIgnored(t *testing.T) {
	client := testenv.RedisClient(t)
	cfg := testConfig(t)
	release := make(chan struct{})
	exec := &funcExecutor{fn: func(ctx context.Context, in executor.Input) (executor.Output, error) {
		select {
		case <-release:
			return executor.Output{Result: json.RawMessage(`"finished"`)}, nil
		case <-ctx.Done():
			return executor.Output{}, context.Cause(ctx)
		}
	}}
	app, _ := startApp(t, client, cfg, exec)
	<-app.Subscribed()
	tasks := newQueue(t, client, cfg.Names.Tasks())
	results := newQueue(t, client, cfg.Names.Results())
	id := addTask(t, tasks, "p", &bullmq.JobOptions{Attempts: 1})
	testenv.WaitFor(t, 10*time.Second, "task running", func() bool { return app.running.count() == 1 })

	ctx := context.Background()
	// Not recorded at all, then recorded two hours ago.
	if err := client.Publish(ctx, cfg.Names.CancelChannel(), id).Err(); err != nil {
		t.Fatal(err)
	}
	old := float64(time.Now().Add(-2 * time.Hour).UnixMilli())
	if err := client.ZAdd(ctx, cfg.Names.CancelRequests(), redis.Z{Score: old, Member: id}).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Del(context.Background(), cfg.Names.CancelRequests()) })
	if err := client.Publish(ctx, cfg.Names.CancelChannel(), id).Err(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "two cancels rejected", func() bool {
		return metricValue(t, app.registry, "worker_cancel_requests_total", string(cancelRejected)) == 2
	})
	if app.running.count() != 1 {
		t.Fatal("a forged cancel stopped the task")
	}
	close(release)
	res, _ := waitResult(t, results, taskqueue.ResultJobID(id, 0), 10*time.Second)
	if res.Status != taskqueue.ResultCompleted || string(res.Result) != `"finished"` {
		t.Errorf("result after forged cancels = %+v, want completed", res)
	}
	if n := metricValue(t, app.registry, "worker_cancel_requests_total", string(cancelApplied)); n != 0 {
		t.Errorf("%v cancels applied, want 0", n)
	}
}

// TestTimeoutIsNotRetriedByDefault: a run stopped by its timeout fails the
// task at once ("timed out after …", unrecoverable) unless the job's data
// says retryOnTimeout, in which case BullMQ retries it.
func TestTimeoutIsNotRetriedByDefault(t *testing.T) {
	for _, retry := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "retryOnTimeout"}[retry], func(t *testing.T) {
			client := testenv.RedisClient(t)
			cfg := testConfig(t)
			cmd, err := executor.NewCommand([]string{"sh", "-c", "cat >/dev/null; sleep 30"}, executor.ProcessOptions{KillGrace: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			startApp(t, client, cfg, cmd)
			tasks := newQueue(t, client, cfg.Names.Tasks())
			results := newQueue(t, client, cfg.Names.Results())
			id := "timeout-" + strings.ReplaceAll(t.Name(), "/", "-")
			data := taskqueue.Job{TaskID: id, Code: "c", Prompt: "p", Timeout: 300, RetryOnTimeout: retry}
			if _, err := tasks.Add(context.Background(), taskqueue.JobName, data, &bullmq.JobOptions{JobID: id, Attempts: 2}); err != nil {
				t.Fatal(err)
			}
			if !retry {
				res, _ := waitResult(t, results, taskqueue.ResultJobID(id, 0), 15*time.Second)
				if res.Status != taskqueue.ResultFailed || res.ErrorMessage == nil || !strings.HasPrefix(*res.ErrorMessage, taskqueue.TimeoutReason) {
					t.Errorf("result = %+v, want failed with %q…", res, taskqueue.TimeoutReason)
				}
				testenv.WaitFor(t, 10*time.Second, "task job failed", func() bool { return jobState(t, tasks, id) == bullmq.StateFailed })
				job, err := tasks.GetJob(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if job.AttemptsMade != 1 || !strings.HasPrefix(job.FailedReason, taskqueue.TimeoutReason) {
					t.Errorf("job: %d attempts, reason %q; want 1 attempt, %q…", job.AttemptsMade, job.FailedReason, taskqueue.TimeoutReason)
				}
				return
			}
			// Retried: the second (last) attempt's failure is the final one.
			res, _ := waitResult(t, results, taskqueue.ResultJobID(id, 1), 15*time.Second)
			if res.Status != taskqueue.ResultFailed || !strings.HasPrefix(*res.ErrorMessage, taskqueue.TimeoutReason) {
				t.Errorf("result = %+v", res)
			}
			if _, err := results.GetJob(context.Background(), taskqueue.ResultJobID(id, 0)); !errors.Is(err, bullmq.ErrJobNotFound) {
				t.Errorf("a result was posted for the retried first attempt: %v", err)
			}
		})
	}
}

// TestResultSquattedIDIsRerouted: when a job already sits under the
// result job id of a run (added by someone else), the worker posts its
// result under another id and names that id in its return value, so the
// genuine outcome reaches the orchestrator.
func TestResultSquattedIDIsRerouted(t *testing.T) {
	client := testenv.RedisClient(t)
	cfg := testConfig(t)
	exec := &funcExecutor{fn: func(ctx context.Context, in executor.Input) (executor.Output, error) {
		return executor.Output{Result: json.RawMessage(`{"genuine":true}`)}, nil
	}}
	app, _ := startApp(t, client, cfg, exec)
	tasks := newQueue(t, client, cfg.Names.Tasks())
	results := newQueue(t, client, cfg.Names.Results())
	id := "squatted-task"
	forged := taskqueue.Result{TaskID: id, WorkerID: "evil", Status: taskqueue.ResultCompleted, Result: json.RawMessage(`"forged"`)}
	if _, err := results.Add(context.Background(), taskqueue.ResultJobName, forged,
		&bullmq.JobOptions{JobID: taskqueue.ResultJobID(id, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tasks.Add(context.Background(), taskqueue.JobName, taskqueue.Job{TaskID: id, Code: "c", Prompt: "p"},
		&bullmq.JobOptions{JobID: id}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "task job completed", func() bool { return jobState(t, tasks, id) == bullmq.StateCompleted })
	job, err := tasks.GetJob(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	rv, ok := taskqueue.ParseReturnValue(job.ReturnValue)
	if !ok || rv.ResultJobID == taskqueue.ResultJobID(id, 0) {
		t.Fatalf("return value %s: want a result job id other than the squatted one", job.ReturnValue)
	}
	if tid, n, ok := taskqueue.ParseResultJobID(rv.ResultJobID); !ok || tid != id || n != 0 {
		t.Errorf("rerouted id %q does not follow the contract", rv.ResultJobID)
	}
	res, _ := waitResult(t, results, rv.ResultJobID, 5*time.Second)
	if res.WorkerID != cfg.WorkerID || string(res.Result) != `{"genuine":true}` {
		t.Errorf("rerouted result = %+v", res)
	}
	if n := metricValue(t, app.registry, "worker_results_rerouted_total", ""); n != 1 {
		t.Errorf("worker_results_rerouted_total = %v, want 1", n)
	}
}

// metricValue returns the value of the counter name in reg whose label
// values include label ("" for a counter without labels).
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
			if label == "" && len(m.GetLabel()) == 0 {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestJobSurvivesTwoRollingRestarts: with the default WORKER_MAX_STALLED, a
// job that already stalled twice (two workers stopped under it, as two
// rolling restarts do) and stalls a third time is still run, not failed as
// "stalled more than allowable limit" (BullMQ's default allows one).
func TestJobSurvivesTwoRollingRestarts(t *testing.T) {
	client := testenv.RedisClient(t)
	cfg := testConfig(t)
	ctx := context.Background()
	tasks := newQueue(t, client, cfg.Names.Tasks())
	results := newQueue(t, client, cfg.Names.Results())
	id := addTask(t, tasks, "p", &bullmq.JobOptions{Attempts: 1})
	// The job as a stopped worker leaves it: active, no lock, a suspect of
	// the next stalled check, already stalled twice.
	base := cfg.Names.Prefix + ":" + cfg.Names.Tasks() + ":"
	if err := client.LRem(ctx, base+"wait", 0, id).Err(); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		client.LPush(ctx, base+"active", id).Err(),
		client.SAdd(ctx, base+"stalled", id).Err(),
		client.HSet(ctx, base+id, "stc", "2", "ats", "2").Err(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	exec := &funcExecutor{fn: func(context.Context, executor.Input) (executor.Output, error) {
		return executor.Output{Result: json.RawMessage(`"ran"`)}, nil
	}}
	startApp(t, client, cfg, exec)
	res, _ := waitResult(t, results, taskqueue.ResultJobID(id, 0), 15*time.Second)
	if res.Status != taskqueue.ResultCompleted || string(res.Result) != `"ran"` {
		t.Errorf("result after a third stall = %+v, want completed", res)
	}
}
