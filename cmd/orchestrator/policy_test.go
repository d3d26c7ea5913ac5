package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestBinaryRefusesEvictingRedis: on a Redis whose maxmemory-policy is not
// noeviction the orchestrator exits 1 with a message that says what to do,
// unless REDIS_ALLOW_EVICTION=true, with which it serves.
func TestBinaryRefusesEvictingRedis(t *testing.T) {
	srv := testenv.StartRedisArgs(t, "--maxmemory-policy", "volatile-lru")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t))
	cmd.Dir = t.TempDir()
	cmd.Env = baseEnv(fmt.Sprintf("PORT=%d", testenv.FreePort(t)), "REDIS_URL="+srv.URL(), "LOG_FORMAT=text")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1:\n%s", err, out)
	}
	for _, want := range []string{"maxmemory-policy", "volatile-lru", "noeviction", "REDIS_ALLOW_EVICTION"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
	p := start(t, t.TempDir(), "REDIS_URL="+srv.URL(), "REDIS_ALLOW_EVICTION=true")
	getTask(t, p.base, postTask(t, p.base))
	if err := p.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
	}
}
