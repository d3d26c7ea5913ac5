package sqlite_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/store/sqlite"
	"github.com/agentorch/orchestrator/internal/store/storetest"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/testenv"
)

func open(tb testing.TB, dsn string) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("open store %s: %v", dsn, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) task.Store { return open(t, testenv.SQLitePath(t)) })
}

func TestConformanceInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) task.Store { return open(t, ":memory:") })
}

func TestOpenForms(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ dsn, file string }{
		{filepath.Join(dir, "plain", "a.db"), filepath.Join(dir, "plain", "a.db")},
		{"sqlite://" + filepath.Join(dir, "url", "b.db"), filepath.Join(dir, "url", "b.db")}, // sqlite:///abs/path
		{"sqlite:" + filepath.Join(dir, "opaque", "c.db"), filepath.Join(dir, "opaque", "c.db")},
		{"file:" + filepath.Join(dir, "uri", "d.db") + "?cache=private", filepath.Join(dir, "uri", "d.db")},
		{"file://" + filepath.Join(dir, "uri2", "e.db"), filepath.Join(dir, "uri2", "e.db")},
		{":memory:", ""},
	} {
		dsn := tc.dsn
		t.Run(dsn, func(t *testing.T) {
			s := open(t, dsn)
			tk := &task.Task{ID: uuid.New(), Code: "c", Prompt: "p", Timeout: 1000, Status: task.StatusPending,
				CreatedAt: time.Now(), UpdatedAt: time.Now()}
			if err := s.Create(t.Context(), tk); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(t.Context(), tk.ID); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if tc.file != "" {
				if _, err := os.Stat(tc.file); err != nil {
					t.Fatalf("database file: %v", err)
				}
			}
		})
	}
}

// TestReopen checks that data and migrations survive a restart.
func TestReopen(t *testing.T) {
	path := testenv.SQLitePath(t)
	s := open(t, path)
	tk := &task.Task{ID: uuid.New(), Code: "c", Prompt: "p", Timeout: 1000, Status: task.StatusPending,
		CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.Create(t.Context(), tk); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, "sqlite://"+path)
	defer s.Close()
	if _, err := s.Get(t.Context(), tk.ID); err != nil {
		t.Fatalf("task lost after reopen: %v", err)
	}
}

// TestTwoStoresOneFile: two stores (as two processes would) write the same
// file concurrently without "database is locked".
func TestTwoStoresOneFile(t *testing.T) {
	path := testenv.SQLitePath(t)
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	errs := make(chan error, 2)
	for _, s := range []*sqlite.Store{a, b} {
		go func() {
			for range 200 {
				at := time.Now()
				tk := &task.Task{ID: uuid.New(), Code: "c", Prompt: "p", Timeout: 1000, Status: task.StatusPending,
					CreatedAt: at, UpdatedAt: at}
				if err := s.Create(t.Context(), tk); err != nil {
					errs <- err
					return
				}
				if _, err := s.Apply(t.Context(), task.MarkQueued(tk.ID, at)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st, err := a.Stats(t.Context())
	if err != nil || st.Queued != 400 {
		t.Fatalf("stats = %+v, %v; want 400 queued", st, err)
	}
}

// BenchmarkCreate measures concurrent inserts with ~50 goroutines.
func BenchmarkCreate(b *testing.B) {
	s := open(b, testenv.SQLitePath(b))
	defer s.Close()
	storetest.BenchCreate(b, s, false)
}

// BenchmarkCreateQueued measures concurrent inserts each followed by MarkQueued with ~50 goroutines.
func BenchmarkCreateQueued(b *testing.B) {
	s := open(b, testenv.SQLitePath(b))
	defer s.Close()
	storetest.BenchCreate(b, s, true)
}
