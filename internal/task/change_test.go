package task_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/task"
)

const (
	P = task.StatusPending
	Q = task.StatusQueued
	R = task.StatusRunning
	C = task.StatusCompleted
	F = task.StatusFailed
	X = task.StatusCancelled
)

// TestChangeAllows spells out, for every kind of change, the statuses and
// stored attempts it applies to; every other combination must be refused.
func TestChangeAllows(t *testing.T) {
	id := uuid.New()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o := task.Outcome{Attempts: 2}
	live := []task.Status{P, Q, R}
	tests := []struct {
		name   string
		c      task.Change
		to     task.Status
		from   []task.Status
		allows func(attempts int) bool // on the from statuses
	}{
		{"queued", task.MarkQueued(id, at), Q, []task.Status{P}, func(int) bool { return true }},
		{"running attempt 2", task.MarkRunning(id, 2, "w", at), R, live, func(a int) bool { return a < 2 }},
		{"retrying attempt 2", task.MarkRetrying(id, 2, "e", at), Q, live, func(a int) bool { return a <= 2 }},
		{"completed", task.MarkCompleted(id, o, at), C, live, func(int) bool { return true }},
		{"failed", task.MarkFailed(id, o, at), F, live, func(int) bool { return true }},
		{"cancelled", task.MarkCancelled(id, at), X, live, func(int) bool { return true }},
		{"late result", task.RecordLateResult(id, o, at), X, []task.Status{X}, func(int) bool { return true }},
		{"retried", task.MarkRetried(id, 2, at), P, []task.Status{F, X}, func(int) bool { return true }},
	}
	for _, tc := range tests {
		if tc.c.To != tc.to || tc.c.ID != id {
			t.Errorf("%s: To = %s, ID = %s; want %s, %s", tc.name, tc.c.To, tc.c.ID, tc.to, id)
		}
		for _, s := range task.Statuses {
			inFrom := false
			for _, f := range tc.from {
				inFrom = inFrom || f == s
			}
			for attempts := range 5 {
				want := inFrom && tc.allows(attempts)
				if got := tc.c.Allows(s, attempts); got != want {
					t.Errorf("%s.Allows(%s, attempts %d) = %v, want %v", tc.name, s, attempts, got, want)
				}
			}
		}
	}
}

// TestTerminalIsFinal: no change but the late result applies to a terminal task.
func TestTerminalIsFinal(t *testing.T) {
	id := uuid.New()
	at := time.Now()
	for _, c := range []task.Change{
		task.MarkQueued(id, at), task.MarkRunning(id, 99, "", at), task.MarkRetrying(id, 99, "e", at),
		task.MarkCompleted(id, task.Outcome{}, at), task.MarkFailed(id, task.Outcome{}, at), task.MarkCancelled(id, at),
	} {
		for _, s := range []task.Status{C, F, X} {
			for _, attempts := range []int{0, 1, 5} {
				if c.Allows(s, attempts) {
					t.Errorf("change to %s allowed from terminal %s (attempts %d)", c.To, s, attempts)
				}
			}
		}
	}
}

func TestChangeFields(t *testing.T) {
	id := uuid.New()
	zone := time.FixedZone("UTC+2", 2*3600)
	at := time.Date(2026, 5, 6, 7, 8, 9, 10000, zone)
	exec := int64(1500)
	res := json.RawMessage(`{"ok":true}`)

	r := task.MarkRunning(id, 3, "worker-1", at)
	if r.Attempts != 3 || r.Guard != task.NewerAttempt || r.WorkerID == nil || *r.WorkerID != "worker-1" ||
		r.StartedAt == nil || !r.StartedAt.Equal(at) || r.StartedAt.Location() != time.UTC || !r.At.Equal(at) {
		t.Errorf("MarkRunning = %+v", r)
	}
	if r := task.MarkRunning(id, 1, "", at); r.WorkerID != nil {
		t.Errorf("MarkRunning without a worker sets WorkerID %q", *r.WorkerID)
	}

	q := task.MarkRetrying(id, 2, "boom", at)
	if q.To != Q || q.Guard != task.SameOrNewerAttempt || q.Attempts != 2 || q.ErrorMessage == nil || *q.ErrorMessage != "boom" ||
		q.CompletedAt != nil || q.Result != nil {
		t.Errorf("MarkRetrying = %+v", q)
	}

	o := task.Outcome{WorkerID: "w", Result: res, ErrorMessage: "partial", ExecutionTime: &exec, Attempts: 4}
	for _, c := range []task.Change{task.MarkCompleted(id, o, at), task.MarkFailed(id, o, at)} {
		if c.Guard != task.AnyAttempt || c.Attempts != 4 || string(c.Result) != string(res) || *c.WorkerID != "w" ||
			*c.ErrorMessage != "partial" || *c.ExecutionTime != exec || c.CompletedAt == nil || !c.CompletedAt.Equal(at) ||
			c.CompletedAt.Location() != time.UTC || c.StartedAt != nil {
			t.Errorf("finish change to %s = %+v", c.To, c)
		}
	}
	empty := task.MarkFailed(id, task.Outcome{}, at)
	if empty.WorkerID != nil || empty.ErrorMessage != nil || empty.Result != nil || empty.ExecutionTime != nil || empty.Attempts != 0 {
		t.Errorf("MarkFailed with an empty outcome sets fields: %+v", empty)
	}

	x := task.MarkCancelled(id, at)
	if x.CompletedAt == nil || !x.CompletedAt.Equal(at) || x.Result != nil || x.Attempts != 0 {
		t.Errorf("MarkCancelled = %+v", x)
	}

	late := task.RecordLateResult(id, o, at)
	if late.To != X || late.CompletedAt != nil || string(late.Result) != string(res) || late.Attempts != 4 {
		t.Errorf("RecordLateResult = %+v", late)
	}
}

