package task_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/task"
)

// memStore is a minimal task.Store for service tests: Create, Get and Apply
// (with Change.Allows); the rest is unused.
type memStore struct {
	task.Store // unused methods panic
	mu         sync.Mutex
	tasks      map[uuid.UUID]task.Task
	lastList   *task.ListQuery
}

func newMemStore() *memStore { return &memStore{tasks: map[uuid.UUID]task.Task{}} }

func (m *memStore) Create(_ context.Context, t *task.Task) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tasks[t.ID] = *t
	return nil
}

func (m *memStore) Get(_ context.Context, id uuid.UUID) (*task.Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[id]
	if !ok {
		return nil, task.ErrNotFound
	}
	return &t, nil
}

func (m *memStore) Apply(_ context.Context, c task.Change) (*task.Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[c.ID]
	if !ok {
		return nil, task.ErrNotFound
	}
	if !c.Allows(t.Status, t.Attempts) {
		return nil, task.ErrConflict
	}
	t.Status, t.UpdatedAt = c.To, c.At
	t.Attempts = max(t.Attempts, c.Attempts)
	m.tasks[c.ID] = t
	return &t, nil
}

func (m *memStore) List(_ context.Context, q task.ListQuery) ([]*task.Task, *task.Cursor, error) {
	m.lastList = &q
	return nil, nil, nil
}

func (m *memStore) set(id uuid.UUID, s task.Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.tasks[id]
	t.Status = s
	m.tasks[id] = t
}

// enqueuer records enqueued ids and fails when err is set; onEnqueue runs inside.
type enqueuer struct {
	err       error
	ids       []uuid.UUID
	onEnqueue func(*task.Task)
}

func (e *enqueuer) Enqueue(_ context.Context, t *task.Task) error {
	if e.onEnqueue != nil {
		e.onEnqueue(t)
	}
	if e.err != nil {
		return e.err
	}
	e.ids = append(e.ids, t.ID)
	return nil
}

var fixedNow = time.Date(2026, 2, 3, 4, 5, 6, 789123456, time.UTC)

func newService(store task.Store, enq task.Enqueuer) *task.Service {
	return task.NewService(store, task.ServiceOptions{Enqueuer: enq, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return fixedNow }})
}

func TestServiceCreate(t *testing.T) {
	tests := []struct {
		name       string
		enq        *enqueuer
		wantStatus task.Status
	}{
		{"without enqueuer", nil, task.StatusPending},
		{"enqueued", &enqueuer{}, task.StatusQueued},
		{"enqueue fails: stays pending", &enqueuer{err: errors.New("redis down")}, task.StatusPending},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			var enq task.Enqueuer
			if tc.enq != nil {
				enq = tc.enq
			}
			s := newService(store, enq)
			got, err := s.Create(t.Context(), task.NewTask{Code: "c", Prompt: "p"})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if got.Status != tc.wantStatus || got.Timeout != task.DefaultTimeoutMs || got.ID.Version() != 7 {
				t.Errorf("Create = status %s timeout %d id version %d", got.Status, got.Timeout, got.ID.Version())
			}
			if want := fixedNow.Truncate(time.Microsecond); !got.CreatedAt.Equal(want) {
				t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want)
			}
			stored, err := s.Get(t.Context(), got.ID)
			if err != nil || stored.Status != tc.wantStatus {
				t.Errorf("stored task: %+v, %v", stored, err)
			}
		})
	}
}

func TestServiceCreateInvalid(t *testing.T) {
	store := newMemStore()
	enq := &enqueuer{}
	_, err := newService(store, enq).Create(t.Context(), task.NewTask{Code: "c"})
	if !errors.Is(err, task.ErrInvalid) {
		t.Fatalf("Create without prompt: err = %v, want ErrInvalid", err)
	}
	if len(store.tasks) != 0 || len(enq.ids) != 0 {
		t.Fatal("an invalid task was stored or enqueued")
	}
}

// TestServiceEnqueueRace: the task leaves pending while it is enqueued (a
// worker took it already); Enqueue returns the stored task, not a conflict.
func TestServiceEnqueueRace(t *testing.T) {
	store := newMemStore()
	enq := &enqueuer{}
	enq.onEnqueue = func(tk *task.Task) { store.set(tk.ID, task.StatusRunning) }
	got, err := newService(store, enq).Create(t.Context(), task.NewTask{Code: "c", Prompt: "p"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got.Status != task.StatusRunning {
		t.Fatalf("Create returned status %s, want the stored running", got.Status)
	}
}

func TestServiceListLimit(t *testing.T) {
	store := newMemStore()
	s := newService(store, nil)
	for _, tc := range []struct {
		limit, want int
		ok          bool
	}{
		{0, task.DefaultListLimit, true},
		{1, 1, true},
		{task.MaxListLimit, task.MaxListLimit, true},
		{task.MaxListLimit + 1, 0, false},
		{-1, 0, false},
	} {
		store.lastList = nil
		_, _, err := s.List(t.Context(), task.ListQuery{Limit: tc.limit})
		name := fmt.Sprintf("limit %d", tc.limit)
		if !tc.ok {
			if !errors.Is(err, task.ErrInvalid) || store.lastList != nil {
				t.Errorf("%s: err = %v, store called %v; want ErrInvalid, not called", name, err, store.lastList != nil)
			}
			continue
		}
		if err != nil || store.lastList == nil || store.lastList.Limit != tc.want {
			t.Errorf("%s: err = %v, store query %+v; want limit %d", name, err, store.lastList, tc.want)
		}
	}
}

func TestServiceApplyDefaultsTime(t *testing.T) {
	store := newMemStore()
	s := newService(store, nil)
	tk, err := s.Create(t.Context(), task.NewTask{Code: "c", Prompt: "p"})
	if err != nil {
		t.Fatal(err)
	}
	c := task.MarkQueued(tk.ID, time.Time{})
	got, err := s.Apply(t.Context(), c)
	if err != nil || !got.UpdatedAt.Equal(fixedNow) {
		t.Fatalf("Apply with zero At: %+v, %v; want UpdatedAt = now", got, err)
	}
	if _, err := s.Apply(t.Context(), task.MarkQueued(tk.ID, fixedNow)); !errors.Is(err, task.ErrConflict) {
		t.Fatalf("second MarkQueued: err = %v, want ErrConflict", err)
	}
}
