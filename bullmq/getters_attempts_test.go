package bullmq

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestGetJobAttempts(t *testing.T) {
	q, c := newTestQueue(t, time.Now())
	ctx := context.Background()
	if _, _, err := q.GetJobAttempts(ctx, "missing"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("missing job: %v, want ErrJobNotFound", err)
	}
	j, err := q.Add(ctx, "n", map[string]int{"x": 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	made, started, err := q.GetJobAttempts(ctx, j.ID)
	if err != nil || made != 0 || started != 0 {
		t.Fatalf("new job: %d %d %v, want 0 0", made, started, err)
	}
	if err := c.HSet(ctx, q.keys.job(j.ID), "atm", "2", "ats", "3").Err(); err != nil {
		t.Fatal(err)
	}
	made, started, err = q.GetJobAttempts(ctx, j.ID)
	if err != nil || made != 2 || started != 3 {
		t.Fatalf("got %d %d %v, want 2 3", made, started, err)
	}
	// Jobs written by old versions carry attemptsMade instead of atm.
	if err := c.HDel(ctx, q.keys.job(j.ID), "atm").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, q.keys.job(j.ID), "attemptsMade", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if made, _, err = q.GetJobAttempts(ctx, j.ID); err != nil || made != 1 {
		t.Fatalf("legacy attemptsMade: %d %v, want 1", made, err)
	}
}
