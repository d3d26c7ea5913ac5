package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/dispatch"
)

func TestCleanerAndStats(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{Attempts: 1, KeepCompletedCount: 1000})
	tks := e.create(4)
	e.worker("wk", 2, func(ctx context.Context, job *bullmq.Job) (any, error) {
		if jobData(t, job).TaskID == tks[0].ID.String() {
			return nil, errors.New("no")
		}
		return nil, nil
	})
	waitQueueSettled(t, e, e.tasks, 4)
	stats := dispatch.NewQueueStats(e.tasks)
	c, err := stats.QueueCounts(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Completed != 3 || c.Failed != 1 || c.Waiting != 0 {
		t.Errorf("counts = %+v, want 3 completed 1 failed", c)
	}

	reg := prometheus.NewRegistry()
	m, err := dispatch.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := dispatch.NewCleaner([]*bullmq.Queue{e.tasks, e.results}, dispatch.CleanerOptions{
		CompletedAge: time.Millisecond, FailedAge: time.Hour, Logger: e.log, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // let the finished jobs pass CompletedAge
	if err := cl.Clean(e.ctx); err != nil {
		t.Fatal(err)
	}
	if c, err = stats.QueueCounts(e.ctx); err != nil {
		t.Fatal(err)
	}
	if c.Completed != 0 || c.Failed != 1 {
		t.Errorf("after clean: %+v, want 0 completed, 1 failed (younger than FailedAge)", c)
	}

	// Health and state metrics.
	h := dispatch.NewRedisChecker(e.client, 0).CheckRedis(e.ctx)
	if !h.Connected || h.MaxmemoryPolicy == "" {
		t.Errorf("redis health = %+v", h)
	}
	col, err := dispatch.NewStateCollector(e.svc, []*bullmq.Queue{e.tasks}, dispatch.NewRedisChecker(e.client, 0), dispatch.StateCollectorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(col)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, name := range []string{"orchestrator_tasks", "orchestrator_queue_jobs", "orchestrator_redis_up",
		"orchestrator_database_up", "orchestrator_queue_cleaned_jobs_total"} {
		if !seen[name] {
			t.Errorf("metric %s missing", name)
		}
	}
}
