package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestAPISurface: /health reports Redis, /tasks/stats the queue counts,
// POST /tasks/{id}/cancel cancels a queued task (409 the second time), and
// /metrics exposes the orchestrator's metrics.
func TestAPISurface(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	queue := testenv.TaskQueue(t, "e2e")
	o := startOrchestrator(t, map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue,
		"DATABASE_URL": "sqlite://" + testenv.SQLitePath(t)})

	var health struct {
		Status string `json:"status"`
		Redis  struct {
			Connected       bool    `json:"connected"`
			LatencyMs       float64 `json:"latencyMs"`
			MaxmemoryPolicy string  `json:"maxmemoryPolicy"`
		} `json:"redis"`
		Database struct {
			Connected bool `json:"connected"`
		} `json:"database"`
	}
	if code, err := o.do("GET", "/health", nil, &health); err != nil || code != 200 {
		t.Fatalf("GET /health = %d, %v", code, err)
	}
	if health.Status != "healthy" || !health.Redis.Connected || !health.Database.Connected || health.Redis.MaxmemoryPolicy == "" {
		t.Errorf("health = %+v", health)
	}

	a, b := o.create("one"), o.create("two")
	var stats struct {
		Database struct {
			Queued int64 `json:"queued"`
		} `json:"database"`
		Queue struct {
			Available bool  `json:"available"`
			Waiting   int64 `json:"waiting"`
		} `json:"queue"`
	}
	if code, err := o.do("GET", "/tasks/stats", nil, &stats); err != nil || code != 200 {
		t.Fatalf("GET /tasks/stats = %d, %v", code, err)
	}
	if stats.Database.Queued != 2 || !stats.Queue.Available || stats.Queue.Waiting != 2 {
		t.Errorf("stats = %+v, want 2 queued and 2 waiting", stats)
	}

	var cancelled apiTask
	if code, err := o.do("POST", "/tasks/"+a.ID+"/cancel", nil, &cancelled); err != nil || code != 200 || cancelled.Status != "cancelled" {
		t.Fatalf("cancel = %d %v %s", code, err, cancelled.String())
	}
	if code, _ := o.do("POST", "/tasks/"+a.ID+"/cancel", nil, nil); code != http.StatusConflict {
		t.Errorf("second cancel = %d, want 409", code)
	}
	testenv.Eventually(t, 5*time.Second, "one waiting job after cancel", func() error {
		if _, err := o.do("GET", "/tasks/stats", nil, &stats); err != nil {
			return err
		}
		if stats.Queue.Waiting != 1 {
			return fmt.Errorf("%d waiting jobs, want 1 (%s still queued)", stats.Queue.Waiting, b.ID)
		}
		return nil
	})

	resp, err := http.Get(o.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"orchestrator_tasks_created_total 2", `orchestrator_tasks{status="cancelled"} 1`,
		"orchestrator_queue_jobs{", "orchestrator_redis_up 1", "orchestrator_database_up 1",
		"orchestrator_http_requests_total{", "orchestrator_http_request_duration_seconds_bucket{",
		"orchestrator_relay_backlog", "orchestrator_tasks_enqueued_total"} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics lacks %q", name)
		}
	}

	// SIGTERM: a graceful stop, background loops included.
	o.stop()
	logb, _ := os.ReadFile(o.logf)
	if !strings.Contains(string(logb), "msg=stopped") {
		t.Errorf("no graceful stop in the log:\n%s", testenv.Tail(string(logb), 3000))
	}
}
