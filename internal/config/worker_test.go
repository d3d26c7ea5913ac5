package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadWorkerDefaults(t *testing.T) {
	c, err := LoadWorker(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Executor != ExecutorClaude || c.ClaudeBin != "claude" || c.ClaudePermissionMode != "acceptEdits" || c.Concurrency != 1 ||
		c.KillGrace != 5*time.Second || c.MaxOutput != 1<<20 || c.ShutdownTimeout != 30*time.Second || c.HTTPAddr != "" ||
		c.DefaultTimeout != 5*time.Minute || c.LockDuration != 30*time.Second || c.StalledInterval != 30*time.Second ||
		c.AnthropicModel != "claude-sonnet-5-5" || c.AnthropicMaxTokens != 4096 || c.AnthropicMaxRetries != 2 ||
		c.QueueName != "claude-tasks" || c.QueuePrefix != "bull" || c.LogLevel != "info" || c.LogFormat != "json" ||
		c.WorkerID == "" || c.Names().Results() != "claude-tasks-results" || c.Names().CancelChannel() != "bull:claude-tasks:cancel" {
		t.Errorf("defaults = %+v", c)
	}
	if r := c.Redis(); r.Host != "localhost" || r.Port != 6379 {
		t.Errorf("redis = %+v", r)
	}
}

func TestLoadWorkerValues(t *testing.T) {
	c, err := LoadWorker(map[string]string{
		"WORKER_EXECUTOR": "command", "WORKER_COMMAND": `sh -c 'echo "{}"'`, "WORKER_CONCURRENCY": "8",
		"WORKER_ID": "w1", "WORKER_KILL_GRACE": "300ms", "WORKER_MAX_OUTPUT": "2MiB", "WORKER_SHUTDOWN_TIMEOUT": "1500",
		"REDIS_URL": "redis://:secret@10.0.0.1:6380/2", "QUEUE_NAME": "q", "QUEUE_PREFIX": "{p}", "LOG_LEVEL": "debug", "LOG_FORMAT": "text",
		"CLAUDE_ARGS": "--max-turns 3",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Command, "|") != `sh|-c|echo "{}"` || c.Concurrency != 8 || c.WorkerID != "w1" || c.KillGrace != 300*time.Millisecond ||
		c.MaxOutput != 2<<20 || c.ShutdownTimeout != 1500*time.Millisecond || c.RedisURL != "redis://:secret@10.0.0.1:6380/2" ||
		c.Names().CancelChannel() != "{p}:q:cancel" || c.Level().String() != "DEBUG" || c.LogFormat != "text" ||
		strings.Join(c.ClaudeArgs, "|") != "--max-turns|3" {
		t.Errorf("config = %+v", c)
	}
	c, err = LoadWorker(map[string]string{"REDIS_HOST": "redis", "REDIS_PORT": "7000", "REDIS_PASSWORD": "pw", "REDIS_DB": "3"})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Redis(); r.Host != "redis" || r.Port != 7000 || r.Password != "pw" || r.DB != 3 {
		t.Errorf("redis = %+v", r)
	}
}

func TestLoadWorkerErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"WORKER_EXECUTOR": "gpt"}, []string{"WORKER_EXECUTOR"}},
		{map[string]string{"WORKER_EXECUTOR": "command"}, []string{"WORKER_COMMAND"}},
		{map[string]string{"WORKER_EXECUTOR": "command", "WORKER_COMMAND": "sh -c 'oops"}, []string{"WORKER_COMMAND"}},
		{map[string]string{"WORKER_EXECUTOR": "anthropic"}, []string{"ANTHROPIC_API_KEY"}},
		{map[string]string{"WORKER_CONCURRENCY": "0", "WORKER_KILL_GRACE": "-1s"}, []string{"WORKER_CONCURRENCY", "WORKER_KILL_GRACE"}},
		{map[string]string{"WORKER_KILL_GRACE": "soon"}, []string{"WORKER_KILL_GRACE"}},
		{map[string]string{"WORKER_MAX_OUTPUT": "-1"}, []string{"WORKER_MAX_OUTPUT"}},
		{map[string]string{"WORKER_MAX_OUTPUT": "1TB"}, []string{"WORKER_MAX_OUTPUT"}},
		{map[string]string{"WORKER_LOCK_DURATION": "10ms", "WORKER_DEFAULT_TIMEOUT": "0"}, []string{"WORKER_LOCK_DURATION", "WORKER_DEFAULT_TIMEOUT"}},
		{map[string]string{"ANTHROPIC_MAX_TOKENS": "0", "ANTHROPIC_MAX_RETRIES": "-2"}, []string{"ANTHROPIC_MAX_TOKENS", "ANTHROPIC_MAX_RETRIES"}},
		{map[string]string{"REDIS_URL": "http://x"}, []string{"REDIS_URL"}},
		{map[string]string{"REDIS_URL": "redis-sentinel://h:26379"}, []string{"REDIS_URL"}},
		{map[string]string{"REDIS_PORT": "x"}, []string{"REDIS_PORT"}},
		{map[string]string{"LOG_LEVEL": "loud", "LOG_FORMAT": "xml"}, []string{"LOG_LEVEL", "LOG_FORMAT"}},
		{map[string]string{"ANTHROPIC_BASE_URL": "not a url"}, []string{"ANTHROPIC_BASE_URL"}},
		{map[string]string{"QUEUE_NAME": "a:b"}, []string{"QUEUE_NAME"}},
	}
	for _, tt := range tests {
		_, err := LoadWorker(tt.env)
		if err == nil {
			t.Errorf("%v: no error", tt.env)
			continue
		}
		for _, v := range tt.want {
			if !strings.Contains(err.Error(), v+": ") {
				t.Errorf("%v: error %q does not name %s", tt.env, err, v)
			}
		}
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"1": 1, "512KiB": 512 << 10, "2MiB": 2 << 20, "1GiB": 1 << 30, "3KB": 3000, "2MB": 2e6, "7B": 7, " 5 MiB ": 5 << 20} {
		var b ByteSize
		if err := b.UnmarshalText([]byte(in)); err != nil || b != want {
			t.Errorf("%q: %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1.5MiB", "MiB", "1TB", "99999999999GiB"} {
		var b ByteSize
		if err := b.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q accepted as %d", in, b)
		}
	}
}
