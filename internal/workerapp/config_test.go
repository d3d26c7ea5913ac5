package workerapp

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/redisconn"
)

func lookupMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(lookupMap(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Executor != ExecutorClaude || c.ClaudeBin != "claude" || c.Concurrency != 1 || c.KillGrace != 5*time.Second ||
		c.MaxOutput != 1<<20 || c.ShutdownTimeout != 30*time.Second || c.HTTPAddr != "" || c.QueueName != "claude-tasks" ||
		c.QueuePrefix != "bull" || c.Redis != (redisconn.Config{}) || c.LogLevel != slog.LevelInfo || c.LogFormat != "json" ||
		c.WorkerID == "" || c.ResultsQueue() != "claude-tasks-results" || c.CancelChannel() != "bull:claude-tasks:cancel" {
		t.Errorf("defaults = %+v", c)
	}
}

func TestLoadConfigValues(t *testing.T) {
	c, err := LoadConfig(lookupMap(map[string]string{
		"WORKER_EXECUTOR": "command", "WORKER_COMMAND": `sh -c 'echo "{}"'`, "WORKER_CONCURRENCY": "8",
		"WORKER_ID": "w1", "WORKER_KILL_GRACE": "300ms", "WORKER_MAX_OUTPUT": "2MiB", "WORKER_SHUTDOWN_TIMEOUT": "1500",
		"REDIS_URL": "redis://:secret@10.0.0.1:6380/2", "QUEUE_NAME": "q", "QUEUE_PREFIX": "{p}", "LOG_LEVEL": "debug", "LOG_FORMAT": "text",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Command, "|") != `sh|-c|echo "{}"` || c.Concurrency != 8 || c.WorkerID != "w1" || c.KillGrace != 300*time.Millisecond ||
		c.MaxOutput != 2<<20 || c.ShutdownTimeout != 1500*time.Millisecond || c.Redis.URL != "redis://:secret@10.0.0.1:6380/2" || c.CancelChannel() != "{p}:q:cancel" || c.LogLevel != slog.LevelDebug || c.LogFormat != "text" {
		t.Errorf("config = %+v", c)
	}
	c, err = LoadConfig(lookupMap(map[string]string{"REDIS_HOST": "redis", "REDIS_PORT": "7000", "REDIS_PASSWORD": "pw", "REDIS_DB": "3"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis != (redisconn.Config{Host: "redis", Port: 7000, Password: "pw", DB: 3}) {
		t.Errorf("redis = %+v", c.Redis)
	}
}

func TestLoadConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"WORKER_EXECUTOR": "gpt"}, []string{"WORKER_EXECUTOR"}},
		{map[string]string{"WORKER_EXECUTOR": "command"}, []string{"WORKER_COMMAND"}},
		{map[string]string{"WORKER_EXECUTOR": "command", "WORKER_COMMAND": "sh -c 'oops"}, []string{"WORKER_COMMAND"}},
		{map[string]string{"WORKER_EXECUTOR": "anthropic"}, []string{"ANTHROPIC_API_KEY"}},
		{map[string]string{"WORKER_CONCURRENCY": "0", "WORKER_KILL_GRACE": "soon"}, []string{"WORKER_CONCURRENCY", "WORKER_KILL_GRACE"}},
		{map[string]string{"WORKER_MAX_OUTPUT": "-1"}, []string{"WORKER_MAX_OUTPUT"}},
		{map[string]string{"REDIS_URL": "http://x"}, []string{"REDIS_URL"}},
		{map[string]string{"REDIS_PORT": "x"}, []string{"REDIS_PORT"}},
		{map[string]string{"LOG_LEVEL": "loud", "LOG_FORMAT": "xml"}, []string{"LOG_LEVEL", "LOG_FORMAT"}},
		{map[string]string{"ANTHROPIC_BASE_URL": "not a url"}, []string{"ANTHROPIC_BASE_URL"}},
	}
	for _, tt := range tests {
		_, err := LoadConfig(lookupMap(tt.env))
		if err == nil {
			t.Errorf("%v: no error", tt.env)
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%v: %v is not a *ConfigError", tt.env, err)
		}
		for _, v := range tt.want {
			if !strings.Contains(err.Error(), v+": ") {
				t.Errorf("%v: error %q does not name %s", tt.env, err, v)
			}
		}
	}
}

func TestNewExecutorChecksBinaries(t *testing.T) {
	_, err := NewExecutor(&Config{Executor: ExecutorClaude, ClaudeBin: "/nonexistent/claude"}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "CLAUDE_BIN: ") {
		t.Errorf("missing claude: %v", err)
	}
	_, err = NewExecutor(&Config{Executor: ExecutorCommand, Command: []string{"/nonexistent/agent"}}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "WORKER_COMMAND: ") {
		t.Errorf("missing command: %v", err)
	}
	if _, err := NewExecutor(&Config{Executor: ExecutorCommand, Command: []string{"cat"}}, nil); err != nil {
		t.Errorf("cat: %v", err)
	}
	if _, err := NewExecutor(&Config{Executor: ExecutorAnthropic, AnthropicAPIKey: "k", AnthropicModel: "m"}, nil); err != nil {
		t.Errorf("anthropic: %v", err)
	}
}
