package postgres

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/store/groupcommit"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestInsertBatch drives one batch directly, so that the multi-row INSERT
// and its fallback run whatever the timing: a duplicate id within the
// batch, an id already stored and (in the second batch) a task the CHECK
// constraints reject each fail alone.
func TestInsertBatch(t *testing.T) {
	s, err := Open(t.Context(), testenv.PostgresURL(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer s.Close()
	at := time.Now()
	mk := func() *task.Task {
		return &task.Task{ID: uuid.New(), Code: "c", Prompt: "p", Timeout: 1000, Status: task.StatusPending, CreatedAt: at, UpdatedAt: at}
	}
	stored := mk()
	if err := s.Create(t.Context(), stored); err != nil {
		t.Fatal(err)
	}
	for _, withInvalid := range []bool{false, true} {
		a, b := mk(), mk()
		// Every column goes through the batch's arrays.
		prio, status, lastErr := 7, 503, "503"
		b.Priority, b.Metadata, b.Owner, b.CallbackURL, b.Retries, b.AttemptOffset = &prio, []byte(`{"k":"v"}`), "team", &lastErr, 2, 3
		b.Webhook = &task.WebhookDelivery{State: task.WebhookQueued, Attempts: 1, LastStatus: &status, LastError: &lastErr}
		dupA := *a
		dupA.Code = "dup"
		dupStored := *stored
		batch := []*task.Task{a, &dupA, &dupStored, b}
		want := []error{nil, task.ErrConflict, task.ErrConflict, nil}
		if withInvalid {
			bad := mk()
			bad.Timeout = -1
			batch = append(batch, bad)
			want = append(want, errors.New("check violation"))
		}
		out := make([]groupcommit.Result[struct{}], len(batch))
		s.insertBatch(t.Context(), batch, out)
		for i, r := range out {
			switch {
			case want[i] == nil && r.Err != nil,
				errors.Is(want[i], task.ErrConflict) && !errors.Is(r.Err, task.ErrConflict),
				want[i] != nil && !errors.Is(want[i], task.ErrConflict) && (r.Err == nil || errors.Is(r.Err, task.ErrConflict)):
				t.Fatalf("invalid=%v: call %d: err = %v, want %v", withInvalid, i, r.Err, want[i])
			}
		}
		for _, tk := range []*task.Task{a, b} {
			if got, err := s.Get(t.Context(), tk.ID); err != nil || got.Code != "c" {
				t.Fatalf("invalid=%v: Get(%s) = %+v, %v", withInvalid, tk.ID, got, err)
			}
		}
		got, _ := s.Get(t.Context(), b.ID)
		if *got.Priority != 7 || string(got.Metadata) != `{"k": "v"}` || got.Owner != "team" || *got.CallbackURL != "503" ||
			got.Retries != 2 || got.AttemptOffset != 3 || got.Webhook == nil || got.Webhook.State != task.WebhookQueued ||
			got.Webhook.Attempts != 1 || *got.Webhook.LastStatus != 503 || *got.Webhook.LastError != "503" {
			t.Fatalf("batched task with every field: %+v (webhook %+v)", got, got.Webhook)
		}
	}
}

// TestApplyBatch drives one batch of changes directly: changes of the same
// task apply in order, a missing task and a conflict fail alone, and a
// change the CHECK constraints reject makes the batch's transaction roll
// back and rerun change by change, so that only that change fails.
func TestApplyBatch(t *testing.T) {
	s, err := Open(t.Context(), testenv.PostgresURL(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer s.Close()
	at := time.Now()
	args := func(c task.Change) applyArgs {
		a := applyArgs{c: c, at: at}
		for _, f := range c.From {
			a.from = append(a.from, string(f))
		}
		return a
	}
	for _, withBad := range []bool{false, true} {
		a, b := &task.Task{ID: uuid.New(), Code: "c", Prompt: "p", Timeout: 1000, Status: task.StatusPending, CreatedAt: at, UpdatedAt: at}, &task.Task{}
		*b = *a
		b.ID = uuid.New()
		for _, tk := range []*task.Task{a, b} {
			if err := s.Create(t.Context(), tk); err != nil {
				t.Fatal(err)
			}
		}
		batch := []applyArgs{args(task.MarkQueued(a.ID, at)), args(task.MarkQueued(a.ID, at)),
			args(task.MarkQueued(uuid.New(), at)), args(task.MarkRunning(a.ID, 1, "w", at))}
		if withBad {
			neg := int64(-5)
			batch = append(batch, args(task.MarkCompleted(b.ID, task.Outcome{Attempts: 1, ExecutionTime: &neg}, at)))
			batch[len(batch)-1].c.From = []task.Status{task.StatusPending}
			batch[len(batch)-1].from = []string{"pending"}
		}
		batch = append(batch, args(task.MarkQueued(b.ID, at)))
		out := make([]groupcommit.Result[*task.Task], len(batch))
		s.applyBatch(t.Context(), batch, out)
		if out[0].Err != nil || out[0].Val.Status != task.StatusQueued ||
			!errors.Is(out[1].Err, task.ErrConflict) || !errors.Is(out[2].Err, task.ErrNotFound) ||
			out[3].Err != nil || out[3].Val.Status != task.StatusRunning {
			t.Fatalf("bad=%v: outcomes %+v", withBad, out)
		}
		if withBad && (out[4].Err == nil || errors.Is(out[4].Err, task.ErrConflict)) {
			t.Fatalf("rejected change: err = %v, want the constraint error", out[4].Err)
		}
		if last := out[len(out)-1]; last.Err != nil || last.Val.Status != task.StatusQueued {
			t.Fatalf("bad=%v: last change: %+v", withBad, last)
		}
	}
}
