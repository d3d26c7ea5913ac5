package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestLoad is the documented load run (skipped unless E2E_LOAD=1):
//
//	E2E_LOAD=1 go test -run TestLoad -v -timeout 10m ./test/e2e
//
// E2E_LOAD_TASKS (10000), E2E_LOAD_RATE (500), E2E_LOAD_DB (postgres, or
// sqlite) and E2E_LOAD_PG_PARAMS (extra connection parameters, e.g.
// synchronous_commit=off) change the run.
//
// The orchestrator runs on PostgreSQL and Redis on this machine; the
// worker is an in-process no-op Go bullmq worker (concurrency 64) that
// posts a completed result for each job. It reports:
//  1. create throughput: POST /tasks from 64 connections, no worker
//     running (each task stored and queued);
//  2. end-to-end throughput: the same with the worker running, from the
//     first create to the last task completed in the database;
//  3. create→completed latency (p50, p99, from the tasks' createdAt and
//     completedAt) at a steady 500 tasks/s.
func TestLoad(t *testing.T) {
	if os.Getenv("E2E_LOAD") != "1" {
		t.Skip("load run: set E2E_LOAD=1")
	}
	n := envInt("E2E_LOAD_TASKS", 10000)
	redisAddr := testenv.RedisAddr(t)
	queue := testenv.TaskQueue(t, "load")
	dbURL := testenv.PostgresURL(t)
	if extra := os.Getenv("E2E_LOAD_PG_PARAMS"); extra != "" { // e.g. synchronous_commit=off
		dbURL += "&" + extra
	}
	if os.Getenv("E2E_LOAD_DB") == "sqlite" {
		dbURL = "sqlite://" + testenv.SQLitePath(t)
	}
	o := startOrchestrator(t, map[string]string{"REDIS_URL": "redis://" + redisAddr, "QUEUE_NAME": queue,
		"DATABASE_URL": dbURL, "LOG_LEVEL": "warn"})
	client := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 200})
	defer client.Close()
	defer func() {
		q, _ := bullmq.NewQueue(client, queue, nil)
		r, _ := bullmq.NewQueue(client, queue+"-results", nil)
		_ = q.Obliterate(context.Background(), true)
		_ = r.Obliterate(context.Background(), true)
	}()
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	// 1. Create throughput, no worker.
	ids, elapsed := createMany(t, hc, o.url, n, 64, 0)
	t.Logf("create: %d tasks in %s = %.0f tasks/s (stored and queued)", len(ids), elapsed.Round(time.Millisecond), float64(len(ids))/elapsed.Seconds())

	// Start the no-op worker, drain the backlog.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	startNoopWorker(t, ctx, client, queue)
	start := time.Now()
	waitAllCompleted(t, o, ids, 5*time.Minute)
	t.Logf("drain: %d queued tasks completed in %s = %.0f tasks/s", len(ids), time.Since(start).Round(time.Millisecond), float64(len(ids))/time.Since(start).Seconds())

	// 2. End-to-end throughput with the worker running.
	start = time.Now()
	ids, elapsed = createMany(t, hc, o.url, n, 64, 0)
	last := waitAllCompleted(t, o, ids, 5*time.Minute)
	e2e := last.Sub(start)
	t.Logf("end to end: %d tasks created (%.0f/s) and completed in %s = %.0f tasks/s", len(ids), float64(len(ids))/elapsed.Seconds(), e2e.Round(time.Millisecond), float64(len(ids))/e2e.Seconds())

	// 3. Latency at 500 tasks/s for 10s.
	rate := envInt("E2E_LOAD_RATE", 500)
	ids, elapsed = createMany(t, hc, o.url, rate*10, 64, rate)
	waitAllCompleted(t, o, ids, 5*time.Minute)
	lat := latencies(t, o, ids)
	t.Logf("latency at %d tasks/s (%d tasks, sent in %s): p50 %s, p90 %s, p99 %s, max %s", rate, len(ids), elapsed.Round(time.Millisecond),
		pct(lat, 50), pct(lat, 90), pct(lat, 99), pct(lat, 100))
}

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err == nil && v > 0 {
		return v
	}
	return def
}

