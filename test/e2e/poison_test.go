package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// trustTask is a task as the API returns it, with the sanitized flag.
type trustTask struct {
	apiTask
	Sanitized bool `json:"sanitized"`
}

func (o *orchestrator) getTrust(id string) trustTask {
	o.t.Helper()
	var tk trustTask
	if code, err := o.do("GET", "/tasks/"+id, nil, &tk); err != nil || code != 200 {
		o.t.Fatalf("GET /tasks/%s: %d %v", id, code, err)
	}
	return tk
}

// poisonAgent is the command of the Go worker in the trust tests.
func poisonAgent() string {
	return filepath.Join(testenv.RepoRoot(), "test", "e2e", "testdata", "poison_agent.sh")
}

// TestPoisonSuite: on PostgreSQL and SQLite, with the real orchestrator and
// bin/worker (command executor), agents that write NUL on stderr and
// stdout, a \u0000 escape in their JSON, invalid UTF-8 (with NUL), and
// outputs larger than the worker's cap, interleaved with 20 normal tasks:
// every normal task completes, every poison task reaches a final status
// with a readable reason (stored sanitised), and a task created afterwards
// goes queued → running → completed.
func TestPoisonSuite(t *testing.T) {
	for _, kind := range []string{"postgres", "sqlite"} {
		t.Run(kind, func(t *testing.T) { testPoisonSuite(t, kind) })
	}
}

func testPoisonSuite(t *testing.T, kind string) {
	redisURL := testenv.RedisURL(t)
	queue := testenv.TaskQueue(t, "poison")
	db := "sqlite://" + testenv.SQLitePath(t)
	if kind == "postgres" {
		db = testenv.PostgresURL(t)
	}
	o := startOrchestrator(t, map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue, "DATABASE_URL": db,
		"TASK_ATTEMPTS": "2", "TASK_BACKOFF_MS": "100"})
	runGoWorker(t, map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue, "WORKER_ID": "poison-worker",
		"WORKER_EXECUTOR": "command", "WORKER_COMMAND": poisonAgent(), "WORKER_CONCURRENCY": "4", "WORKER_KILL_GRACE": "1s"})

	// What each poison must end as: status, and a check of the task.
	poison := map[string]struct {
		status string
		check  func(tk trustTask) error
	}{
		"nul-stderr": {"failed", messageHas("boomhere")},
		"utf8-stderr": {"failed", func(tk trustTask) error {
			if !strings.Contains(*tk.ErrorMessage, "caf\uFFFD") || !strings.Contains(*tk.ErrorMessage, "bad \uFFFD") {
				return fmt.Errorf("message %q lacks the replaced bytes", *tk.ErrorMessage)
			}
			return nil
		}},
		"huge-stderr": {"failed", messageHas("exited with status 1")},
		"nul-stdout":  {"completed", resultIs(`"output"`)},
		"json-nul":    {"completed", resultIs(`{"out":"ab"}`)},
		"utf8-stdout": {"completed", resultIs(`{"out":"caf\ufffd x"}`)},
		"huge-stdout": {"completed", func(tk trustTask) error {
			var r struct {
				Output    string `json:"output"`
				Truncated bool   `json:"truncated"`
			}
			if err := json.Unmarshal(tk.Result, &r); err != nil || !r.Truncated || len(r.Output) > 1<<20 {
				return fmt.Errorf("result of %d bytes, truncated %v (%v)", len(tk.Result), r.Truncated, err)
			}
			return nil
		}},
	}
	sanitized := map[string]bool{"nul-stderr": true, "utf8-stderr": true, "huge-stderr": true, "nul-stdout": true,
		"json-nul": true, "utf8-stdout": true}

	byID := map[string]string{} // task id → poison name ("" for normal)
	var ids []string
	names := make([]string, 0, len(poison))
	for name := range poison {
		names = append(names, name)
	}
	for i := 0; i < 20 || len(names) > 0; i++ {
		if len(names) > 0 && i%3 == 1 {
			tk := o.create(names[0] + " please")
			byID[tk.ID], ids = names[0], append(ids, tk.ID)
			names = names[1:]
		}
		if i < 20 {
			tk := o.create(fmt.Sprintf("normal task %d", i))
			byID[tk.ID], ids = "", append(ids, tk.ID)
		}
	}
	o.waitTerminal(ids, 120*time.Second)
	for _, id := range ids {
		tk := o.getTrust(id)
		name := byID[id]
		if name == "" {
			if tk.Status != "completed" || string(tk.Result) != `{"answer":"ok"}` {
				t.Errorf("normal task %s = %s", id, tk.String())
			}
			continue
		}
		want := poison[name]
		if tk.Status != want.status {
			t.Errorf("%s: status %s, want %s (%s)", name, tk.Status, want.status, tk.String())
			continue
		}
		if tk.Status == "failed" && (tk.ErrorMessage == nil || *tk.ErrorMessage == "" || strings.ContainsRune(*tk.ErrorMessage, 0) ||
			!utf8.ValidString(*tk.ErrorMessage)) {
			t.Errorf("%s: unreadable reason: %s", name, tk.String())
		}
		if err := want.check(tk); err != nil {
			t.Errorf("%s: %v (%s)", name, err, tk.String())
		}
		if tk.Sanitized != sanitized[name] {
			t.Errorf("%s: sanitized %v, want %v", name, tk.Sanitized, sanitized[name])
		}
	}

	// A task created afterwards goes through every status.
	after := o.create("sleep2 after the poison")
	seen := []string{after.Status}
	deadline := time.Now().Add(60 * time.Second)
	for seen[len(seen)-1] != "completed" {
		if time.Now().After(deadline) {
			t.Fatalf("task created afterwards went %v, never completed", seen)
		}
		tk, err := o.get(after.ID)
		if err == nil && tk.Status != seen[len(seen)-1] {
			seen = append(seen, tk.Status)
		}
		time.Sleep(25 * time.Millisecond)
	}
	if strings.Join(seen, "→") != "queued→running→completed" {
		t.Errorf("task created afterwards went %s, want queued→running→completed", strings.Join(seen, "→"))
	}
}

func messageHas(s string) func(trustTask) error {
	return func(tk trustTask) error {
		if tk.ErrorMessage == nil || !strings.Contains(*tk.ErrorMessage, s) {
			return fmt.Errorf("error message lacks %q", s)
		}
		return nil
	}
}

func resultIs(want string) func(trustTask) error {
	return func(tk trustTask) error {
		var a, b any
		if json.Unmarshal(tk.Result, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
			return fmt.Errorf("result %s is not %s", tk.Result, want)
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			return fmt.Errorf("result %s, want %s", tk.Result, want)
		}
		return nil
	}
}
