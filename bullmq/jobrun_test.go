package bullmq

import (
	"context"
	"errors"
	"testing"
)

func TestGetJobRun(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "jobrun")
	ctx := context.Background()
	j := e.add("a", nil, nil)
	r, err := e.q.GetJobRun(ctx, j.ID)
	if err != nil || r.Taken() || r.ProcessedBy != "" {
		t.Fatalf("new job: %+v, %v; want not taken", r, err)
	}
	w, err := NewWorker(e.client, e.name, func(context.Context, *Job) (any, error) { return nil, nil },
		&WorkerOptions{Name: "runner", Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	w.initScripter()
	if res, err := w.fetchOnce(ctx); err != nil || res.job == nil {
		t.Fatalf("fetch: %v %v", res.job, err)
	}
	r, err = e.q.GetJobRun(ctx, j.ID)
	if err != nil || !r.Taken() || r.ProcessedBy != "runner" || r.AttemptsStarted != 1 || r.AttemptsMade != 0 ||
		r.ProcessedOn.IsZero() || !r.FinishedOn.IsZero() {
		t.Fatalf("taken job: %+v, %v", r, err)
	}
	if _, err := e.q.GetJobRun(ctx, "nope"); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("missing job: %v, want ErrJobNotFound", err)
	}
	if err := e.client.HSet(ctx, e.k.job("half"), "pb", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.q.GetJobRun(ctx, "half"); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("hash without a job: %v, want ErrJobNotFound", err)
	}
}
