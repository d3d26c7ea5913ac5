package dispatch_test

import (
	"errors"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/redisconn"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestEvictionPolicy: on a Redis whose maxmemory-policy may evict keys,
// CheckEvictionPolicy fails with ErrEvictionPolicy (unless AllowEviction),
// no job is added (the task stays pending), the health says Refused; once
// the policy is noeviction, jobs are added again without a restart. A
// Redis that is down at start gives a connection error, not a refusal.
func TestEvictionPolicy(t *testing.T) {
	srv := testenv.StartRedisArgs(t, "--maxmemory-policy", "allkeys-lru")
	client, err := redisconn.New(redisconn.Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := t.Context()
	names := taskqueue.Names{Queue: testenv.UniqueName(t, "policy")}
	newDispatcher := func(allow bool) *dispatch.Dispatcher {
		d, err := dispatch.New(client, dispatch.Options{Names: names, Logger: testLogger(), AllowEviction: allow})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	d := newDispatcher(false)
	if err := d.CheckEvictionPolicy(ctx); !errors.Is(err, dispatch.ErrEvictionPolicy) {
		t.Fatalf("CheckEvictionPolicy = %v, want ErrEvictionPolicy", err)
	}
	if err := newDispatcher(true).CheckEvictionPolicy(ctx); err != nil {
		t.Errorf("with AllowEviction: %v", err)
	}
	svc := task.NewService(openStore(t, "sqlite"), task.ServiceOptions{Enqueuer: d.Enqueuer(), Logger: testLogger()})
	tk, err := svc.Create(ctx, task.NewTask{Code: "c", Prompt: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if tk.Status != task.StatusPending {
		t.Errorf("task created on a refused Redis is %s, want pending", tk.Status)
	}
	if _, err := svc.Enqueue(ctx, tk); !errors.Is(err, dispatch.ErrEvictionPolicy) {
		t.Errorf("Enqueue = %v, want ErrEvictionPolicy", err)
	}
	if h := d.CheckRedis(ctx); !h.Connected || !h.Refused || h.MaxmemoryPolicy != "allkeys-lru" || h.Warning == "" {
		t.Errorf("health = %+v, want connected, refused, with a warning", h)
	}
	if err := client.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		queued, err := svc.Enqueue(ctx, tk)
		if err == nil && queued.Status == task.StatusQueued {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no job added after the policy was fixed: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if h := d.CheckRedis(ctx); h.Refused {
		t.Errorf("health still refused after the fix: %+v", h)
	}

	// Down at start: not a refusal; the policy is read when Redis answers.
	srv.Stop()
	down := newDispatcher(false)
	if err := down.CheckEvictionPolicy(ctx); err == nil || errors.Is(err, dispatch.ErrEvictionPolicy) {
		t.Errorf("CheckEvictionPolicy with Redis down = %v, want a connection error", err)
	}
	srv.Start() // comes back with allkeys-lru (its start arguments)
	svc2 := task.NewService(openStore(t, "sqlite"), task.ServiceOptions{Enqueuer: down.Enqueuer()})
	tk2, err := svc2.Create(ctx, task.NewTask{Code: "c", Prompt: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if tk2.Status != task.StatusPending {
		t.Errorf("task created after Redis came back with a bad policy is %s, want pending", tk2.Status)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := svc2.Enqueue(ctx, tk2)
		if errors.Is(err, dispatch.ErrEvictionPolicy) {
			break
		}
		if err == nil || time.Now().After(deadline) {
			t.Fatalf("Enqueue after Redis came back with a bad policy = %v, want ErrEvictionPolicy", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
