package task_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/task"
)

func TestSanitizeText(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		max      int
		changed  bool
	}{
		{"plain", "plain", 0, false},
		{"boom\x00here", "boomhere", 0, true},
		{"bad \xff\xfe utf8", "bad \uFFFD utf8", 0, true},
		{"\x00\xc3", "\uFFFD", 0, true},
		{"héllo", "héllo", 0, false},
		{strings.Repeat("é", 20), strings.Repeat("é", 4) + "… [truncated]", 23, true},
		{"short", "short", 23, false},
	} {
		got, changed := task.SanitizeText(tc.in, tc.max)
		if got != tc.want || changed != tc.changed {
			t.Errorf("SanitizeText(%q, %d) = %q, %v; want %q, %v", tc.in, tc.max, got, changed, tc.want, tc.changed)
		}
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 || (tc.max > 0 && len(got) > tc.max) {
			t.Errorf("SanitizeText(%q) = %q breaks the rules", tc.in, got)
		}
	}
}

func TestSanitizeJSON(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		changed  bool
	}{
		{`{"a":1,"b":[true,null,"x"]}`, `{"a":1,"b":[true,null,"x"]}`, false},
		{`{"b": 2,  "a":1.000000000000000000001}`, `{"b": 2,  "a":1.000000000000000000001}`, false},
		{`{"out":"boom\u0000here"}`, `{"out":"boomhere"}`, true},
		{`{"k\u0000ey":"v"}`, `{"key":"v"}`, true},
		{`"\\u0000 is text"`, `"\\u0000 is text"`, false},
		{`"\\\u0000"`, `"\\"`, true},
		{`"caf\u00e9 \u20ac \ud83d\ude00"`, `"caf\u00e9 \u20ac \ud83d\ude00"`, false},
		{`"lone \ud800 and \udc00"`, `"lone \ufffd and \ufffd"`, true},
		{"\"bad \xff byte\"", "\"bad \uFFFD byte\"", true},
		{"[\"\xc3\", \"ok\"]", "[\"\uFFFD\", \"ok\"]", true},
		{`not json`, `"not json"`, true},
		{"{\"cut\":", `"{\"cut\":"`, true},
	} {
		got, changed := task.SanitizeJSON(json.RawMessage(tc.in))
		if string(got) != tc.want || changed != tc.changed {
			t.Errorf("SanitizeJSON(%q) = %q, %v; want %q, %v", tc.in, got, changed, tc.want, tc.changed)
		}
		if !json.Valid(got) || !utf8.Valid(got) || strings.Contains(string(got), `\u0000`) && !strings.Contains(string(got), `\\u0000`) {
			t.Errorf("SanitizeJSON(%q) = %q breaks the rules", tc.in, got)
		}
	}
	if got, changed := task.SanitizeJSON(nil); got != nil || changed {
		t.Errorf("SanitizeJSON(nil) = %q, %v", got, changed)
	}
}

// TestChangesSanitize: every Mark function that carries data from outside
// sanitises it and says so; clean data passes unchanged.
func TestChangesSanitize(t *testing.T) {
	id := uuid.New()
	at := time.Now()
	dirty := task.Outcome{WorkerID: "w\x00", Result: json.RawMessage(`{"x":"a\u0000b"}`), ErrorMessage: "boom\x00\xff"}
	for name, c := range map[string]task.Change{
		"completed": task.MarkCompleted(id, dirty, at),
		"failed":    task.MarkFailed(id, dirty, at),
		"late":      task.RecordLateResult(id, dirty, at),
	} {
		if !c.Sanitized || *c.WorkerID != "w" || string(c.Result) != `{"x":"ab"}` || *c.ErrorMessage != "boom\uFFFD" {
			t.Errorf("%s: %+v, want sanitised data and Sanitized", name, c)
		}
	}
	if c := task.MarkRunning(id, 1, "w\x00", at); !c.Sanitized || *c.WorkerID != "w" {
		t.Errorf("running: %+v", c)
	}
	if c := task.MarkRetrying(id, 1, strings.Repeat("x", task.MaxErrorMessageBytes+10), at); !c.Sanitized ||
		len(*c.ErrorMessage) > task.MaxErrorMessageBytes || !strings.HasSuffix(*c.ErrorMessage, "[truncated]") {
		t.Errorf("retrying: Sanitized %v, message of %d bytes", c.Sanitized, len(*c.ErrorMessage))
	}
	clean := task.MarkCompleted(id, task.Outcome{WorkerID: "w", Result: json.RawMessage(`{"x":1}`)}, at)
	if clean.Sanitized || string(clean.Result) != `{"x":1}` {
		t.Errorf("clean change: %+v", clean)
	}
}

func TestMarkUnstorable(t *testing.T) {
	id := uuid.New()
	at := time.Now()
	ms := int64(5)
	cause := errors.New("value too long")
	o := task.Outcome{WorkerID: "w", Result: json.RawMessage(`1`), ErrorMessage: "e", ExecutionTime: &ms, Attempts: 2}
	for _, tc := range []struct {
		c  task.Change
		to task.Status
	}{
		{task.MarkCompleted(id, o, at), task.StatusFailed},
		{task.MarkFailed(id, o, at), task.StatusFailed},
		{task.RecordLateResult(id, o, at), task.StatusCancelled},
	} {
		u := task.MarkUnstorable(tc.c, cause)
		if u.To != tc.to || u.Result != nil || u.WorkerID != nil || u.ErrorMessage == nil ||
			*u.ErrorMessage != task.UnstorableReason+"value too long" || !u.Sanitized ||
			u.Attempts != 2 || *u.ExecutionTime != 5 || u.ID != id {
			t.Errorf("MarkUnstorable(%s) = %+v", tc.c.To, u)
		}
		if u.Allows(task.StatusRunning, 0) != tc.c.Allows(task.StatusRunning, 0) || u.Allows(task.StatusCancelled, 0) != tc.c.Allows(task.StatusCancelled, 0) {
			t.Errorf("MarkUnstorable(%s) applies to other statuses than the change it replaces", tc.c.To)
		}
	}
	r := task.MarkUnstorable(task.MarkRunning(id, 1, "w", at), cause)
	if r.To != task.StatusRunning || r.WorkerID != nil || r.ErrorMessage != nil {
		t.Errorf("MarkUnstorable(running) = %+v", r)
	}
}
