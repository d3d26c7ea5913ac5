package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/store/postgres"
	"github.com/agentorch/orchestrator/internal/store/storetest"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/testenv"
)

func open(tb testing.TB) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(tb.Context(), testenv.PostgresURL(tb), slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) task.Store { return open(t) })
}

func TestOpenTwiceMigratesOnce(t *testing.T) {
	url := testenv.PostgresURL(t)
	for range 2 {
		s, err := postgres.Open(t.Context(), url, nil)
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenUnreachable(t *testing.T) {
	port := testenv.FreePort(t)
	_, err := postgres.Open(t.Context(), fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable&connect_timeout=2", port), nil)
	if err == nil {
		t.Fatal("Open on a closed port succeeded")
	}
}

// BenchmarkCreate measures concurrent inserts with ~50 goroutines.
func BenchmarkCreate(b *testing.B) {
	s := open(b)
	defer s.Close()
	storetest.BenchCreate(b, s, false)
}

// BenchmarkCreateQueued measures concurrent inserts each followed by MarkQueued with ~50 goroutines.
func BenchmarkCreateQueued(b *testing.B) {
	s := open(b)
	defer s.Close()
	storetest.BenchCreate(b, s, true)
}

// TestReconnect: the store survives a database restart; while the database
// is down, calls fail with an error that is neither ErrNotFound nor ErrConflict.
func TestReconnect(t *testing.T) {
	srv := testenv.StartPostgres(t)
	s, err := postgres.Open(t.Context(), srv.URL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer s.Close()
	at := time.Now()
	tk := &task.Task{ID: uuid.New(), Code: "c", Prompt: "p", Timeout: 1000, Status: task.StatusPending, CreatedAt: at, UpdatedAt: at}
	if err := s.Create(t.Context(), tk); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	_, err = s.Apply(ctx, task.MarkQueued(tk.ID, at))
	cancel()
	if err == nil || errors.Is(err, task.ErrConflict) || errors.Is(err, task.ErrNotFound) {
		t.Fatalf("Apply with the database down: err = %v, want a connection error", err)
	}
	srv.Start()
	testenv.Eventually(t, 15*time.Second, "the store to reconnect", func() error { return s.Ping(t.Context()) })
	if _, err := s.Apply(t.Context(), task.MarkQueued(tk.ID, at)); err != nil {
		t.Fatalf("Apply after restart: %v", err)
	}
}
