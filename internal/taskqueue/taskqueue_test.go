package taskqueue_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/taskqueue"
)

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		n                       taskqueue.Names
		tasks, results, channel string
	}{
		{taskqueue.Names{}, "claude-tasks", "claude-tasks-results", "bull:claude-tasks:cancel"},
		{taskqueue.Names{Prefix: "{p}", Queue: "q"}, "q", "q-results", "{p}:q:cancel"},
	} {
		if got, want := tc.n.CancelRequests(), strings.TrimSuffix(tc.channel, ":cancel")+"-cancel-requests"; got != want {
			t.Errorf("%+v.CancelRequests() = %q, want %q", tc.n, got, want)
		}
		if strings.HasPrefix(tc.n.CancelRequests(), strings.TrimSuffix(tc.channel, "cancel")) {
			t.Errorf("%+v.CancelRequests() = %q lies among the task queue's keys", tc.n, tc.n.CancelRequests())
		}
		if got := tc.n.Tasks(); got != tc.tasks {
			t.Errorf("%+v.Tasks() = %q, want %q", tc.n, got, tc.tasks)
		}
		if got := tc.n.Results(); got != tc.results {
			t.Errorf("%+v.Results() = %q, want %q", tc.n, got, tc.results)
		}
		if got, want := tc.n.Webhooks(), tc.tasks+"-webhooks"; got != want {
			t.Errorf("%+v.Webhooks() = %q, want %q", tc.n, got, want)
		}
		if got := tc.n.CancelChannel(); got != tc.channel {
			t.Errorf("%+v.CancelChannel() = %q, want %q", tc.n, got, tc.channel)
		}
	}
	if err := (taskqueue.Names{Queue: "a:b"}).Validate(); err == nil {
		t.Error("a queue name with ':' is accepted")
	}
	if err := (taskqueue.Names{Prefix: " "}).Validate(); err == nil {
		t.Error("a blank prefix is accepted")
	}
	if err := (taskqueue.Names{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestResultRoundTrip encodes a result as a worker posts it and parses it as
// the orchestrator does, for both statuses: the wire keys are exactly the
// documented ones, always present.
func TestResultRoundTrip(t *testing.T) {
	id := uuid.New()
	ms := int64(1500)
	msg := "agent crashed"
	for _, r := range []taskqueue.Result{
		{TaskID: id.String(), WorkerID: "w1", Status: taskqueue.ResultCompleted, Result: json.RawMessage(`{"answer":"hi"}`), ExecutionTime: &ms},
		{TaskID: id.String(), WorkerID: "w1", Status: taskqueue.ResultFailed, ErrorMessage: &msg, ExecutionTime: &ms},
	} {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(b, &keys); err != nil {
			t.Fatal(err)
		}
		if len(keys) != 6 {
			t.Errorf("encoded %s: %d keys, want taskId, workerId, status, result, errorMessage, executionTime", b, len(keys))
		}
		got, gotID, err := taskqueue.ParseResult(b)
		if err != nil {
			t.Fatalf("ParseResult(%s): %v", b, err)
		}
		if gotID != id || got.Status != r.Status || got.WorkerID != "w1" || *got.ExecutionTime != ms ||
			string(got.Result) != string(r.Result) || (r.ErrorMessage != nil) != (got.ErrorMessage != nil) {
			t.Errorf("round trip of %s gave %+v", b, got)
		}
	}
}

func TestParseResultRejects(t *testing.T) {
	id := uuid.NewString()
	for _, tc := range []struct{ data, want string }{
		{``, "JSON object"},
		{`[1]`, "JSON object"},
		{`{"taskId":1}`, "not a valid result"},
		{`{"status":"completed"}`, "no taskId"},
		{`{"taskId":"x","status":"completed"}`, "not a task id"},
		{`{"taskId":"` + id + `","status":"done"}`, "status must be"},
		{`{"taskId":"` + id + `","status":"failed","executionTime":-1}`, "negative"},
		{`{"taskId":"` + id + `","status":"completed","usage":{"inputTokens":-5}}`, "usage must not be negative"},
	} {
		if _, _, err := taskqueue.ParseResult([]byte(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseResult(%s) = %v, want an error about %q", tc.data, err, tc.want)
		}
	}
	// A minimal result from another worker: only the required fields.
	r, _, err := taskqueue.ParseResult([]byte(`{"taskId":"` + id + `","status":"completed","result":null}`))
	if err != nil || r.Result != nil || r.ExecutionTime != nil || r.ErrorMessage != nil {
		t.Errorf("minimal result: %+v, %v", r, err)
	}
}

func TestJobAndReturnValueRoundTrip(t *testing.T) {
	j := taskqueue.Job{TaskID: uuid.NewString(), Code: "print(1)", Prompt: "p", Timeout: 1000}
	b, _ := json.Marshal(j)
	if string(b) != `{"taskId":"`+j.TaskID+`","code":"print(1)","prompt":"p","timeout":1000,"retryOnTimeout":false}` {
		t.Errorf("job data = %s", b)
	}
	var back taskqueue.Job
	if err := json.Unmarshal(b, &back); err != nil || back != j {
		t.Errorf("job round trip: %+v, %v", back, err)
	}
	rid := taskqueue.ResultJobID(j.TaskID, 2)
	if rid != j.TaskID+"-result-2" || strings.Contains(rid, ":") {
		t.Errorf("ResultJobID = %q", rid)
	}
	rv := taskqueue.ReturnValue{TaskID: j.TaskID, ResultJobID: rid, ExecutionTime: 5}
	b, _ = json.Marshal(rv)
	if got, ok := taskqueue.ParseReturnValue(b); !ok || got != rv {
		t.Errorf("return value round trip: %+v, %v", got, ok)
	}
	if _, ok := taskqueue.ParseReturnValue([]byte(`{"answer":1}`)); ok {
		t.Error("a foreign return value parses as ours")
	}
}

func TestResultUsageAndProgress(t *testing.T) {
	id := uuid.NewString()
	r, _, err := taskqueue.ParseResult([]byte(`{"taskId":"` + id + `","status":"completed","usage":{"inputTokens":10,"outputTokens":2,"costUsd":0.5}}`))
	if err != nil || r.Usage == nil || r.Usage.InputTokens != 10 || r.Usage.OutputTokens != 2 || *r.Usage.CostUSD != 0.5 {
		t.Fatalf("usage: %+v, %v", r.Usage, err)
	}
	b, _ := json.Marshal(taskqueue.Progress{Turns: 2, ToolCalls: 1, InputTokens: 5, OutputTokens: 6, CostUSD: 0.25, LastTool: "Bash", Logs: 7})
	if string(b) != `{"turns":2,"toolCalls":1,"inputTokens":5,"outputTokens":6,"costUsd":0.25,"lastTool":"Bash","logs":7}` {
		t.Errorf("progress = %s", b)
	}
}

// TestResultJobIDs: the ids a worker posts results under parse back to the
// task and attempt; other ids do not.
func TestResultJobIDs(t *testing.T) {
	id := uuid.NewString()
	for _, tc := range []struct {
		in   string
		task string
		n    int
		ok   bool
	}{
		{taskqueue.ResultJobID(id, 0), id, 0, true},
		{taskqueue.ResultJobID(id, 12), id, 12, true},
		{taskqueue.AltResultJobID(id, 2, "abc123"), id, 2, true},
		{"17", "", 0, false},
		{id, "", 0, false},
		{id + "-result-", "", 0, false},
		{id + "-result-x", "", 0, false},
		{id + "-result-01", "", 0, false},
		{"-result-1", "", 0, false},
	} {
		task, n, ok := taskqueue.ParseResultJobID(tc.in)
		if task != tc.task || n != tc.n || ok != tc.ok {
			t.Errorf("ParseResultJobID(%q) = %q, %d, %v; want %q, %d, %v", tc.in, task, n, ok, tc.task, tc.n, tc.ok)
		}
	}
	if alt := taskqueue.AltResultJobID(id, 0, "n"); strings.Contains(alt, ":") || alt == taskqueue.ResultJobID(id, 0) {
		t.Errorf("AltResultJobID = %q", alt)
	}
}

// TestAttemptOffset: a retried task's job carries the attempts made before
// it; the attempt numbers and result ids of its runs continue the task's.
func TestAttemptOffset(t *testing.T) {
	j := taskqueue.Job{TaskID: uuid.NewString(), Code: "c", Prompt: "p", Timeout: 1000, AttemptOffset: 3}
	b, _ := json.Marshal(j)
	if !strings.Contains(string(b), `"attemptOffset":3`) {
		t.Errorf("job data %s lacks attemptOffset", b)
	}
	if got := taskqueue.ParseAttemptOffset(b); got != 3 {
		t.Errorf("ParseAttemptOffset(%s) = %d, want 3", b, got)
	}
	if got := j.Attempt(0); got != 4 {
		t.Errorf("Attempt(0) = %d, want 4", got)
	}
	for _, data := range []string{`{"taskId":"x"}`, `not json`, `{"attemptOffset":-2}`, `{"attemptOffset":"3"}`} {
		if got := taskqueue.ParseAttemptOffset([]byte(data)); got != 0 {
			t.Errorf("ParseAttemptOffset(%s) = %d, want 0", data, got)
		}
	}
	if got := (taskqueue.Job{}).Attempt(2); got != 3 {
		t.Errorf("Attempt(2) without offset = %d, want 3", got)
	}
}
