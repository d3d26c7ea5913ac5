package dispatch_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/task"
)

// countingStore counts the Stats reads of a real store.
type countingStore struct {
	task.Store
	stats atomic.Int64
}

func (s *countingStore) Stats(ctx context.Context) (task.Stats, error) {
	s.stats.Add(1)
	return s.Store.Stats(ctx)
}

// TestStateCollectorCaches: scrapes within the cache TTL read the database
// once, concurrent scrapes included; the figures are read again after it.
func TestStateCollectorCaches(t *testing.T) {
	store := &countingStore{Store: openStore(t, "sqlite")}
	svc := task.NewService(store, task.ServiceOptions{Logger: testLogger()})
	var (
		mu  sync.Mutex
		now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	const ttl = 10 * time.Second
	col, err := dispatch.NewStateCollector(svc, nil, nil, dispatch.StateCollectorOptions{CacheTTL: ttl, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	ctx := context.Background()
	create := func() {
		if _, err := svc.Create(ctx, task.NewTask{Code: "c", Prompt: "p"}); err != nil {
			t.Fatal(err)
		}
	}
	pending := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() == "orchestrator_tasks" && m.GetLabel()[0].GetValue() == "pending" {
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatal("no orchestrator_tasks{status=pending}")
		return 0
	}

	create()
	if n := pending(); n != 1 {
		t.Fatalf("pending = %v, want 1", n)
	}
	create()
	// A fast scraper, sequential then concurrent, within the TTL.
	for range 20 {
		if n := pending(); n != 1 {
			t.Fatalf("cached pending = %v, want 1 (the figure of the first read)", n)
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _, _ = reg.Gather() })
	}
	wg.Wait()
	advance(ttl - time.Nanosecond)
	pending()
	if n := store.stats.Load(); n != 1 {
		t.Errorf("%d database reads within the TTL, want 1", n)
	}
	// Expired: read again, once for concurrent scrapes.
	advance(time.Nanosecond)
	for range 8 {
		wg.Go(func() { _, _ = reg.Gather() })
	}
	wg.Wait()
	if n := pending(); n != 2 {
		t.Errorf("pending after the TTL = %v, want 2", n)
	}
	if n := store.stats.Load(); n != 2 {
		t.Errorf("%d database reads after one expiry, want 2", n)
	}
}

func TestStateCollectorOptions(t *testing.T) {
	svc := task.NewService(openStore(t, "sqlite"), task.ServiceOptions{Logger: testLogger()})
	for name, o := range map[string]dispatch.StateCollectorOptions{
		"negative TTL": {CacheTTL: -time.Second}, "negative timeout": {Timeout: -time.Second}} {
		if _, err := dispatch.NewStateCollector(svc, nil, nil, o); err == nil {
			t.Errorf("%s: nil error", name)
		}
	}
	if _, err := dispatch.NewStateCollector(nil, nil, nil, dispatch.StateCollectorOptions{}); err == nil {
		t.Error("nil service: nil error")
	}
}