// createMany posts n tasks from conns goroutines, at rate per second in
// total (0: as fast as possible), and returns their ids and the time taken.
func createMany(t *testing.T, hc *http.Client, url string, n, conns, rate int) ([]string, time.Duration) {
	t.Helper()
	var (
		next  atomic.Int64
		mu    sync.Mutex
		ids   = make([]string, 0, n)
		fails atomic.Int64
		wg    sync.WaitGroup
	)
	body := `{"code":"print(1)","prompt":"noop","timeout":60000}`
	start := time.Now()
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if rate > 0 {
					if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
						time.Sleep(d)
					}
				}
				resp, err := hc.Post(url+"/tasks", "application/json", strings.NewReader(body))
				if err != nil {
					fails.Add(1)
					continue
				}
				var tk struct {
					ID string `json:"id"`
				}
				err = json.NewDecoder(resp.Body).Decode(&tk)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusCreated {
					fails.Add(1)
					continue
				}
				mu.Lock()
				ids = append(ids, tk.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if f := fails.Load(); f > 0 {
		t.Errorf("%d creates failed", f)
	}
	return ids, time.Since(start)
}

// startNoopWorker runs a Go bullmq worker that posts a completed result
// for every job and returns.
func startNoopWorker(t *testing.T, ctx context.Context, client redis.UniversalClient, queue string) {
	t.Helper()
	results, err := bullmq.NewQueue(client, queue+"-results", nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := bullmq.NewWorker(client, queue, func(ctx context.Context, job *bullmq.Job) (any, error) {
		var d struct {
			TaskID string `json:"taskId"`
		}
		_ = json.Unmarshal(job.Data, &d)
		_, err := results.Add(ctx, "result", map[string]any{"taskId": d.TaskID, "workerId": "noop", "status": "completed",
			"result": map[string]bool{"ok": true}, "executionTime": 0}, &bullmq.JobOptions{Attempts: 5, RemoveOnComplete: bullmq.KeepLast(1000)})
		return nil, err
	}, &bullmq.WorkerOptions{Name: "noop", Concurrency: 64})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.Run(ctx) }()
}

// waitAllCompleted polls the stats until every task is completed; it
// returns the latest completedAt.
func waitAllCompleted(t *testing.T, o *orchestrator, ids []string, timeout time.Duration) time.Time {
	t.Helper()
	testenv.Eventually(t, timeout, "every task completed", func() error {
		var st struct {
			Database struct {
				Total, Completed int64
			} `json:"database"`
		}
		if _, err := o.do("GET", "/tasks/stats", nil, &st); err != nil {
			return err
		}
		if st.Database.Total == 0 || st.Database.Completed < st.Database.Total {
			return fmt.Errorf("%d of %d completed", st.Database.Completed, st.Database.Total)
		}
		return nil
	})
	var last time.Time
	for _, id := range ids {
		tk, err := o.get(id)
		if err != nil || tk.CompletedAt == nil {
			t.Fatalf("task %s not completed: %v %s", id, err, tk.String())
		}
		if tk.CompletedAt.After(last) {
			last = *tk.CompletedAt
		}
	}
	return last
}

// latencies returns completedAt - createdAt of each task.
func latencies(t *testing.T, o *orchestrator, ids []string) []time.Duration {
	t.Helper()
	out := make([]time.Duration, 0, len(ids))
	for _, id := range ids {
		tk, err := o.get(id)
		if err != nil || tk.CompletedAt == nil {
			t.Fatalf("task %s: %v %s", id, err, tk.String())
		}
		out = append(out, tk.CompletedAt.Sub(tk.CreatedAt))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	if i > len(sorted) {
		i = len(sorted)
	}
	return sorted[i-1].Round(100 * time.Microsecond)
}