func TestAllowsGuards(t *testing.T) {
	for _, tc := range []struct {
		guard    task.AttemptGuard
		event    int
		stored   int
		expected bool
	}{
		{task.AnyAttempt, 0, 5, true},
		{task.NewerAttempt, 2, 1, true},
		{task.NewerAttempt, 2, 2, false},
		{task.NewerAttempt, 2, 3, false},
		{task.SameOrNewerAttempt, 2, 1, true},
		{task.SameOrNewerAttempt, 2, 2, true},
		{task.SameOrNewerAttempt, 2, 3, false},
	} {
		c := task.Change{From: []task.Status{R}, Guard: tc.guard, Attempts: tc.event}
		name := fmt.Sprintf("guard %d event %d stored %d", tc.guard, tc.event, tc.stored)
		if got := c.Allows(R, tc.stored); got != tc.expected {
			t.Errorf("%s: Allows = %v, want %v", name, got, tc.expected)
		}
	}
}

// TestAllowsRun: changes about an attempt of an earlier run (at or below
// the task's attempt offset) are refused; unknown attempts and retries pass.
func TestAllowsRun(t *testing.T) {
	id := uuid.New()
	at := time.Now()
	for _, tc := range []struct {
		c      task.Change
		offset int
		want   bool
	}{
		{task.MarkRunning(id, 4, "w", at), 3, true},
		{task.MarkRunning(id, 3, "w", at), 3, false},
		{task.MarkRetrying(id, 3, "e", at), 3, false},
		{task.MarkFailed(id, task.Outcome{Attempts: 2}, at), 3, false},
		{task.MarkCompleted(id, task.Outcome{Attempts: 4}, at), 3, true},
		{task.MarkFailed(id, task.Outcome{}, at), 3, true}, // attempts unknown
		{task.MarkCancelled(id, at), 3, true},
		{task.MarkRetried(id, 3, at), 3, true},
		{task.MarkRunning(id, 1, "w", at), 0, true},
	} {
		if got := tc.c.AllowsRun(tc.offset); got != tc.want {
			t.Errorf("%s attempt %d with offset %d: AllowsRun = %v, want %v", tc.c.To, tc.c.Attempts, tc.offset, got, tc.want)
		}
	}
}

// TestNotify: every change that gives a live task a final status notifies;
// nothing else does.
func TestNotify(t *testing.T) {
	id := uuid.New()
	at := time.Now()
	for _, c := range []task.Change{task.MarkCompleted(id, task.Outcome{}, at), task.MarkFailed(id, task.Outcome{}, at), task.MarkCancelled(id, at)} {
		if !c.Notify {
			t.Errorf("change to %s does not notify", c.To)
		}
	}
	for _, c := range []task.Change{task.MarkQueued(id, at), task.MarkRunning(id, 1, "", at), task.MarkRetrying(id, 1, "e", at),
		task.RecordLateResult(id, task.Outcome{}, at), task.MarkRetried(id, 0, at)} {
		if c.Notify {
			t.Errorf("change to %s (from %v) notifies", c.To, c.From)
		}
	}
	if r := task.MarkRetried(id, 2, at); !r.NewRun || r.Attempts != 2 || r.To != P {
		t.Errorf("MarkRetried = %+v", r)
	}
}

func TestWebhookChangeAllows(t *testing.T) {
	id := uuid.New()
	st := func(s task.WebhookState) *task.WebhookState { return &s }
	for _, tc := range []struct {
		c     task.WebhookChange
		run   int
		state *task.WebhookState
		want  bool
	}{
		{task.MarkWebhookQueued(id, 0), 0, st(task.WebhookDue), true},
		{task.MarkWebhookQueued(id, 0), 1, st(task.WebhookDue), false},
		{task.MarkWebhookQueued(id, 0), 0, st(task.WebhookQueued), false},
		{task.MarkWebhookQueued(id, 0), 0, nil, false},
		{task.RecordWebhookFailure(id, 1, 2, nil, "x"), 1, st(task.WebhookQueued), true},
		{task.MarkWebhookDelivered(id, 1, 2, 200, time.Now()), 1, st(task.WebhookDue), true},
		{task.MarkWebhookDelivered(id, 1, 2, 200, time.Now()), 1, st(task.WebhookDelivered), false},
		{task.MarkWebhookFailed(id, 1, 2, nil, "x"), 1, st(task.WebhookFailed), false},
		{task.MarkWebhookFailed(id, 1, 2, nil, "x"), 1, st(task.WebhookWaiting), false},
	} {
		if got := tc.c.Allows(tc.run, tc.state); got != tc.want {
			t.Errorf("%s (run %d) on run %d state %v: Allows = %v, want %v", tc.c.To, tc.c.Run, tc.run, tc.state, got, tc.want)
		}
	}
}
