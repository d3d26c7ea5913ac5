package storetest

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/task"
)

// webhookDiff returns how two webhook deliveries differ, "" when equal.
func webhookDiff(want, got *task.WebhookDelivery) string {
	switch {
	case want == nil && got == nil:
		return ""
	case want == nil || got == nil:
		return fmt.Sprintf("want %+v, got %+v", want, got)
	}
	var d []string
	if want.State != got.State {
		d = append(d, fmt.Sprintf("state %s != %s", want.State, got.State))
	}
	if want.Attempts != got.Attempts {
		d = append(d, fmt.Sprintf("attempts %d != %d", want.Attempts, got.Attempts))
	}
	if !eqPtr(want.LastStatus, got.LastStatus) {
		d = append(d, fmt.Sprintf("lastStatus %s != %s", show(want.LastStatus), show(got.LastStatus)))
	}
	if !eqPtr(want.LastError, got.LastError) {
		d = append(d, fmt.Sprintf("lastError %s != %s", show(want.LastError), show(got.LastError)))
	}
	switch w, g := want.DeliveredAt, got.DeliveredAt; {
	case (w == nil) != (g == nil):
		d = append(d, fmt.Sprintf("deliveredAt %s != %s", show(w), show(g)))
	case w != nil && (!w.Equal(*g) || g.Location() != time.UTC):
		d = append(d, fmt.Sprintf("deliveredAt %v != %v", w, g))
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

func apply(t *testing.T, s task.Store, c task.Change, wantErr error) *task.Task {
	t.Helper()
	got, err := s.Apply(ctxOf(t), c)
	if !errors.Is(err, wantErr) {
		t.Fatalf("Apply(%s attempt %d) err = %v, want %v", c.To, c.Attempts, err, wantErr)
	}
	return got
}

// testRetriedRun follows a task through a failed run, a retry and a second
// run: the retry keeps the attempts and the last error, starts the new
// run's numbering after them, and events of the old run's attempts are
// refused once it started.
func testRetriedRun(t *testing.T, s task.Store) {
	tk := newTask(t, 0)
	tk.Webhook = &task.WebhookDelivery{State: task.WebhookWaiting}
	create(t, s, tk)
	at := base.Add(time.Hour)
	apply(t, s, task.MarkQueued(tk.ID, at), nil)
	for n := 1; n <= 3; n++ {
		apply(t, s, task.MarkRunning(tk.ID, n, "w-1", at.Add(time.Duration(n)*time.Second)), nil)
	}
	failed := apply(t, s, task.MarkFailed(tk.ID, task.Outcome{ErrorMessage: "boom", Attempts: 3,
		Result: json.RawMessage(`{"partial":true}`), ExecutionTime: ptr(int64(9))}, at.Add(5*time.Second)), nil)
	if failed.Webhook == nil || failed.Webhook.State != task.WebhookDue {
		t.Fatalf("failed task's webhook = %+v, want due", failed.Webhook)
	}
	// Retrying a live or completed task is refused.
	other := create(t, s, newTask(t, 1))
	apply(t, s, task.MarkRetried(other.ID, 0, at), task.ErrConflict)
	apply(t, s, task.MarkRetried(uuid.New(), 0, at), task.ErrNotFound)

	retried := apply(t, s, task.MarkRetried(tk.ID, 3, at.Add(10*time.Second)), nil)
	if retried.Status != task.StatusPending || retried.Attempts != 3 || retried.AttemptOffset != 3 || retried.Retries != 1 ||
		show(retried.ErrorMessage) != "boom" || retried.Result != nil || retried.ExecutionTime != nil || retried.CompletedAt != nil ||
		retried.Webhook == nil || retried.Webhook.State != task.WebhookWaiting || !retried.CreatedAt.Equal(tk.CreatedAt) {
		t.Fatalf("retried task = %+v (webhook %+v)", retried, retried.Webhook)
	}
	if d := diff(retried, get(t, s, tk.ID)); d != "" {
		t.Fatalf("stored retried task: %s", d)
	}
	// A second retry of the now pending task conflicts.
	apply(t, s, task.MarkRetried(tk.ID, 3, at), task.ErrConflict)
	apply(t, s, task.MarkQueued(tk.ID, at.Add(11*time.Second)), nil)
	// Late events of the old run (attempts 1 to 3) are refused.
	apply(t, s, task.MarkRetrying(tk.ID, 3, "late", at.Add(12*time.Second)), task.ErrConflict)
	apply(t, s, task.MarkFailed(tk.ID, task.Outcome{ErrorMessage: "late", Attempts: 3}, at.Add(12*time.Second)), task.ErrConflict)
	apply(t, s, task.MarkCompleted(tk.ID, task.Outcome{Attempts: 2}, at.Add(12*time.Second)), task.ErrConflict)
	// The new run's first attempt is the task's fourth.
	apply(t, s, task.MarkRunning(tk.ID, 4, "w-2", at.Add(13*time.Second)), nil)
	done := apply(t, s, task.MarkCompleted(tk.ID, task.Outcome{Result: json.RawMessage(`{"ok":1}`), Attempts: 4}, at.Add(14*time.Second)), nil)
	if done.Status != task.StatusCompleted || done.Attempts != 4 || done.Retries != 1 || done.Webhook.State != task.WebhookDue ||
		done.CompletedAt == nil || !done.CompletedAt.Equal(at.Add(14*time.Second)) {
		t.Fatalf("completed retried task = %+v (webhook %+v)", done, done.Webhook)
	}
	// A cancelled task that never ran is retried from offset 0.
	c := create(t, s, newTask(t, 2))
	apply(t, s, task.MarkCancelled(c.ID, at), nil)
	if got := apply(t, s, task.MarkRetried(c.ID, 0, at), nil); got.Status != task.StatusPending || got.Retries != 1 || got.AttemptOffset != 0 {
		t.Fatalf("retried cancelled task = %+v", got)
	}
	apply(t, s, task.MarkRunning(c.ID, 1, "w", at), nil)
}

// testListOwnerAndMetadata lists by owner, by metadata key and value (only
// JSON strings match), by both and with a status, through pages.
func testListOwnerAndMetadata(t *testing.T, s task.Store) {
	type made struct {
		tk   *task.Task
		kind int // which metadata: 0 ticket AAI-003, 1 ticket AAI-004, 2 odd, 3 none
	}
	var all []made
	for i := range 12 {
		tk := newTask(t, i)
		tk.Owner = []string{"", "team-a", "team-b"}[i%3]
		switch i % 4 {
		case 0:
			tk.Metadata = json.RawMessage(`{"ticket":"AAI-003","n":3}`)
		case 1:
			tk.Metadata = json.RawMessage(`{"ticket":"AAI-004","deep":{"ticket":"AAI-003"}}`)
		case 2:
			tk.Metadata = json.RawMessage(`{"ticket":3,"other":"AAI-003","odd key ' \" .":"x"}`)
		}
		if i%5 == 0 {
			tk.Status = task.StatusCompleted
		}
		all = append(all, made{create(t, s, tk), i % 4})
	}
	match := func(f func(m made) bool) []uuid.UUID {
		var out []*task.Task
		for _, m := range all {
			if f(m) {
				out = append(out, m.tk)
			}
		}
		return ids(newestFirst(out))
	}
	teamA := "team-a"
	none := ""
	completed := task.StatusCompleted
	for _, tc := range []struct {
		name string
		q    task.ListQuery
		want []uuid.UUID
	}{
		{"owner team-a", task.ListQuery{Owner: &teamA}, match(func(m made) bool { return m.tk.Owner == "team-a" })},
		{"owner none", task.ListQuery{Owner: &none}, match(func(m made) bool { return m.tk.Owner == "" })},
		{"ticket AAI-003", task.ListQuery{Metadata: &task.MetadataFilter{Key: "ticket", Value: "AAI-003"}},
			match(func(m made) bool { return m.kind == 0 })},
		{"number is not a string", task.ListQuery{Metadata: &task.MetadataFilter{Key: "n", Value: "3"}}, nil},
		{"ticket 3 (a number)", task.ListQuery{Metadata: &task.MetadataFilter{Key: "ticket", Value: "3"}}, nil},
		{"odd key", task.ListQuery{Metadata: &task.MetadataFilter{Key: "odd key ' \" .", Value: "x"}},
			match(func(m made) bool { return m.kind == 2 })},
		{"owner and ticket", task.ListQuery{Owner: &teamA, Metadata: &task.MetadataFilter{Key: "ticket", Value: "AAI-003"}},
			match(func(m made) bool { return m.tk.Owner == "team-a" && m.kind == 0 })},
		{"owner, status", task.ListQuery{Owner: &none, Status: &completed},
			match(func(m made) bool { return m.tk.Owner == "" && m.tk.Status == task.StatusCompleted })},
		{"status, ticket", task.ListQuery{Status: &completed, Metadata: &task.MetadataFilter{Key: "ticket", Value: "AAI-003"}},
			match(func(m made) bool { return m.kind == 0 && m.tk.Status == task.StatusCompleted })},
		{"unknown key", task.ListQuery{Metadata: &task.MetadataFilter{Key: "nope", Value: "AAI-003"}}, nil},
	} {
		for _, limit := range []int{1, 2, 50} {
			q := tc.q
			q.Limit = limit
			got, _ := listAll(t, s, q)
			if !sameIDs(ids(got), tc.want) {
				t.Errorf("%s, limit %d: got %v, want %v", tc.name, limit, ids(got), tc.want)
			}
		}
	}
}

func testOwnerStats(t *testing.T, s task.Store) {
	for i, st := range []task.Status{task.StatusCompleted, task.StatusFailed, task.StatusPending, task.StatusCompleted} {
		tk := newTask(t, i)
		tk.Status = st
		tk.ExecutionTime = ptr(int64(100 * (i + 1)))
		if i%2 == 0 {
			tk.Owner = "team-a"
		}
		create(t, s, tk)
	}
	st, err := s.OwnerStats(ctxOf(t), "team-a")
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 2 || st.Completed != 1 || st.Pending != 1 || st.Failed != 0 || st.AvgExecutionTimeMs == nil || *st.AvgExecutionTimeMs != 200 {
		t.Errorf("OwnerStats(team-a) = %+v (avg %v)", st, show(st.AvgExecutionTimeMs))
	}
	if st, err := s.OwnerStats(ctxOf(t), "nobody"); err != nil || st.Total != 0 || st.AvgExecutionTimeMs != nil {
		t.Errorf("OwnerStats(nobody) = %+v, %v", st, err)
	}
	if all, err := s.Stats(ctxOf(t)); err != nil || all.Total != 4 {
		t.Errorf("Stats = %+v, %v", all, err)
	}
}

func key(owner, k, body string, at time.Time) task.IdempotencyKey {
	return task.IdempotencyKey{Owner: owner, Key: k, Hash: sha256.Sum256([]byte(body)), CreatedAt: at}
}

// testCreateIdempotent: a key creates once; the same key and body returns
// the stored task; another body is a mismatch; keys are per owner; an
// expired key is claimed again.
func testCreateIdempotent(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	at := base.Add(time.Hour)
	cutoff := at.Add(-24 * time.Hour)
	first := newTask(t, 0)
	first.Metadata = json.RawMessage(`{"a":"b"}`)
	got, created, err := s.CreateIdempotent(ctx, first, key("", "k1", "body", at), cutoff)
	if err != nil || !created {
		t.Fatalf("first CreateIdempotent = %v, created %v", err, created)
	}
	if d := diff(first, got); d != "" {
		t.Fatalf("first CreateIdempotent returned: %s", d)
	}
	if d := diff(first, get(t, s, first.ID)); d != "" {
		t.Fatalf("stored: %s", d)
	}
	// The stored task moves on; a replay returns it as it is now.
	apply(t, s, task.MarkQueued(first.ID, at), nil)
	dup := newTask(t, 1)
	got, created, err = s.CreateIdempotent(ctx, dup, key("", "k1", "body", at.Add(time.Minute)), cutoff.Add(time.Minute))
	if err != nil || created || got.ID != first.ID || got.Status != task.StatusQueued {
		t.Fatalf("replay = %+v, created %v, err %v; want the first task, queued", got, created, err)
	}
	if _, err := s.Get(ctx, dup.ID); !errors.Is(err, task.ErrNotFound) {
		t.Fatalf("replay stored its own task (Get err %v)", err)
	}
	if _, _, err := s.CreateIdempotent(ctx, newTask(t, 2), key("", "k1", "other body", at), cutoff); !errors.Is(err, task.ErrIdempotencyMismatch) {
		t.Fatalf("other body: err = %v, want ErrIdempotencyMismatch", err)
	}
	// Another owner has its own keys.
	b := newTask(t, 3)
	b.Owner = "team-b"
	if got, created, err := s.CreateIdempotent(ctx, b, key("team-b", "k1", "other body", at), cutoff); err != nil || !created || got.ID != b.ID {
		t.Fatalf("same key, other owner: %v, created %v", err, created)
	}
	// Past its lifetime the key is claimed by a new task, with a new body.
	late := newTask(t, 4)
	later := at.Add(25 * time.Hour)
	got, created, err = s.CreateIdempotent(ctx, late, key("", "k1", "new body", later), later.Add(-24*time.Hour))
	if err != nil || !created || got.ID != late.ID {
		t.Fatalf("expired key: %+v, created %v, err %v; want a new task", got, created, err)
	}
	got, created, err = s.CreateIdempotent(ctx, newTask(t, 5), key("", "k1", "new body", later), later.Add(-24*time.Hour))
	if err != nil || created || got.ID != late.ID {
		t.Fatalf("replay of the reclaimed key: %+v, created %v, err %v", got, created, err)
	}
	// A task id already stored is a conflict, and the key is not kept.
	if _, _, err := s.CreateIdempotent(ctx, first, key("", "k2", "body", at), cutoff); !errors.Is(err, task.ErrConflict) {
		t.Fatalf("duplicate task id: err = %v, want ErrConflict", err)
	}
	fresh := newTask(t, 6)
	if _, created, err := s.CreateIdempotent(ctx, fresh, key("", "k2", "body", at), cutoff); err != nil || !created {
		t.Fatalf("k2 after the failed create: %v, created %v", err, created)
	}
}

// testCreateIdempotentConcurrent races creates with one key and the same
// body: exactly one task is created and every call gets it.
func testCreateIdempotentConcurrent(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	at := base.Add(time.Hour)
	for round := range 3 {
		const n = 16
		got := make([]*task.Task, n)
		createdBy := make([]bool, n)
		fns := make([]func() error, n)
		for i := range n {
			tk := newTask(t, round*100+i)
			fns[i] = func() error {
				var err error
				got[i], createdBy[i], err = s.CreateIdempotent(ctx, tk, key("o", fmt.Sprintf("race-%d", round), "body", at), at.Add(-time.Hour))
				return err
			}
		}
		winners := 0
		for i, err := range race(fns) {
			if err != nil {
				t.Fatalf("round %d: call %d: %v", round, i, err)
			}
			if createdBy[i] {
				winners++
			}
			if got[i].ID != got[0].ID {
				t.Fatalf("round %d: calls got tasks %s and %s", round, got[0].ID, got[i].ID)
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d calls created a task, want 1", round, winners)
		}
	}
	if st, err := s.Stats(ctx); err != nil || st.Total != 3 {
		t.Fatalf("Stats = %+v, %v; want 3 tasks", st, err)
	}
}

func testPurgeIdempotencyKeys(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	at := base.Add(time.Hour)
	for i := range 4 {
		created := at.Add(time.Duration(i) * time.Hour)
		if _, _, err := s.CreateIdempotent(ctx, newTask(t, i), key("", fmt.Sprint(i), "b", created), created.Add(-24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PurgeIdempotencyKeys(ctx, at.Add(2*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("PurgeIdempotencyKeys = %d, %v; want 2", n, err)
	}
	// A purged key is free: it creates again; a kept one replays.
	now := at.Add(5 * time.Hour)
	if _, created, err := s.CreateIdempotent(ctx, newTask(t, 10), key("", "0", "other", now), now.Add(-24*time.Hour)); err != nil || !created {
		t.Fatalf("purged key: created %v, %v", created, err)
	}
	if _, created, err := s.CreateIdempotent(ctx, newTask(t, 11), key("", "3", "b", now), now.Add(-24*time.Hour)); err != nil || created {
		t.Fatalf("kept key: created %v, %v", created, err)
	}
	if n, err := s.PurgeIdempotencyKeys(ctx, at.Add(2*time.Hour)); err != nil || n != 0 {
		t.Fatalf("second purge = %d, %v", n, err)
	}
}

// testWebhookOutbox: the change that finishes a task with a webhook makes
// its delivery due in the same update; tasks without one never are; the
// due list is oldest first.
func testWebhookOutbox(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	at := base.Add(time.Hour)
	var due []uuid.UUID
	finish := []func(uuid.UUID, time.Time) task.Change{
		func(id uuid.UUID, at time.Time) task.Change {
			return task.MarkCompleted(id, task.Outcome{Attempts: 1}, at)
		},
		func(id uuid.UUID, at time.Time) task.Change {
			return task.MarkFailed(id, task.Outcome{ErrorMessage: "x"}, at)
		},
		func(id uuid.UUID, at time.Time) task.Change { return task.MarkCancelled(id, at) },
	}
	for i := range 6 {
		tk := newTask(t, i)
		if i%2 == 0 {
			tk.Webhook = &task.WebhookDelivery{State: task.WebhookWaiting}
		}
		create(t, s, tk)
		got := apply(t, s, finish[i%3](tk.ID, at.Add(time.Duration(10-i)*time.Second)), nil)
		switch {
		case i%2 == 0 && (got.Webhook == nil || got.Webhook.State != task.WebhookDue):
			t.Fatalf("task %d: webhook %+v after %s, want due", i, got.Webhook, got.Status)
		case i%2 != 0 && got.Webhook != nil:
			t.Fatalf("task %d without webhook got %+v", i, got.Webhook)
		}
		if i%2 == 0 {
			due = append([]uuid.UUID{tk.ID}, due...) // finished earlier: first
		}
	}
	got, err := s.ListWebhooksDue(ctx, 10)
	if err != nil || !sameIDs(ids(got), due) {
		t.Fatalf("ListWebhooksDue = %v, %v; want %v", ids(got), err, due)
	}
	if got, _ := s.ListWebhooksDue(ctx, 2); !sameIDs(ids(got), due[:2]) {
		t.Fatalf("ListWebhooksDue(2) = %v, want %v", ids(got), due[:2])
	}
	// A late result on a cancelled task does not notify again.
	cancelled := due[1]
	if _, err := s.ApplyWebhook(ctx, task.MarkWebhookQueued(cancelled, 0)); err != nil {
		t.Fatal(err)
	}
	late := apply(t, s, task.RecordLateResult(cancelled, task.Outcome{Result: json.RawMessage(`1`), Attempts: 1}, at), nil)
	if late.Status != task.StatusCancelled || late.Webhook == nil || late.Webhook.State != task.WebhookQueued {
		t.Fatalf("after a late result: %s, webhook %+v; want cancelled, queued", late.Status, late.Webhook)
	}
	if got, _ := s.ListWebhooksDue(ctx, 10); len(got) != 2 {
		t.Fatalf("ListWebhooksDue after one was queued = %v, want 2", ids(got))
	}
}

// testWebhookChanges drives a delivery through its states and checks the
// run and state conditions of ApplyWebhook.
func testWebhookChanges(t *testing.T, s task.Store) {
	ctx := ctxOf(t)
	at := base.Add(time.Hour)
	tk := newTask(t, 0)
	tk.Webhook = &task.WebhookDelivery{State: task.WebhookWaiting}
	create(t, s, tk)
	plain := create(t, s, newTask(t, 1))
	applyW := func(c task.WebhookChange, wantErr error) *task.Task {
		t.Helper()
		got, err := s.ApplyWebhook(ctx, c)
		if !errors.Is(err, wantErr) {
			t.Fatalf("ApplyWebhook(%s, run %d) err = %v, want %v", c.To, c.Run, err, wantErr)
		}
		return got
	}
	// Not due yet; unknown task; a task without webhook.
	applyW(task.MarkWebhookQueued(tk.ID, 0), task.ErrConflict)
	applyW(task.MarkWebhookQueued(uuid.New(), 0), task.ErrNotFound)
	apply(t, s, task.MarkCompleted(plain.ID, task.Outcome{}, at), nil)
	applyW(task.MarkWebhookQueued(plain.ID, 0), task.ErrConflict)

	apply(t, s, task.MarkFailed(tk.ID, task.Outcome{ErrorMessage: "x", Attempts: 1}, at), nil)
	before := get(t, s, tk.ID)
	applyW(task.MarkWebhookQueued(tk.ID, 1), task.ErrConflict) // another run
	got := applyW(task.MarkWebhookQueued(tk.ID, 0), nil)
	if got.Webhook.State != task.WebhookQueued || got.Webhook.Attempts != 0 || !got.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("queued: %+v, updated %v (was %v)", got.Webhook, got.UpdatedAt, before.UpdatedAt)
	}
	applyW(task.MarkWebhookQueued(tk.ID, 0), task.ErrConflict) // twice
	got = applyW(task.RecordWebhookFailure(tk.ID, 0, 1, ptr(503), "503 Service Unavailable"), nil)
	want := &task.WebhookDelivery{State: task.WebhookQueued, Attempts: 1, LastStatus: ptr(503), LastError: ptr("503 Service Unavailable")}
	if d := webhookDiff(want, got.Webhook); d != "" {
		t.Fatalf("after a failed attempt: %s", d)
	}
	got = applyW(task.RecordWebhookFailure(tk.ID, 0, 2, nil, "connection refused"), nil)
	want = &task.WebhookDelivery{State: task.WebhookQueued, Attempts: 2, LastError: ptr("connection refused")}
	if d := webhookDiff(want, got.Webhook); d != "" {
		t.Fatalf("after an attempt without answer: %s", d)
	}
	// A stale attempt number does not lower the count.
	got = applyW(task.RecordWebhookFailure(tk.ID, 0, 1, ptr(500), "late"), nil)
	if got.Webhook.Attempts != 2 {
		t.Fatalf("attempts after a stale record = %d, want 2", got.Webhook.Attempts)
	}
	deliveredAt := at.Add(time.Minute)
	got = applyW(task.MarkWebhookDelivered(tk.ID, 0, 3, 204, deliveredAt), nil)
	want = &task.WebhookDelivery{State: task.WebhookDelivered, Attempts: 3, LastStatus: ptr(204), DeliveredAt: &deliveredAt}
	if d := webhookDiff(want, got.Webhook); d != "" {
		t.Fatalf("delivered: %s", d)
	}
	if d := webhookDiff(want, get(t, s, tk.ID).Webhook); d != "" {
		t.Fatalf("stored delivered: %s", d)
	}
	applyW(task.MarkWebhookFailed(tk.ID, 0, 4, nil, "x"), task.ErrConflict)
	applyW(task.MarkWebhookDelivered(tk.ID, 0, 4, 200, at), task.ErrConflict)
	// A retry starts over; the old run's delivery can no longer write.
	apply(t, s, task.MarkRetried(tk.ID, 1, at), nil)
	applyW(task.MarkWebhookFailed(tk.ID, 0, 4, nil, "x"), task.ErrConflict)
	apply(t, s, task.MarkCancelled(tk.ID, at), nil)
	got = applyW(task.MarkWebhookFailed(tk.ID, 1, 1, nil, "target refused"), nil)
	want = &task.WebhookDelivery{State: task.WebhookFailed, Attempts: 1, LastError: ptr("target refused")}
	if d := webhookDiff(want, got.Webhook); d != "" {
		t.Fatalf("failed: %s", d)
	}
}
