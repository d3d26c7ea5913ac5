package bullmqtest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

func TestUniqueName(t *testing.T) {
	a, b := bullmqtest.UniqueName(t, "q"), bullmqtest.UniqueName(t, "q")
	if a == b || !strings.HasPrefix(a, "q-") || len(a) != len("q-")+12 {
		t.Fatalf("UniqueName gave %q and %q", a, b)
	}
}

// recordingTB is a testing.TB whose Fatalf and Skipf record the message
// instead of stopping the test.
type recordingTB struct {
	testing.TB
	fatal, skip string
}

func (r *recordingTB) Helper()                           {}
func (r *recordingTB) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recordingTB) Skipf(format string, args ...any)  { r.skip = fmt.Sprintf(format, args...) }

func TestEventually(t *testing.T) {
	n := 0
	bullmqtest.Eventually(t, 5*time.Second, "third call", func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}

	r := &recordingTB{TB: t}
	bullmqtest.Eventually(r, 50*time.Millisecond, "never", func() error { return errors.New("still broken") })
	if !strings.Contains(r.fatal, "never") || !strings.Contains(r.fatal, "still broken") {
		t.Fatalf("failure message %q names neither what nor the last error", r.fatal)
	}

	r = &recordingTB{TB: t}
	bullmqtest.WaitFor(r, 50*time.Millisecond, "false", func() bool { return false })
	if !strings.Contains(r.fatal, "false") {
		t.Fatalf("WaitFor failure message %q", r.fatal)
	}
}

func TestUnavailable(t *testing.T) {
	for _, ci := range []string{"true", ""} {
		t.Setenv("CI", ci)
		r := &recordingTB{TB: t}
		bullmqtest.Unavailable(r, "no %s", "service")
		if ci == "true" && (r.fatal == "" || r.skip != "") || ci == "" && (r.skip == "" || r.fatal != "") {
			t.Errorf("CI=%q: fatal %q, skip %q", ci, r.fatal, r.skip)
		}
	}
}

func TestQueueNameCleansItsKeys(t *testing.T) {
	c := bullmqtest.RedisClient(t)
	ctx := t.Context()
	var name string
	t.Run("inner", func(t *testing.T) {
		name = bullmqtest.QueueName(t, "cleaned")
		for _, k := range []string{"bull:" + name + ":wait", "bull:" + name + ":1"} {
			if err := c.Set(ctx, k, "v", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})
	keys, err := c.Keys(ctx, "bull:"+name+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("keys left after cleanup: %v", keys)
	}
}

func TestStartRedis(t *testing.T) {
	s := bullmqtest.StartRedis(t)
	opts, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ping := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	}
	if err := ping(); err != nil {
		t.Fatalf("ping fresh server: %v", err)
	}
	s.Kill()
	if err := ping(); err == nil {
		t.Fatal("ping after Kill succeeded")
	}
	s.Start()
	if err := ping(); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
	s.Stop()
	if err := ping(); err == nil {
		t.Fatal("ping after Stop succeeded")
	}
	s.Start()
	if err := ping(); err != nil {
		t.Fatalf("ping after second restart: %v", err)
	}
}
