package config

import (
	"strings"
	"testing"
)

// TestTrustSettings: TASK_RETRY_ON_TIMEOUT and REDIS_ALLOW_EVICTION
// (orchestrator) and WORKER_MAX_STALLED (worker): defaults, values, and
// errors that name the variable.
func TestTrustSettings(t *testing.T) {
	o, err := LoadOrchestrator(map[string]string{})
	if err != nil || o.TaskRetryOnTimeout || o.RedisAllowEviction {
		t.Fatalf("orchestrator defaults: retry on timeout %v, allow eviction %v, %v; want false, false",
			o.TaskRetryOnTimeout, o.RedisAllowEviction, err)
	}
	o, err = LoadOrchestrator(map[string]string{"TASK_RETRY_ON_TIMEOUT": "true", "REDIS_ALLOW_EVICTION": "1"})
	if err != nil || !o.TaskRetryOnTimeout || !o.RedisAllowEviction {
		t.Fatalf("orchestrator values: %v %v %v", o.TaskRetryOnTimeout, o.RedisAllowEviction, err)
	}
	w, err := LoadWorker(map[string]string{"WORKER_EXECUTOR": "noop"})
	if err != nil || w.MaxStalled != 3 {
		t.Fatalf("WORKER_MAX_STALLED default = %d, %v; want 3", w.MaxStalled, err)
	}
	w, err = LoadWorker(map[string]string{"WORKER_EXECUTOR": "noop", "WORKER_MAX_STALLED": "5"})
	if err != nil || w.MaxStalled != 5 {
		t.Fatalf("WORKER_MAX_STALLED=5 gives %d, %v", w.MaxStalled, err)
	}
	for name, env := range map[string]map[string]string{
		"TASK_RETRY_ON_TIMEOUT": {"TASK_RETRY_ON_TIMEOUT": "maybe"},
		"REDIS_ALLOW_EVICTION":  {"REDIS_ALLOW_EVICTION": "sure"},
	} {
		if _, err := LoadOrchestrator(env); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: err = %v, want one naming %s", env, err, name)
		}
	}
	for _, v := range []string{"0", "-1", "x"} {
		_, err := LoadWorker(map[string]string{"WORKER_EXECUTOR": "noop", "WORKER_MAX_STALLED": v})
		if err == nil || !strings.Contains(err.Error(), "WORKER_MAX_STALLED") {
			t.Errorf("WORKER_MAX_STALLED=%s: err = %v, want one naming it", v, err)
		}
	}
}
