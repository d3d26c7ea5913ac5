package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentorch/orchestrator/internal/executor"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestClaudeExecutorEndToEnd runs a task through the worker binary with the
// claude executor on the fake CLI of the executor tests, and checks /health
// and /metrics on WORKER_HTTP_ADDR.
func TestClaudeExecutorEndToEnd(t *testing.T) {
	client := testenv.RedisClient(t)
	queue := testenv.TaskQueue(t, "tasks")
	tasks, results := newQueue(t, client, queue), newQueue(t, client, queue+"-results")
	fake, err := filepath.Abs("../../internal/executor/testdata/fake-claude")
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	startWorker(t, "QUEUE_NAME="+queue, "WORKER_ID=worker-c", "WORKER_EXECUTOR=claude", "CLAUDE_BIN="+fake, "WORKER_HTTP_ADDR="+addr)

	id := addTask(t, tasks) // code "a\nb\n": main.txt
	res := result(t, results, id)
	var cr executor.ClaudeResult
	if err := json.Unmarshal(res.Result, &cr); err != nil {
		t.Fatalf("result %s: %v", res.Result, err)
	}
	if res.Status != taskqueue.ResultCompleted || cr.Answer != "Edited main.txt" || !strings.Contains(cr.Diff, "+++ b/NOTES.md") ||
		cr.CostUSD == nil || *cr.CostUSD != 0.0123 {
		t.Errorf("result = %+v / %s", res, res.Result)
	}

	for path, want := range map[string]string{
		"/health":  `"status":"ok"`,
		"/metrics": `worker_tasks_total{outcome="completed"} 1`,
	} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d, want %q in:\n%.500s", path, resp.StatusCode, want, body)
		}
	}
}

// TestAnthropicExecutorEndToEnd runs a task through the worker binary with
// the anthropic executor against a fake Messages API.
func TestAnthropicExecutorEndToEnd(t *testing.T) {
	client := testenv.RedisClient(t)
	queue := testenv.TaskQueue(t, "tasks")
	tasks, results := newQueue(t, client, queue), newQueue(t, client, queue+"-results")
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"m","type":"message","role":"assistant","model":"fake-model","content":[{"type":"text","text":"two lines"}],`+
			`"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}`)
	}))
	defer api.Close()
	startWorker(t, "QUEUE_NAME="+queue, "WORKER_EXECUTOR=anthropic", "ANTHROPIC_API_KEY=k", "ANTHROPIC_MODEL=fake-model",
		"ANTHROPIC_BASE_URL="+api.URL)

	id := addTask(t, tasks)
	res := result(t, results, id)
	var ar executor.AnthropicResult
	if err := json.Unmarshal(res.Result, &ar); err != nil {
		t.Fatal(err)
	}
	if res.Status != taskqueue.ResultCompleted || ar.Answer != "two lines" || ar.Model != "fake-model" || ar.Usage.OutputTokens != 2 {
		t.Errorf("result = %+v / %s", res, res.Result)
	}
}

// TestDemoAgent runs a task through the worker binary with the bundled
// offline demo agent that `make run` uses.
func TestDemoAgent(t *testing.T) {
	client := testenv.RedisClient(t)
	queue := testenv.TaskQueue(t, "tasks")
	tasks, results := newQueue(t, client, queue), newQueue(t, client, queue+"-results")
	script, err := filepath.Abs("../../examples/demo-agent/demo-agent.sh")
	if err != nil {
		t.Fatal(err)
	}
	startWorker(t, "QUEUE_NAME="+queue, "WORKER_COMMAND="+script, "DEMO_AGENT_DELAY=0", "WORKER_AGENT_ENV=DEMO_AGENT_*")
	id := addTask(t, tasks) // code "a\nb\n", prompt "count"
	res := result(t, results, id)
	var got struct {
		TaskID      string `json:"taskId"`
		Answer      string `json:"answer"`
		LinesOfCode int    `json:"linesOfCode"`
	}
	if err := json.Unmarshal(res.Result, &got); err != nil {
		t.Fatalf("result %s: %v", res.Result, err)
	}
	if res.Status != taskqueue.ResultCompleted || got.TaskID != id || got.LinesOfCode != 2 || !strings.Contains(got.Answer, "count") {
		t.Errorf("result = %+v / %s", res, res.Result)
	}
}
