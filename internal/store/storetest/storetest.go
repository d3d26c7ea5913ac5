// Package storetest is the conformance suite every task.Store must pass:
// round trips of every field, keyset listing, statistics, every status
// transition rule, checkpoints, and conditional updates under concurrency.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/task"
)

// Run runs the suite. open must return a store that is empty and private to
// the calling (sub)test; Run closes it at the end of that test. Subtests do
// not call t.Parallel, so open may share one database server.
func Run(t *testing.T, open func(t *testing.T) task.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, task.Store)
	}{
		{"Ping", testPing},
		{"CreateGet", testCreateGet},
		{"CreateDuplicate", testCreateDuplicate},
		{"GetNotFound", testGetNotFound},
		{"List", testList},
		{"ListByStatus", testListByStatus},
		{"ListCursorEdges", testListCursorEdges},
		{"ListOldest", testListOldest},
		{"Stats", testStats},
		{"Transitions", testTransitions},
		{"StaleAttempts", testStaleAttempts},
		{"LateResultOnCancelled", testLateResult},
		{"ApplyKeepsUnsetFields", testApplyKeepsFields},
		{"ApplyNotFound", testApplyNotFound},
		{"SanitizedData", testSanitizedData},
		{"InvalidData", testInvalidData},
		{"Checkpoints", testCheckpoints},
		{"ConcurrentTerminal", testConcurrentTerminal},
		{"ConcurrentRunning", testConcurrentRunning},
		{"ConcurrentCreate", testConcurrentCreate},
		{"ConcurrentCreateConflicts", testConcurrentCreateConflicts},
		{"ConcurrentApplyCreate", testConcurrentApplyCreate},
		// Control: retry, priority, metadata, ownership, idempotent
		// create, the webhook outbox (control.go).
		{"RetriedRun", testRetriedRun},
		{"ListOwnerAndMetadata", testListOwnerAndMetadata},
		{"OwnerStats", testOwnerStats},
		{"CreateIdempotent", testCreateIdempotent},
		{"CreateIdempotentConcurrent", testCreateIdempotentConcurrent},
		{"PurgeIdempotencyKeys", testPurgeIdempotencyKeys},
		{"WebhookOutbox", testWebhookOutbox},
		{"WebhookChanges", testWebhookChanges},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close store: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// base is the creation time of the first test task, with microseconds.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newTask returns a pending task created at base + i ms. It is safe to call
// from any goroutine.
func newTask(t *testing.T, i int) *task.Task {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	at := base.Add(time.Duration(i) * time.Millisecond)
	return &task.Task{ID: id, Code: fmt.Sprintf("print(%d)", i), Prompt: "run it", Timeout: task.DefaultTimeoutMs,
		Status: task.StatusPending, CreatedAt: at, UpdatedAt: at}
}

func create(t *testing.T, s task.Store, tk *task.Task) *task.Task {
	t.Helper()
	if err := s.Create(ctxOf(t), tk); err != nil {
		t.Fatalf("Create(%s): %v", tk.ID, err)
	}
	return tk
}

func get(t *testing.T, s task.Store, id uuid.UUID) *task.Task {
	t.Helper()
	got, err := s.Get(ctxOf(t), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return got
}

func ptr[T any](v T) *T { return &v }

// diff returns the differences between two tasks, "" when equal. Times must
// be equal instants in UTC; results equal as JSON.
func diff(want, got *task.Task) string {
	var d []string
	add := func(field string, w, g any) { d = append(d, fmt.Sprintf("%s: want %v, got %v", field, w, g)) }
	if want.ID != got.ID {
		add("ID", want.ID, got.ID)
	}
	if want.Code != got.Code {
		add("Code", want.Code, got.Code)
	}
	if want.Prompt != got.Prompt {
		add("Prompt", want.Prompt, got.Prompt)
	}
	if want.Timeout != got.Timeout {
		add("Timeout", want.Timeout, got.Timeout)
	}
	if want.Status != got.Status {
		add("Status", want.Status, got.Status)
	}
	if !eqPtr(want.WorkerID, got.WorkerID) {
		add("WorkerID", show(want.WorkerID), show(got.WorkerID))
	}
	if !jsonEqual(want.Result, got.Result) {
		add("Result", string(want.Result), string(got.Result))
	}
	if !eqPtr(want.ErrorMessage, got.ErrorMessage) {
		add("ErrorMessage", show(want.ErrorMessage), show(got.ErrorMessage))
	}
	if want.Attempts != got.Attempts {
		add("Attempts", want.Attempts, got.Attempts)
	}
	if want.Sanitized != got.Sanitized {
		add("Sanitized", want.Sanitized, got.Sanitized)
	}
	if !eqPtr(want.ExecutionTime, got.ExecutionTime) {
		add("ExecutionTime", show(want.ExecutionTime), show(got.ExecutionTime))
	}
	if !eqPtr(want.Priority, got.Priority) {
		add("Priority", show(want.Priority), show(got.Priority))
	}
	if !jsonEqual(want.Metadata, got.Metadata) {
		add("Metadata", string(want.Metadata), string(got.Metadata))
	}
	if want.Owner != got.Owner {
		add("Owner", want.Owner, got.Owner)
	}
	if !eqPtr(want.CallbackURL, got.CallbackURL) {
		add("CallbackURL", show(want.CallbackURL), show(got.CallbackURL))
	}
	if want.Retries != got.Retries {
		add("Retries", want.Retries, got.Retries)
	}
	if want.AttemptOffset != got.AttemptOffset {
		add("AttemptOffset", want.AttemptOffset, got.AttemptOffset)
	}
	if d := webhookDiff(want.Webhook, got.Webhook); d != "" {
		add("Webhook", "", d)
	}
	for _, f := range []struct {
		name string
		w, g *time.Time
	}{
		{"CreatedAt", &want.CreatedAt, &got.CreatedAt},
		{"UpdatedAt", &want.UpdatedAt, &got.UpdatedAt},
		{"StartedAt", want.StartedAt, got.StartedAt},
		{"CompletedAt", want.CompletedAt, got.CompletedAt},
	} {
		switch {
		case (f.w == nil) != (f.g == nil):
			add(f.name, show(f.w), show(f.g))
		case f.w == nil:
		case !f.w.Equal(*f.g):
			add(f.name, f.w.Format(time.RFC3339Nano), f.g.Format(time.RFC3339Nano))
		case f.g.Location() != time.UTC:
			add(f.name+" location", "UTC", f.g.Location())
		}
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func show[T any](p *T) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprint(*p)
}

func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == 0 && len(b) == 0
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

func ids(ts []*task.Task) []uuid.UUID {
	out := make([]uuid.UUID, len(ts))
	for i, tk := range ts {
		out[i] = tk.ID
	}
	return out
}

func sameIDs(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// newestFirst sorts tasks as List must return them.
func newestFirst(ts []*task.Task) []*task.Task {
	out := append([]*task.Task(nil), ts...)
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return bytes.Compare(out[i].ID[:], out[j].ID[:]) > 0
	})
	return out
}

func testPing(t *testing.T, s task.Store) {
	if err := s.Ping(ctxOf(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testCreateGet(t *testing.T, s task.Store) {
	minimal := newTask(t, 0)
	full := newTask(t, 1)
	full.Code = "package main\n\nfunc main() { println(\"héllo\", '\\x00') }\n"
	full.Prompt = "Fix the bug; don't \"break\" anything. ✓"
	full.Timeout = task.MaxTimeoutMs
	full.Status = task.StatusCompleted
	full.WorkerID = ptr("worker-7")
	full.Result = json.RawMessage(`{"output": "ok", "files": [1, 2.5, "x"], "nested": {"a": null, "b": true}}`)
	full.ErrorMessage = ptr("first attempt: boom")
	full.Attempts = 2
	full.ExecutionTime = ptr(int64(1234))
	full.UpdatedAt = base.Add(time.Hour + 123456*time.Microsecond)
	full.StartedAt = ptr(base.Add(time.Minute + time.Microsecond))
	full.CompletedAt = ptr(base.Add(2 * time.Minute).In(time.FixedZone("UTC+3", 3*3600)))
	full.Priority = ptr(task.MaxPriority)
	full.Metadata = json.RawMessage(`{"ticket": "AAI-003", "n": 3, "tags": ["a", "é"], "nested": {"x": null}}`)
	full.Owner = "team-a"
	full.CallbackURL = ptr("https://hooks.example.com/task?x=1")
	full.Retries = 2
	full.AttemptOffset = 1
	full.Webhook = &task.WebhookDelivery{State: task.WebhookDelivered, Attempts: 3, LastStatus: ptr(204),
		LastError: ptr("earlier: 503"), DeliveredAt: ptr(base.Add(3*time.Minute + time.Microsecond))}
	waiting := newTask(t, 4)
	waiting.Priority = ptr(1)
	waiting.Webhook = &task.WebhookDelivery{State: task.WebhookWaiting}
	scalar := newTask(t, 2)
	scalar.Result = json.RawMessage(`"just a string"`)
	empty := newTask(t, 3)
	empty.ErrorMessage = ptr("")
	empty.WorkerID = ptr("")
	empty.ExecutionTime = ptr(int64(0))

	for _, want := range []*task.Task{minimal, full, scalar, empty, waiting} {
		create(t, s, want)
		got := get(t, s, want.ID)
		if d := diff(want, got); d != "" {
			t.Errorf("round trip of task %s: %s", want.ID, d)
		}
	}
	if got := get(t, s, minimal.ID); got.Result != nil || got.Metadata != nil || got.Webhook != nil || got.Priority != nil {
		t.Errorf("task without result, metadata, webhook, priority: got %q, %q, %+v, %v", got.Result, got.Metadata, got.Webhook, got.Priority)
	}
}

func testCreateDuplicate(t *testing.T, s task.Store) {
	tk := create(t, s, newTask(t, 0))
	dup := *tk
	dup.Code = "other"
	if err := s.Create(ctxOf(t), &dup); !errors.Is(err, task.ErrConflict) {
		t.Fatalf("Create with a used id: err = %v, want ErrConflict", err)
	}
	if got := get(t, s, tk.ID); got.Code != tk.Code {
		t.Fatalf("duplicate Create changed the task: code %q", got.Code)
	}
}

func testGetNotFound(t *testing.T, s task.Store) {
	_, err := s.Get(ctxOf(t), uuid.New())
	if !errors.Is(err, task.ErrNotFound) {
		t.Fatalf("Get(unknown) err = %v, want ErrNotFound", err)
	}
}

// listAll pages through q with the given limit, passing each cursor through
// its string form as the HTTP API does, and returns every task and the
// number of pages.
func listAll(t *testing.T, s task.Store, q task.ListQuery) ([]*task.Task, int) {
	t.Helper()
	var all []*task.Task
	pages := 0
	for {
		page, next, err := s.List(ctxOf(t), q)
		if err != nil {
			t.Fatalf("List(%+v): %v", q, err)
		}
		pages++
		if len(page) > q.Limit {
			t.Fatalf("List returned %d tasks, limit %d", len(page), q.Limit)
		}
		all = append(all, page...)
		if next == nil {
			return all, pages
		}
		if len(page) != q.Limit {
			t.Fatalf("List returned a short page (%d of %d) with a next cursor", len(page), q.Limit)
		}
		c, err := task.DecodeCursor(next.Encode())
		if err != nil {
			t.Fatalf("DecodeCursor(Encode()) = %v", err)
		}
		if !c.CreatedAt.Equal(next.CreatedAt) || c.ID != next.ID {
			t.Fatalf("cursor round trip: %+v became %+v", next, c)
		}
		q.After = &c
		if pages > 1000 {
			t.Fatal("List does not terminate")
		}
	}
}

func testList(t *testing.T, s task.Store) {
	if page, next, err := s.List(ctxOf(t), task.ListQuery{Limit: 10}); err != nil || len(page) != 0 || next != nil {
		t.Fatalf("List on empty store = %d tasks, cursor %v, err %v", len(page), next, err)
	}
	var made []*task.Task
	for i := range 10 {
		made = append(made, create(t, s, newTask(t, i)))
	}
	// Three tasks share one creation time: the id breaks the tie.
	for range 3 {
		made = append(made, create(t, s, newTask(t, 5)))
	}
	want := ids(newestFirst(made))

	for _, limit := range []int{1, 3, 4, 13, 50} {
		got, pages := listAll(t, s, task.ListQuery{Limit: limit})
		if !sameIDs(ids(got), want) {
			t.Errorf("limit %d: got ids %v, want %v", limit, ids(got), want)
		}
		if wantPages := max(1, (len(want)+limit-1)/limit); pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
	page, _, err := s.List(ctxOf(t), task.ListQuery{})
	if err != nil || len(page) != len(want) {
		t.Errorf("List with limit 0 = %d tasks, err %v; want all %d (default limit)", len(page), err, len(want))
	}
	// Listed tasks carry every field.
	if d := diff(get(t, s, page[0].ID), page[0]); d != "" {
		t.Errorf("listed task differs from Get: %s", d)
	}
}

func testListByStatus(t *testing.T, s task.Store) {
	var queued, all []*task.Task
	for i := range 9 {
		tk := newTask(t, i)
		if i%3 != 0 {
			tk.Status = task.StatusQueued
			queued = append(queued, tk)
		}
		all = append(all, create(t, s, tk))
	}
	st := task.StatusQueued
	got, pages := listAll(t, s, task.ListQuery{Status: &st, Limit: 4})
	if !sameIDs(ids(got), ids(newestFirst(queued))) {
		t.Errorf("queued tasks: got %v, want %v", ids(got), ids(newestFirst(queued)))
	}
	if pages != 2 {
		t.Errorf("queued tasks in %d pages of 4, want 2", pages)
	}
	running := task.StatusRunning
	if got, _ := listAll(t, s, task.ListQuery{Status: &running, Limit: 4}); len(got) != 0 {
		t.Errorf("running tasks: got %d, want none", len(got))
	}
	if got, _ := listAll(t, s, task.ListQuery{Limit: 100}); len(got) != len(all) {
		t.Errorf("all tasks: got %d, want %d", len(got), len(all))
	}
}

func testListCursorEdges(t *testing.T, s task.Store) {
	var made []*task.Task
	for i := range 4 {
		made = append(made, create(t, s, newTask(t, i)))
	}
	sorted := newestFirst(made)

	// Exactly limit tasks: no next page.
	page, next, err := s.List(ctxOf(t), task.ListQuery{Limit: 4})
	if err != nil || len(page) != 4 || next != nil {
		t.Errorf("List(limit = count) = %d tasks, cursor %v, err %v; want 4 and no cursor", len(page), next, err)
	}
	// A cursor not matching any task still seeks by position.
	mid := task.Cursor{CreatedAt: sorted[1].CreatedAt.Add(-time.Microsecond), ID: uuid.Max}
	page, _, err = s.List(ctxOf(t), task.ListQuery{Limit: 10, After: &mid})
	if err != nil || !sameIDs(ids(page), ids(sorted[2:])) {
		t.Errorf("List after a foreign cursor = %v, err %v; want %v", ids(page), err, ids(sorted[2:]))
	}
	// Same time, id ordering: after (t, maxID) includes every task at t.
	at := task.Cursor{CreatedAt: sorted[1].CreatedAt, ID: uuid.Max}
	page, _, err = s.List(ctxOf(t), task.ListQuery{Limit: 10, After: &at})
	if err != nil || !sameIDs(ids(page), ids(sorted[1:])) {
		t.Errorf("List after (t, max id) = %v, err %v; want %v", ids(page), err, ids(sorted[1:]))
	}
	// A cursor older than every task: an empty last page.
	old := task.Cursor{CreatedAt: base.Add(-time.Hour), ID: uuid.Nil}
	page, next, err = s.List(ctxOf(t), task.ListQuery{Limit: 10, After: &old})
	if err != nil || len(page) != 0 || next != nil {
		t.Errorf("List after the oldest = %d tasks, cursor %v, err %v; want none", len(page), next, err)
	}
	// Garbage cursors never reach the store: the domain refuses them.
	for _, bad := range []string{"", "garbage!", "bm90LWEtY3Vyc29y"} {
		if _, err := task.DecodeCursor(bad); !errors.Is(err, task.ErrInvalidCursor) {
			t.Errorf("DecodeCursor(%q) err = %v, want ErrInvalidCursor", bad, err)
		}
	}
}

func testListOldest(t *testing.T, s task.Store) {
	var pending []*task.Task
	for i := range 6 {
		tk := newTask(t, 10-i) // created newest first
		if i == 2 {
			tk.Status = task.StatusRunning
		} else {
			pending = append(pending, tk)
		}
		create(t, s, tk)
	}
	oldest := newestFirst(pending)
	for i, j := 0, len(oldest)-1; i < j; i, j = i+1, j-1 {
		oldest[i], oldest[j] = oldest[j], oldest[i]
	}
	got, err := s.ListOldest(ctxOf(t), task.StatusPending, 3)
	if err != nil || !sameIDs(ids(got), ids(oldest[:3])) {
		t.Errorf("ListOldest(pending, 3) = %v, err %v; want %v", ids(got), err, ids(oldest[:3]))
	}
	got, err = s.ListOldest(ctxOf(t), task.StatusPending, 100)
	if err != nil || !sameIDs(ids(got), ids(oldest)) {
		t.Errorf("ListOldest(pending, 100) = %v, err %v; want %v", ids(got), err, ids(oldest))
	}
	got, err = s.ListOldest(ctxOf(t), task.StatusQueued, 100)
	if err != nil || len(got) != 0 {
		t.Errorf("ListOldest(queued) = %d tasks, err %v; want none", len(got), err)
	}
}

func testStats(t *testing.T, s task.Store) {
	st, err := s.Stats(ctxOf(t))
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st != (task.Stats{}) {
		t.Errorf("Stats of an empty store = %+v, want zeros and nil average", st)
	}
	counts := map[task.Status]int{task.StatusPending: 3, task.StatusQueued: 2, task.StatusRunning: 1,
		task.StatusCompleted: 4, task.StatusFailed: 2, task.StatusCancelled: 1}
	execTimes := []int64{100, 250, 400, 1001} // on the completed and failed tasks
	i, e := 0, 0
	for _, status := range task.Statuses {
		for range counts[status] {
			tk := newTask(t, i)
			i++
			tk.Status = status
			if (status == task.StatusCompleted || status == task.StatusFailed) && e < len(execTimes) {
				tk.ExecutionTime = ptr(execTimes[e])
				e++
			}
			create(t, s, tk)
		}
	}
	st, err = s.Stats(ctxOf(t))
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	want := task.Stats{Total: 13, Pending: 3, Queued: 2, Running: 1, Completed: 4, Failed: 2, Cancelled: 1}
	gotAvg := st.AvgExecutionTimeMs
	st.AvgExecutionTimeMs = nil
	if st != want {
		t.Errorf("Stats counts = %+v, want %+v", st, want)
	}
	if wantAvg := 437.75; gotAvg == nil || *gotAvg < wantAvg-1e-9 || *gotAvg > wantAvg+1e-9 {
		t.Errorf("AvgExecutionTimeMs = %v, want %v", show(gotAvg), wantAvg)
	}
}

// changeCase builds a change for a task id; storedAttempts is the attempts
// of the task it is applied to.
type changeCase struct {
	name  string
	build func(id uuid.UUID, at time.Time) task.Change
}

func changeCases() []changeCase {
	out := task.Outcome{WorkerID: "w-2", Result: json.RawMessage(`{"ok":true}`), ExecutionTime: ptr(int64(42)), Attempts: 2}
	bad := task.Outcome{ErrorMessage: "exit 1", ExecutionTime: ptr(int64(7)), Attempts: 2}
	return []changeCase{
		{"queued", func(id uuid.UUID, at time.Time) task.Change { return task.MarkQueued(id, at) }},
		{"running attempt 1", func(id uuid.UUID, at time.Time) task.Change { return task.MarkRunning(id, 1, "w-1", at) }},
		{"running attempt 2", func(id uuid.UUID, at time.Time) task.Change { return task.MarkRunning(id, 2, "w-2", at) }},
		{"running attempt 3", func(id uuid.UUID, at time.Time) task.Change { return task.MarkRunning(id, 3, "", at) }},
		{"retrying attempt 1", func(id uuid.UUID, at time.Time) task.Change { return task.MarkRetrying(id, 1, "oops", at) }},
		{"retrying attempt 2", func(id uuid.UUID, at time.Time) task.Change { return task.MarkRetrying(id, 2, "oops", at) }},
		{"completed", func(id uuid.UUID, at time.Time) task.Change { return task.MarkCompleted(id, out, at) }},
		{"completed unknown attempt", func(id uuid.UUID, at time.Time) task.Change {
			return task.MarkCompleted(id, task.Outcome{Result: json.RawMessage(`[1]`)}, at)
		}},
		{"failed", func(id uuid.UUID, at time.Time) task.Change { return task.MarkFailed(id, bad, at) }},
		{"cancelled", func(id uuid.UUID, at time.Time) task.Change { return task.MarkCancelled(id, at) }},
		{"late result", func(id uuid.UUID, at time.Time) task.Change { return task.RecordLateResult(id, out, at) }},
		{"retried", func(id uuid.UUID, at time.Time) task.Change { return task.MarkRetried(id, 0, at) }},
		{"retried after 3 attempts", func(id uuid.UUID, at time.Time) task.Change { return task.MarkRetried(id, 3, at) }},
	}
}

// expectAfter returns the task as a store must leave it after applying c to before.
func expectAfter(before *task.Task, c task.Change) *task.Task {
	after := *before
	after.Status = c.To
	after.Attempts = max(before.Attempts, c.Attempts)
	if c.NewRun {
		after.Retries++
		after.AttemptOffset = after.Attempts
		after.Result, after.ExecutionTime, after.CompletedAt = nil, nil, nil
		if before.Webhook != nil {
			after.Webhook = &task.WebhookDelivery{State: task.WebhookWaiting}
		}
		after.UpdatedAt = c.At.UTC().Truncate(time.Microsecond)
		return &after
	}
	if c.Notify && before.Webhook != nil {
		w := *before.Webhook
		w.State = task.WebhookDue
		after.Webhook = &w
	}
	if c.WorkerID != nil {
		after.WorkerID = c.WorkerID
	}
	if c.Result != nil {
		after.Result = c.Result
	}
	if c.ErrorMessage != nil {
		after.ErrorMessage = c.ErrorMessage
	}
	if c.ExecutionTime != nil {
		after.ExecutionTime = c.ExecutionTime
	}
	if c.StartedAt != nil {
		after.StartedAt = c.StartedAt
	}
	if c.CompletedAt != nil {
		after.CompletedAt = c.CompletedAt
	}
	after.Sanitized = before.Sanitized || c.Sanitized
	after.UpdatedAt = c.At.UTC().Truncate(time.Microsecond)
	return &after
}

// testTransitions applies every kind of change to a task in every status,
// with attempts 0 and 2, and 2 after a retry at 2 (attempt offset 2, with
// a webhook whose last delivery is recorded), and checks that the store
// follows Change.Allows and Change.AllowsRun: the allowed change applies
// exactly (its Notify and NewRun effects included); the refused one is
// ErrConflict and changes nothing.
func testTransitions(t *testing.T, s task.Store) {
	i := 0
	for _, from := range task.Statuses {
		for _, run := range []struct{ attempts, offset int }{{0, 0}, {2, 0}, {2, 2}} {
			attempts := run.attempts
			for _, cc := range changeCases() {
				name := fmt.Sprintf("%s/attempts=%d/offset=%d/%s", from, attempts, run.offset, cc.name)
				tk := newTask(t, i)
				i++
				tk.Status = from
				tk.Attempts = attempts
				tk.WorkerID = ptr("w-0")
				tk.Result = json.RawMessage(`{"before":1}`)
				tk.ExecutionTime = ptr(int64(5))
				if from.Terminal() {
					tk.CompletedAt = ptr(base)
				}
				if run.offset > 0 {
					tk.AttemptOffset, tk.Retries = run.offset, 1
					tk.Webhook = &task.WebhookDelivery{State: task.WebhookDelivered, Attempts: 2, LastStatus: ptr(200),
						LastError: ptr("first: 500"), DeliveredAt: ptr(base)}
					if !from.Terminal() {
						tk.Webhook = &task.WebhookDelivery{State: task.WebhookWaiting}
					}
				} else if i%2 == 0 {
					tk.Webhook = &task.WebhookDelivery{State: task.WebhookWaiting}
				}
				create(t, s, tk)
				before := get(t, s, tk.ID)
				c := cc.build(tk.ID, base.Add(time.Hour+time.Duration(i)*time.Microsecond))
				allowed := c.Allows(from, attempts) && c.AllowsRun(run.offset)

				got, err := s.Apply(ctxOf(t), c)
				stored := get(t, s, tk.ID)
				if !allowed {
					if !errors.Is(err, task.ErrConflict) {
						t.Errorf("%s: Apply err = %v, want ErrConflict", name, err)
					}
					if d := diff(before, stored); d != "" {
						t.Errorf("%s: refused change modified the task: %s", name, d)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: Apply err = %v, want success", name, err)
					continue
				}
				want := expectAfter(before, c)
				if d := diff(want, got); d != "" {
					t.Errorf("%s: returned task: %s", name, d)
				}
				if d := diff(want, stored); d != "" {
					t.Errorf("%s: stored task: %s", name, d)
				}
			}
		}
	}
}

func testStaleAttempts(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	tk := create(t, s, newTask(t, 0))
	at := base.Add(time.Hour)
	apply := func(c task.Change, wantErr error) *task.Task {
		t.Helper()
		got, err := s.Apply(ctx, c)
		if !errors.Is(err, wantErr) {
			t.Fatalf("Apply(%s attempt %d) err = %v, want %v", c.To, c.Attempts, err, wantErr)
		}
		return got
	}
	apply(task.MarkQueued(tk.ID, at), nil)
	apply(task.MarkRunning(tk.ID, 1, "w-1", at.Add(1*time.Second)), nil)
	apply(task.MarkRunning(tk.ID, 1, "w-1", at.Add(2*time.Second)), task.ErrConflict) // duplicate event
	apply(task.MarkRetrying(tk.ID, 1, "attempt 1 failed", at.Add(3*time.Second)), nil)
	apply(task.MarkRunning(tk.ID, 2, "w-2", at.Add(4*time.Second)), nil)
	// Late events of attempt 1 arrive after attempt 2 started.
	apply(task.MarkRetrying(tk.ID, 1, "late", at.Add(5*time.Second)), task.ErrConflict)
	apply(task.MarkRunning(tk.ID, 1, "w-1", at.Add(6*time.Second)), task.ErrConflict)
	got := get(t, s, tk.ID)
	if got.Status != task.StatusRunning || got.Attempts != 2 || show(got.WorkerID) != "w-2" ||
		show(got.ErrorMessage) != "attempt 1 failed" || !got.StartedAt.Equal(at.Add(4*time.Second)) {
		t.Fatalf("after stale events: status %s attempts %d worker %s error %s started %v",
			got.Status, got.Attempts, show(got.WorkerID), show(got.ErrorMessage), got.StartedAt)
	}
	done := apply(task.MarkCompleted(tk.ID, task.Outcome{Result: json.RawMessage(`{"a":1}`), Attempts: 2}, at.Add(7*time.Second)), nil)
	if done.Status != task.StatusCompleted || done.CompletedAt == nil || !done.CompletedAt.Equal(at.Add(7*time.Second)) {
		t.Fatalf("completed task: status %s completed at %v", done.Status, done.CompletedAt)
	}
	// Nothing leaves a terminal status.
	apply(task.MarkRunning(tk.ID, 3, "w-3", at.Add(8*time.Second)), task.ErrConflict)
	apply(task.MarkFailed(tk.ID, task.Outcome{ErrorMessage: "x"}, at.Add(9*time.Second)), task.ErrConflict)
	apply(task.MarkCancelled(tk.ID, at.Add(10*time.Second)), task.ErrConflict)
	if d := diff(done, get(t, s, tk.ID)); d != "" {
		t.Fatalf("terminal task changed: %s", d)
	}
}

func testLateResult(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	tk := create(t, s, newTask(t, 0))
	at := base.Add(time.Hour)
	if _, err := s.Apply(ctx, task.MarkRunning(tk.ID, 1, "w-1", at)); err != nil {
		t.Fatal(err)
	}
	cancelled, err := s.Apply(ctx, task.MarkCancelled(tk.ID, at.Add(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, task.MarkCompleted(tk.ID, task.Outcome{Attempts: 1}, at.Add(2*time.Second))); !errors.Is(err, task.ErrConflict) {
		t.Fatalf("complete a cancelled task: err = %v, want ErrConflict", err)
	}
	o := task.Outcome{WorkerID: "w-1", Result: json.RawMessage(`{"late":true}`), ExecutionTime: ptr(int64(900)), Attempts: 1}
	got, err := s.Apply(ctx, task.RecordLateResult(tk.ID, o, at.Add(3*time.Second)))
	if err != nil {
		t.Fatalf("RecordLateResult: %v", err)
	}
	if got.Status != task.StatusCancelled || !jsonEqual(got.Result, o.Result) || show(got.ExecutionTime) != "900" {
		t.Errorf("after late result: status %s result %s exec %s", got.Status, got.Result, show(got.ExecutionTime))
	}
	if got.CompletedAt == nil || !got.CompletedAt.Equal(*cancelled.CompletedAt) {
		t.Errorf("late result moved CompletedAt from %v to %v", cancelled.CompletedAt, got.CompletedAt)
	}
	// A late result on a task that is not cancelled is refused.
	other := create(t, s, newTask(t, 1))
	if _, err := s.Apply(ctx, task.RecordLateResult(other.ID, o, at)); !errors.Is(err, task.ErrConflict) {
		t.Errorf("late result on a pending task: err = %v, want ErrConflict", err)
	}
}

func testApplyKeepsFields(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	tk := create(t, s, newTask(t, 0))
	at := base.Add(time.Hour)
	if _, err := s.Apply(ctx, task.MarkRunning(tk.ID, 1, "w-1", at)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, task.MarkRetrying(tk.ID, 1, "boom", at.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	// A worker without a name keeps the previous worker id; the error stays.
	got, err := s.Apply(ctx, task.MarkRunning(tk.ID, 2, "", at.Add(2*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if show(got.WorkerID) != "w-1" || show(got.ErrorMessage) != "boom" || got.Attempts != 2 {
		t.Errorf("after running attempt 2: worker %s error %s attempts %d; want w-1, boom, 2",
			show(got.WorkerID), show(got.ErrorMessage), got.Attempts)
	}
	// An outcome without attempts keeps the stored attempts.
	got, err = s.Apply(ctx, task.MarkFailed(tk.ID, task.Outcome{ErrorMessage: "fatal"}, at.Add(3*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempts != 2 || show(got.ErrorMessage) != "fatal" || got.Result != nil || got.ExecutionTime != nil {
		t.Errorf("after failed: attempts %d error %s result %s exec %s", got.Attempts, show(got.ErrorMessage), got.Result, show(got.ExecutionTime))
	}
}

func testApplyNotFound(t *testing.T, s task.Store) {
	create(t, s, newTask(t, 0))
	for _, c := range []task.Change{
		task.MarkQueued(uuid.New(), base),
		task.MarkRunning(uuid.New(), 1, "w", base),
		task.MarkCancelled(uuid.New(), base),
	} {
		if _, err := s.Apply(ctxOf(t), c); !errors.Is(err, task.ErrNotFound) {
			t.Errorf("Apply(%s) on unknown task: err = %v, want ErrNotFound", c.To, err)
		}
	}
}

// poison is data from outside that PostgreSQL refuses as is (SQLSTATE
// 22021, 22P05) and that no client should have to read: NUL bytes, \u0000
// escapes in JSON, invalid UTF-8, unpaired surrogate escapes.
var poison = []struct {
	name string
	o    task.Outcome
	want task.Outcome // after sanitising
}{
	{"NUL in error message", task.Outcome{ErrorMessage: "boom\x00here"}, task.Outcome{ErrorMessage: "boomhere"}},
	{"invalid UTF-8 and NUL in error message", task.Outcome{ErrorMessage: "bad\xff\xfe\x00 bytes"},
		task.Outcome{ErrorMessage: "bad\uFFFD bytes"}},
	{"\\u0000 in result JSON", task.Outcome{Result: json.RawMessage(`{"out":"a\u0000b","k\u0000":[1,"\u0000"]}`)},
		task.Outcome{Result: json.RawMessage(`{"out":"ab","k":[1,""]}`)}},
	{"invalid UTF-8 in result JSON", task.Outcome{Result: json.RawMessage("{\"out\":\"caf\xc3\"}")},
		task.Outcome{Result: json.RawMessage(`{"out":"caf\uFFFD"}`)}},
	{"lone surrogate in result JSON", task.Outcome{Result: json.RawMessage(`["\ud800"]`)},
		task.Outcome{Result: json.RawMessage(`["\ufffd"]`)}},
	{"NUL in worker id", task.Outcome{WorkerID: "w\x00-1"}, task.Outcome{WorkerID: "w-1"}},
	{"result not JSON", task.Outcome{Result: json.RawMessage("raw \x00 text")}, task.Outcome{Result: json.RawMessage(`"raw  text"`)}},
}

// testSanitizedData: every store stores the changes that carry poison, as
// the task package sanitised them, and sets the sanitized flag, which a
// later clean change does not clear.
func testSanitizedData(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	at := base.Add(time.Hour)
	for i, p := range poison {
		for _, finish := range []func(uuid.UUID, task.Outcome, time.Time) task.Change{task.MarkFailed, task.MarkCompleted} {
			tk := create(t, s, newTask(t, i))
			c := finish(tk.ID, p.o, at)
			if !c.Sanitized {
				t.Errorf("%s: change not marked sanitised", p.name)
			}
			got, err := s.Apply(ctx, c)
			if err != nil {
				t.Errorf("%s: Apply(%s): %v", p.name, c.To, err)
				continue
			}
			stored := get(t, s, tk.ID)
			for _, g := range []*task.Task{got, stored} {
				if !g.Sanitized || g.Status != c.To ||
					(p.want.ErrorMessage != "" && show(g.ErrorMessage) != p.want.ErrorMessage) ||
					(p.want.WorkerID != "" && show(g.WorkerID) != p.want.WorkerID) ||
					(p.want.Result != nil && !jsonEqual(g.Result, p.want.Result)) {
					t.Errorf("%s: stored %s %q worker %q result %s sanitized %v; want %+v", p.name, g.Status,
						show(g.ErrorMessage), show(g.WorkerID), g.Result, g.Sanitized, p.want)
				}
			}
		}
	}
	// The flag stays once set.
	tk := create(t, s, newTask(t, 100))
	if _, err := s.Apply(ctx, task.MarkRunning(tk.ID, 1, "w\x00", at)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Apply(ctx, task.MarkCompleted(tk.ID, task.Outcome{WorkerID: "w", Result: json.RawMessage(`1`)}, at))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Sanitized || !get(t, s, tk.ID).Sanitized {
		t.Error("a clean change cleared the sanitized flag")
	}
	if get(t, s, create(t, s, newTask(t, 101)).ID).Sanitized {
		t.Error("a new task is marked sanitised")
	}
}

// testInvalidData: data a change carries that the store refuses (here a
// result that is not JSON, in a change built by hand, past the task
// package's sanitising) gives task.ErrInvalidData and changes nothing; the
// MarkUnstorable change that replaces it applies.
func testInvalidData(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	tk := create(t, s, newTask(t, 0))
	at := base.Add(time.Hour)
	if _, err := s.Apply(ctx, task.MarkRunning(tk.ID, 1, "w-1", at)); err != nil {
		t.Fatal(err)
	}
	before := get(t, s, tk.ID)
	c := task.MarkCompleted(tk.ID, task.Outcome{Result: json.RawMessage(`{"ok":true}`), Attempts: 1}, at.Add(time.Second))
	c.Result = json.RawMessage(`{"not json`)
	_, err := s.Apply(ctx, c)
	if !errors.Is(err, task.ErrInvalidData) {
		t.Fatalf("Apply(result not JSON) err = %v, want ErrInvalidData", err)
	}
	if errors.Is(err, task.ErrConflict) || errors.Is(err, task.ErrNotFound) {
		t.Errorf("ErrInvalidData also matches a state error: %v", err)
	}
	if d := diff(before, get(t, s, tk.ID)); d != "" {
		t.Fatalf("refused change modified the task: %s", d)
	}
	got, err := s.Apply(ctx, task.MarkUnstorable(c, err))
	if err != nil {
		t.Fatalf("Apply(MarkUnstorable): %v", err)
	}
	if got.Status != task.StatusFailed || got.ErrorMessage == nil || !strings.HasPrefix(*got.ErrorMessage, task.UnstorableReason) ||
		got.Result != nil || !got.Sanitized || got.CompletedAt == nil {
		t.Errorf("after MarkUnstorable: %s %s result %s sanitized %v", got.Status, show(got.ErrorMessage), got.Result, got.Sanitized)
	}
}

func testCheckpoints(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	if v, err := s.Checkpoint(ctx, "events"); err != nil || v != "" {
		t.Fatalf("Checkpoint(missing) = %q, %v; want empty", v, err)
	}
	for _, v := range []string{"1700000000000-0", "1700000000001-5", ""} {
		if err := s.SetCheckpoint(ctx, "events", v); err != nil {
			t.Fatalf("SetCheckpoint(%q): %v", v, err)
		}
		if got, err := s.Checkpoint(ctx, "events"); err != nil || got != v {
			t.Fatalf("Checkpoint after set %q = %q, %v", v, got, err)
		}
	}
	if err := s.SetCheckpoint(ctx, "other", "x"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Checkpoint(ctx, "events"); got != "" {
		t.Fatalf("checkpoints are not independent: events = %q", got)
	}
}

// race runs fns concurrently, released together, and returns their errors.
func race(fns []func() error) []error {
	errs := make([]error, len(fns))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn()
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func testConcurrentTerminal(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	at := base.Add(time.Hour)
	for round := range 5 {
		tk := create(t, s, newTask(t, round))
		if _, err := s.Apply(ctx, task.MarkRunning(tk.ID, 1, "w", at)); err != nil {
			t.Fatal(err)
		}
		var fns []func() error
		var changes []task.Change
		for g := range 20 {
			var c task.Change
			switch g % 3 {
			case 0:
				c = task.MarkCompleted(tk.ID, task.Outcome{Result: json.RawMessage(fmt.Sprintf(`{"g":%d}`, g)), Attempts: 1}, at.Add(time.Second))
			case 1:
				c = task.MarkFailed(tk.ID, task.Outcome{ErrorMessage: fmt.Sprintf("g%d", g), Attempts: 1}, at.Add(time.Second))
			case 2:
				c = task.MarkCancelled(tk.ID, at.Add(time.Second))
			}
			changes = append(changes, c)
			fns = append(fns, func() error { _, err := s.Apply(ctx, c); return err })
		}
		errs := race(fns)
		winner := -1
		for g, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: goroutines %d and %d both won", round, winner, g)
			case err == nil:
				winner = g
			case !errors.Is(err, task.ErrConflict):
				t.Fatalf("round %d: goroutine %d: err = %v, want nil or ErrConflict", round, g, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no goroutine won", round)
		}
		got := get(t, s, tk.ID)
		w := changes[winner]
		if got.Status != w.To || !jsonEqual(got.Result, w.Result) || !eqPtr(got.ErrorMessage, w.ErrorMessage) {
			t.Fatalf("round %d: stored status %s result %s error %s; winner set %s %s %s",
				round, got.Status, got.Result, show(got.ErrorMessage), w.To, w.Result, show(w.ErrorMessage))
		}
	}
}

func testConcurrentRunning(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	tk := create(t, s, newTask(t, 0))
	var fns []func() error
	for g := range 20 {
		attempt := 1 + g%2 // attempts 1 and 2 race: at most one of each applies
		fns = append(fns, func() error {
			_, err := s.Apply(ctx, task.MarkRunning(tk.ID, attempt, fmt.Sprintf("w-%d", g), base.Add(time.Hour)))
			return err
		})
	}
	wins := 0
	for g, err := range race(fns) {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, task.ErrConflict):
			t.Fatalf("goroutine %d: err = %v", g, err)
		}
	}
	if wins < 1 || wins > 2 {
		t.Fatalf("%d MarkRunning calls won, want 1 or 2 (one per attempt, in order)", wins)
	}
	if got := get(t, s, tk.ID); got.Attempts != 2 || got.Status != task.StatusRunning {
		t.Fatalf("after the race: status %s attempts %d, want running 2", got.Status, got.Attempts)
	}
}

func testConcurrentCreate(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	const goroutines, each = 20, 15
	var mu sync.Mutex
	var made []*task.Task
	var fns []func() error
	for g := range goroutines {
		fns = append(fns, func() error {
			for i := range each {
				tk := newTask(t, g*each+i)
				if err := s.Create(ctx, tk); err != nil {
					return err
				}
				mu.Lock()
				made = append(made, tk)
				mu.Unlock()
			}
			return nil
		})
	}
	for g, err := range race(fns) {
		if err != nil {
			t.Fatalf("goroutine %d: Create: %v", g, err)
		}
	}
	st, err := s.Stats(ctx)
	if err != nil || st.Total != goroutines*each || st.Pending != goroutines*each {
		t.Fatalf("Stats after concurrent creates = %+v, %v; want %d pending", st, err, goroutines*each)
	}
	got, _ := listAll(t, s, task.ListQuery{Limit: 37})
	if !sameIDs(ids(got), ids(newestFirst(made))) {
		t.Fatalf("listing after concurrent creates does not match the created tasks")
	}
}

// testConcurrentCreateConflicts races creates that stores may write
// together (group commit): of the creates of one new id exactly one wins,
// creates of a stored id all fail with ErrConflict, an invalid task and a
// cancelled call fail alone, and every other create succeeds.
func testConcurrentCreateConflicts(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	for round := range 3 {
		stored := create(t, s, newTask(t, round*1000))
		const contested, copies, unique = 8, 4, 40
		type attempt struct {
			tk   *task.Task
			kind string // "contested", "stored", "unique", "invalid", "cancelled"
		}
		var attempts []attempt
		for c := range contested {
			first := newTask(t, round*1000+1+c)
			for k := range copies {
				tk := *first
				tk.Code = fmt.Sprintf("copy %d", k)
				attempts = append(attempts, attempt{&tk, "contested"})
			}
		}
		for k := range 4 {
			dup := *stored
			dup.Code = fmt.Sprintf("dup %d", k)
			attempts = append(attempts, attempt{&dup, "stored"})
		}
		for u := range unique {
			attempts = append(attempts, attempt{newTask(t, round*1000+100+u), "unique"})
		}
		invalid := newTask(t, round*1000+999)
		invalid.Timeout = 0 // violates timeout_ms > 0
		attempts = append(attempts, attempt{invalid, "invalid"})
		attempts = append(attempts, attempt{newTask(t, round*1000+998), "cancelled"})
		cancelled, cancel := context.WithCancel(ctx)
		cancel()

		fns := make([]func() error, len(attempts))
		for i, a := range attempts {
			c := ctx
			if a.kind == "cancelled" {
				c = cancelled
			}
			fns[i] = func() error { return s.Create(c, a.tk) }
		}
		errs := race(fns)
		winners := map[uuid.UUID]string{}
		for i, a := range attempts {
			err := errs[i]
			switch a.kind {
			case "contested":
				switch {
				case err == nil:
					if w, ok := winners[a.tk.ID]; ok {
						t.Fatalf("round %d: two creates of %s won (%q and %q)", round, a.tk.ID, w, a.tk.Code)
					}
					winners[a.tk.ID] = a.tk.Code
				case !errors.Is(err, task.ErrConflict):
					t.Fatalf("round %d: contested create: err = %v, want nil or ErrConflict", round, err)
				}
			case "stored":
				if !errors.Is(err, task.ErrConflict) {
					t.Fatalf("round %d: create of a stored id: err = %v, want ErrConflict", round, err)
				}
			case "unique":
				if err != nil {
					t.Fatalf("round %d: create of a new id: %v", round, err)
				}
			case "invalid", "cancelled":
				if err == nil || errors.Is(err, task.ErrConflict) {
					t.Fatalf("round %d: %s create: err = %v, want a non-conflict error", round, a.kind, err)
				}
				if _, err := s.Get(ctx, a.tk.ID); !errors.Is(err, task.ErrNotFound) {
					t.Fatalf("round %d: %s create was stored (Get err = %v)", round, a.kind, err)
				}
			}
		}
		if len(winners) != contested {
			t.Fatalf("round %d: %d contested ids were created, want %d", round, len(winners), contested)
		}
		for id, code := range winners {
			if got := get(t, s, id); got.Code != code {
				t.Fatalf("round %d: task %s has code %q, want the winner's %q", round, id, got.Code, code)
			}
		}
		if got := get(t, s, stored.ID); got.Code != stored.Code {
			t.Fatalf("round %d: a duplicate create changed the stored task: code %q", round, got.Code)
		}
	}
}

// testConcurrentApplyCreate races creates with MarkQueued of the same
// tasks, as the API does, and of unknown ids: each change applies exactly
// once or reports why not.
func testConcurrentApplyCreate(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	const n = 30
	tasks := make([]*task.Task, n)
	for i := range tasks {
		tasks[i] = newTask(t, i)
	}
	at := base.Add(time.Hour)
	var fns []func() error
	for _, tk := range tasks {
		fns = append(fns, func() error {
			if err := s.Create(ctx, tk); err != nil {
				return err
			}
			got, err := s.Apply(ctx, task.MarkQueued(tk.ID, at))
			if err != nil {
				return err
			}
			if got.ID != tk.ID || got.Status != task.StatusQueued || !got.UpdatedAt.Equal(at) {
				return fmt.Errorf("Apply(MarkQueued %s) returned %s %s %s", tk.ID, got.ID, got.Status, got.UpdatedAt)
			}
			if _, err := s.Apply(ctx, task.MarkQueued(tk.ID, at)); !errors.Is(err, task.ErrConflict) {
				return fmt.Errorf("second MarkQueued of %s: err = %v, want ErrConflict", tk.ID, err)
			}
			return nil
		})
		fns = append(fns, func() error {
			if _, err := s.Apply(ctx, task.MarkQueued(uuid.New(), at)); !errors.Is(err, task.ErrNotFound) {
				return fmt.Errorf("MarkQueued of an unknown id: err = %v, want ErrNotFound", err)
			}
			return nil
		})
	}
	for g, err := range race(fns) {
		if err != nil {
			t.Fatalf("goroutine %d: %v", g, err)
		}
	}
	st, err := s.Stats(ctx)
	if err != nil || st.Total != n || st.Queued != n {
		t.Fatalf("Stats = %+v, %v; want %d queued", st, err, n)
	}
}
