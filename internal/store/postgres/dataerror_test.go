package postgres_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/task"
)

// TestDataErrorsAreInvalidData: what PostgreSQL refuses as data (SQLSTATE
// class 22: a NUL or invalid UTF-8 in text, \u0000 in jsonb; class 23: a
// CHECK constraint) is task.ErrInvalidData, for changes built past the task
// package's sanitising and for creates, alone and in group-committed
// batches; nothing is changed.
func TestDataErrorsAreInvalidData(t *testing.T) {
	s := open(t)
	defer s.Close()
	ctx := t.Context()
	at := time.Now()
	newTask := func() *task.Task {
		return &task.Task{ID: uuid.New(), Code: "c", Prompt: "p", Timeout: 1000, Status: task.StatusPending, CreatedAt: at, UpdatedAt: at}
	}
	tk := newTask()
	if err := s.Create(ctx, tk); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]task.Change{
		"NUL in text (22021)":       {ID: tk.ID, To: task.StatusFailed, From: []task.Status{task.StatusPending}, ErrorMessage: ptr("a\x00b"), At: at},
		"invalid UTF-8 (22021)":     {ID: tk.ID, To: task.StatusFailed, From: []task.Status{task.StatusPending}, WorkerID: ptr("w\xff"), At: at},
		"\\u0000 in jsonb (22P05)":  {ID: tk.ID, To: task.StatusCompleted, From: []task.Status{task.StatusPending}, Result: []byte(`"\u0000"`), At: at},
		"negative attempts (23514)": {ID: tk.ID, To: task.StatusQueued, From: []task.Status{task.StatusPending}, ExecutionTime: ptr(int64(-1)), At: at},
		"result not JSON (22P02)":   {ID: tk.ID, To: task.StatusCompleted, From: []task.Status{task.StatusPending}, Result: []byte(`{`), At: at},
	} {
		if _, err := s.Apply(ctx, c); !errors.Is(err, task.ErrInvalidData) {
			t.Errorf("%s: Apply err = %v, want ErrInvalidData", name, err)
		}
	}
	if got, err := s.Get(ctx, tk.ID); err != nil || got.Status != task.StatusPending || got.ErrorMessage != nil {
		t.Errorf("refused changes modified the task: %+v, %v", got, err)
	}
	// Creates: alone and among valid ones (one batch, then one by one).
	bad := newTask()
	bad.Timeout = 0 // CHECK (timeout_ms > 0): 23514
	if err := s.Create(ctx, bad); !errors.Is(err, task.ErrInvalidData) {
		t.Errorf("Create(timeout 0) err = %v, want ErrInvalidData", err)
	}
	errs := make(chan error, 3)
	nul := newTask()
	nul.Code = "x\x00"
	for _, c := range []*task.Task{newTask(), nul, newTask()} {
		go func() { errs <- s.Create(ctx, c) }()
	}
	var invalid int
	for range 3 {
		switch err := <-errs; {
		case errors.Is(err, task.ErrInvalidData):
			invalid++
		case err != nil:
			t.Errorf("Create in batch: %v", err)
		}
	}
	if invalid != 1 {
		t.Errorf("%d creates refused as invalid data, want 1", invalid)
	}
}

func ptr[T any](v T) *T { return &v }
