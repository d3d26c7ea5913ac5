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
	if !c.Allows(t.Status, t.Attempts) || !c.AllowsRun(t.AttemptOffset) {
		return nil, task.ErrConflict
	}
	t.Status, t.UpdatedAt = c.To, c.At
	t.Attempts = max(t.Attempts, c.Attempts)
	if c.NewRun {
		t.Retries++
		t.AttemptOffset = t.Attempts
	}
	m.tasks[c.ID] = t
	return &t, nil
}

func (m *memStore) List(_ context.Context, q task.ListQuery) ([]*task.Task, *task.Cursor, error) {
	m.lastList = &q
	return nil, nil, nil
}

func (m *memStore) Stats(context.Context) (task.Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return task.Stats{Total: int64(len(m.tasks))}, nil
}

func (m *memStore) OwnerStats(_ context.Context, owner string) (task.Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var st task.Stats
	for _, t := range m.tasks {
		if t.Owner == owner {
			st.Total++
		}
	}
	return st, nil
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

// TestServiceOwnership: a caller that is not an admin sees only its own
// tasks; others are "not found" for get, cancel and retry, and lists and
// stats are scoped to it; admins and callers-less contexts see all.
func TestServiceOwnership(t *testing.T) {
	store := newMemStore()
	s := newService(store, nil)
	alice := task.WithCaller(t.Context(), task.Caller{Name: "alice"})
	bob := task.WithCaller(t.Context(), task.Caller{Name: "bob"})
	admin := task.WithCaller(t.Context(), task.Caller{Name: "ops", Admin: true})
	system := t.Context()

	mine, err := s.Create(alice, task.NewTask{Code: "c", Prompt: "p"})
	if err != nil || mine.Owner != "alice" {
		t.Fatalf("Create as alice: owner %q, %v", mine.Owner, err)
	}
	legacy, _ := s.Create(system, task.NewTask{Code: "c", Prompt: "p"})
	if legacy.Owner != "" {
		t.Fatalf("Create without caller: owner %q", legacy.Owner)
	}
	if byAdmin, _ := s.Create(admin, task.NewTask{Code: "c", Prompt: "p"}); byAdmin.Owner != "ops" {
		t.Fatalf("Create as admin: owner %q", byAdmin.Owner)
	}
	for _, ctx := range []context.Context{alice, admin, system} {
		if _, err := s.Get(ctx, mine.ID); err != nil {
			t.Errorf("Get of alice's task by %+v: %v", ctxCaller(ctx), err)
		}
	}
	for _, tc := range []struct {
		name string
		fn   func() error
	}{
		{"get", func() error { _, err := s.Get(bob, mine.ID); return err }},
		{"get legacy", func() error { _, err := s.Get(bob, legacy.ID); return err }},
		{"cancel", func() error { _, err := s.Cancel(bob, mine.ID); return err }},
		{"retry", func() error { _, err := s.Retry(bob, mine.ID); return err }},
	} {
		if err := tc.fn(); !errors.Is(err, task.ErrNotFound) {
			t.Errorf("bob's %s of alice's task: err = %v, want ErrNotFound", tc.name, err)
		}
	}
	if got, _ := s.Get(system, mine.ID); got.Status != task.StatusPending {
		t.Fatalf("bob's refused cancel changed the task: %s", got.Status)
	}
	// Lists and stats: scoped for bob and alice, whatever the query says.
	other := "alice"
	if _, _, err := s.List(bob, task.ListQuery{Owner: &other}); err != nil || store.lastList.Owner == nil || *store.lastList.Owner != "bob" {
		t.Fatalf("bob's list query owner = %v, %v; want bob", store.lastList.Owner, err)
	}
	if _, _, err := s.List(admin, task.ListQuery{Owner: &other}); err != nil || store.lastList.Owner != nil {
		t.Fatalf("admin's list query owner = %v, %v; want none", store.lastList.Owner, err)
	}
	if st, _ := s.Stats(alice); st.Total != 1 {
		t.Errorf("alice's stats total = %d, want 1", st.Total)
	}
	if st, _ := s.Stats(admin); st.Total != 3 {
		t.Errorf("admin's stats total = %d, want 3", st.Total)
	}
	// Alice cancels and retries her own task.
	if _, err := s.Cancel(alice, mine.ID); err != nil {
		t.Fatalf("alice cancels: %v", err)
	}
	got, err := s.Retry(alice, mine.ID)
	if err != nil || got.Status != task.StatusPending || got.Retries != 1 {
		t.Fatalf("alice retries: %+v, %v", got, err)
	}
}

func ctxCaller(ctx context.Context) task.Caller { c, _ := task.CallerFrom(ctx); return c }

// retrier is an enqueuer that also prepares retries.
type retrier struct {
	enqueuer
	attempts int
	err      error
}

func (r *retrier) PrepareRetry(context.Context, *task.Task) (int, error) { return r.attempts, r.err }

func TestServiceRetry(t *testing.T) {
	store := newMemStore()
	r := &retrier{attempts: 3}
	s := newService(store, r)
	tk, _ := s.Create(t.Context(), task.NewTask{Code: "c", Prompt: "p"})
	if _, err := s.Retry(t.Context(), tk.ID); !errors.Is(err, task.ErrConflict) {
		t.Fatalf("Retry of a queued task: err = %v, want ErrConflict", err)
	}
	store.set(tk.ID, task.StatusFailed)
	r.err = fmt.Errorf("redis down: %w", task.ErrUnavailable)
	if _, err := s.Retry(t.Context(), tk.ID); !errors.Is(err, task.ErrUnavailable) {
		t.Fatalf("Retry with the queue down: err = %v, want ErrUnavailable", err)
	}
	if got, _ := s.Get(t.Context(), tk.ID); got.Status != task.StatusFailed || got.Retries != 0 {
		t.Fatalf("a refused retry changed the task: %+v", got)
	}
	r.err = nil
	got, err := s.Retry(t.Context(), tk.ID)
	if err != nil || got.Status != task.StatusQueued || got.Attempts != 3 || got.AttemptOffset != 3 || got.Retries != 1 {
		t.Fatalf("Retry = %+v, %v; want queued from attempt offset 3", got, err)
	}
	if n := len(r.ids); n != 2 || r.ids[1] != tk.ID {
		t.Fatalf("enqueued %v, want the task twice (create, retry)", r.ids)
	}
	if _, err := s.Retry(t.Context(), uuid.New()); !errors.Is(err, task.ErrNotFound) {
		t.Fatalf("Retry of an unknown task: err = %v", err)
	}
}

func TestServiceCallbackPolicy(t *testing.T) {
	store := newMemStore()
	s := newService(store, nil)
	_, err := s.Create(t.Context(), task.NewTask{Code: "c", Prompt: "p", CallbackURL: "https://example.com/h"})
	var ve *task.ValidationError
	if !errors.As(err, &ve) || ve.Field != "callbackUrl" {
		t.Fatalf("callback without webhooks configured: err = %v, want a callbackUrl validation error", err)
	}
	refuse := task.NewService(store, task.ServiceOptions{Logger: slog.New(slog.DiscardHandler),
		CheckCallbackURL: func(u string) error { return errors.New("is a loopback address") }})
	if _, err := refuse.Create(t.Context(), task.NewTask{Code: "c", Prompt: "p", CallbackURL: "http://127.0.0.1/"}); !errors.As(err, &ve) ||
		ve.Field != "callbackUrl" || ve.Reason != "is a loopback address" {
		t.Fatalf("refused callback: err = %v", err)
	}
	global := task.NewService(store, task.ServiceOptions{Logger: slog.New(slog.DiscardHandler), GlobalWebhook: true,
		CheckCallbackURL: func(string) error { return nil }})
	a, _ := global.Create(t.Context(), task.NewTask{Code: "c", Prompt: "p"})
	b, _ := global.Create(t.Context(), task.NewTask{Code: "c", Prompt: "p", CallbackURL: "https://example.com/h"})
	c, _ := refuse.Create(t.Context(), task.NewTask{Code: "c", Prompt: "p"})
	if a.Webhook == nil || a.Webhook.State != task.WebhookWaiting || b.Webhook == nil || *b.CallbackURL != "https://example.com/h" || c.Webhook != nil {
		t.Fatalf("webhooks: global %+v, callback %+v, none %+v", a.Webhook, b.Webhook, c.Webhook)
	}
}
