package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/store/groupcommit"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestWriteBatch drives one batch directly: a duplicate id, a CHECK
// violation and an unknown id fail alone inside the shared transaction; an
// op failing otherwise makes the batch roll back and rerun op by op, so
// only that op fails.
func TestWriteBatch(t *testing.T) {
	s, err := Open(t.Context(), testenv.SQLitePath(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Now()
	mk := func() *task.Task {
		return &task.Task{ID: uuid.New(), Code: "c", Prompt: "p", Timeout: 1000, Status: task.StatusPending, CreatedAt: at, UpdatedAt: at}
	}
	ins := func(tk *task.Task) writeOp {
		return func(ctx context.Context, tx *sql.Tx) (*task.Task, error) { return nil, s.insertTx(ctx, tx, tk) }
	}
	queue := func(id uuid.UUID) writeOp {
		return func(ctx context.Context, tx *sql.Tx) (*task.Task, error) {
			return s.updateTx(ctx, tx, task.MarkQueued(id, at), `["pending"]`, at)
		}
	}
	boom := errors.New("boom")
	for _, withBoom := range []bool{false, true} {
		a := mk()
		bad := mk()
		bad.Timeout = 0
		ops := []writeOp{ins(a), ins(a), ins(bad), queue(a.ID), queue(uuid.New())}
		if withBoom {
			ops = append(ops, func(context.Context, *sql.Tx) (*task.Task, error) { return nil, boom })
		}
		out := make([]groupcommit.Result[*task.Task], len(ops))
		s.writeBatch(t.Context(), ops, out)
		if out[0].Err != nil || !errors.Is(out[1].Err, task.ErrConflict) || out[2].Err == nil ||
			errors.Is(out[2].Err, task.ErrConflict) || out[3].Err != nil || out[3].Val.Status != task.StatusQueued ||
			!errors.Is(out[4].Err, task.ErrNotFound) {
			t.Fatalf("boom=%v: outcomes %+v", withBoom, out)
		}
		if withBoom && !errors.Is(out[5].Err, boom) {
			t.Fatalf("failing op: err = %v", out[5].Err)
		}
		if got, err := s.Get(t.Context(), a.ID); err != nil || got.Status != task.StatusQueued {
			t.Fatalf("boom=%v: Get = %+v, %v", withBoom, got, err)
		}
	}
}
