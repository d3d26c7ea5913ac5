package workerapp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/agentorch/orchestrator/internal/executor"
	"github.com/agentorch/orchestrator/internal/redisconn"
)

// Executor kinds, the values of WORKER_EXECUTOR.
const (
	ExecutorClaude    = "claude"
	ExecutorAnthropic = "anthropic"
	ExecutorCommand   = "command"
	// ExecutorNoop does no work; for measuring the worker's own overhead.
	ExecutorNoop = "noop"
)

// Config is the worker's whole configuration. LoadConfig fills it from the
// environment; tests build it directly. Zero durations and sizes mean the
// documented defaults.
type Config struct {
	// Executor is WORKER_EXECUTOR: "claude" (default), "anthropic",
	// "command", or "noop" (no work at all; for benchmarks).
	Executor string
	// Command is WORKER_COMMAND split into arguments (see executor.SplitArgs).
	// Required for the command executor.
	Command []string
	// ClaudeBin is CLAUDE_BIN. Defaults to "claude" on PATH.
	ClaudeBin string
	// ClaudeModel is CLAUDE_MODEL, passed as --model when set.
	ClaudeModel string
	// ClaudePermissionMode is CLAUDE_PERMISSION_MODE. Defaults to "acceptEdits".
	ClaudePermissionMode string
	// ClaudeArgs is CLAUDE_ARGS split into arguments, added to the CLI's.
	ClaudeArgs []string
	// AnthropicAPIKey is ANTHROPIC_API_KEY. Required for the anthropic executor.
	AnthropicAPIKey string
	// AnthropicModel is ANTHROPIC_MODEL. Defaults to DefaultAnthropicModel.
	AnthropicModel string
	// AnthropicBaseURL is ANTHROPIC_BASE_URL. Defaults to the production API.
	AnthropicBaseURL string
	// AnthropicMaxTokens is ANTHROPIC_MAX_TOKENS. Defaults to 4096.
	AnthropicMaxTokens int64
	// AnthropicMaxRetries is ANTHROPIC_MAX_RETRIES. Defaults to 2; -1 disables retries.
	AnthropicMaxRetries int

	// WorkerID is WORKER_ID, also the BullMQ worker name. Defaults to
	// "<hostname>-<pid>".
	WorkerID string
	// Concurrency is WORKER_CONCURRENCY. Defaults to 1.
	Concurrency int
	// KillGrace is WORKER_KILL_GRACE, between SIGTERM and SIGKILL. Defaults to 5s.
	KillGrace time.Duration
	// MaxOutput is WORKER_MAX_OUTPUT in bytes. Defaults to 1 MiB.
	MaxOutput int64
	// DefaultTimeout is WORKER_DEFAULT_TIMEOUT, for jobs without a timeout.
	// Defaults to 5m.
	DefaultTimeout time.Duration
	// ShutdownTimeout is WORKER_SHUTDOWN_TIMEOUT: how long running tasks may
	// go on after a shutdown request. Defaults to 30s.
	ShutdownTimeout time.Duration
	// LockDuration is WORKER_LOCK_DURATION, the BullMQ job lock. Defaults to 30s.
	LockDuration time.Duration
	// StalledInterval is WORKER_STALLED_INTERVAL. Defaults to 30s.
	StalledInterval time.Duration
	// HTTPAddr is WORKER_HTTP_ADDR for /health and /metrics; empty (the
	// default) serves nothing.
	HTTPAddr string

	// Redis holds REDIS_URL (redis://, rediss://, redis-sentinel://,
	// redis-cluster://; see redisconn), or REDIS_HOST (localhost),
	// REDIS_PORT (6379), REDIS_PASSWORD and REDIS_DB (0).
	Redis redisconn.Config
	// QueueName is QUEUE_NAME. Defaults to "claude-tasks"; results go to
	// "<QueueName>-results".
	QueueName string
	// QueuePrefix is QUEUE_PREFIX. Defaults to "bull".
	QueuePrefix string

	// LogLevel is LOG_LEVEL: debug, info (default), warn or error.
	LogLevel slog.Level
	// LogFormat is LOG_FORMAT: "json" (default) or "text".
	LogFormat string

	// Sandbox is the agent sandbox (WORKER_SANDBOX, WORKER_AGENT_*).
	Sandbox SandboxConfig
}

// Defaults of Config.
const (
	DefaultQueueName       = "claude-tasks"
	DefaultQueuePrefix     = "bull"
	DefaultConcurrency     = 1
	DefaultDefaultTimeout  = 5 * time.Minute
	DefaultShutdownTimeout = 30 * time.Second
	DefaultLockDuration    = 30 * time.Second
	DefaultStalledInterval = 30 * time.Second
	DefaultAnthropicModel  = string(anthropic.ModelClaudeSonnet5_5)
)

// ResultsQueue returns the name of the results queue.
func (c *Config) ResultsQueue() string { return c.QueueName + "-results" }

// CancelChannel returns the pub/sub channel the orchestrator publishes
// cancelled task ids on: "<prefix>:<queue>:cancel".
func (c *Config) CancelChannel() string { return c.QueuePrefix + ":" + c.QueueName + ":cancel" }

// ConfigError names the environment variable whose value is wrong.
type ConfigError struct {
	// Var is the variable's name.
	Var string
	// Err says what is wrong.
	Err error
}

// Error returns "<VAR>: <reason>".
func (e *ConfigError) Error() string { return e.Var + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *ConfigError) Unwrap() error { return e.Err }

// LoadConfig reads the configuration from lookup (os.LookupEnv in
// production) and validates it. Errors are *ConfigError values, joined,
// one per wrong variable.
func LoadConfig(lookup func(string) (string, bool)) (*Config, error) {
	r := envReader{lookup: lookup}
	c := &Config{
		Executor:             r.str("WORKER_EXECUTOR", ExecutorClaude),
		ClaudeBin:            r.str("CLAUDE_BIN", executor.DefaultClaudeBin),
		ClaudeModel:          r.str("CLAUDE_MODEL", ""),
		ClaudePermissionMode: r.str("CLAUDE_PERMISSION_MODE", executor.DefaultClaudePermissionMode),
		AnthropicAPIKey:      r.str("ANTHROPIC_API_KEY", ""),
		AnthropicModel:       r.str("ANTHROPIC_MODEL", DefaultAnthropicModel),
		AnthropicBaseURL:     r.str("ANTHROPIC_BASE_URL", ""),
		AnthropicMaxTokens:   int64(r.integer("ANTHROPIC_MAX_TOKENS", executor.DefaultAnthropicMaxTokens, 1)),
		AnthropicMaxRetries:  r.integer("ANTHROPIC_MAX_RETRIES", executor.DefaultAnthropicMaxRetries, -1),
		WorkerID:             r.str("WORKER_ID", ""),
		Concurrency:          r.integer("WORKER_CONCURRENCY", DefaultConcurrency, 1),
		KillGrace:            r.duration("WORKER_KILL_GRACE", executor.DefaultKillGrace, 0),
		MaxOutput:            r.size("WORKER_MAX_OUTPUT", executor.DefaultMaxOutput),
		DefaultTimeout:       r.duration("WORKER_DEFAULT_TIMEOUT", DefaultDefaultTimeout, time.Millisecond),
		ShutdownTimeout:      r.duration("WORKER_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout, 0),
		LockDuration:         r.duration("WORKER_LOCK_DURATION", DefaultLockDuration, 100*time.Millisecond),
		StalledInterval:      r.duration("WORKER_STALLED_INTERVAL", DefaultStalledInterval, 100*time.Millisecond),
		HTTPAddr:             r.str("WORKER_HTTP_ADDR", ""),
		QueueName:            r.str("QUEUE_NAME", DefaultQueueName),
		QueuePrefix:          r.str("QUEUE_PREFIX", DefaultQueuePrefix),
		LogFormat:            strings.ToLower(r.str("LOG_FORMAT", "json")),
	}
	switch c.Executor {
	case ExecutorClaude, ExecutorAnthropic, ExecutorNoop:
	case ExecutorCommand:
		c.Command = r.args("WORKER_COMMAND", true)
	default:
		r.fail("WORKER_EXECUTOR", fmt.Errorf("unknown executor %q (want claude, anthropic, command or noop)", c.Executor))
	}
	c.ClaudeArgs = r.args("CLAUDE_ARGS", false)
	if c.Executor == ExecutorAnthropic && c.AnthropicAPIKey == "" {
		r.fail("ANTHROPIC_API_KEY", errors.New("is required for WORKER_EXECUTOR=anthropic"))
	}
	if c.AnthropicBaseURL != "" {
		if u, err := url.Parse(c.AnthropicBaseURL); err != nil || u.Scheme == "" || u.Host == "" {
			r.fail("ANTHROPIC_BASE_URL", fmt.Errorf("%q is not an absolute URL", c.AnthropicBaseURL))
		}
	}
	if c.WorkerID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "worker"
		}
		c.WorkerID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.QueueName == "" {
		r.fail("QUEUE_NAME", errors.New("must not be empty"))
	}
	if c.QueuePrefix == "" {
		r.fail("QUEUE_PREFIX", errors.New("must not be empty"))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		r.fail("LOG_FORMAT", fmt.Errorf("unknown format %q (want json or text)", c.LogFormat))
	}
	if err := c.LogLevel.UnmarshalText([]byte(r.str("LOG_LEVEL", "info"))); err != nil {
		r.fail("LOG_LEVEL", errors.New("want debug, info, warn or error"))
	}
	c.Redis = r.redis()
	var serr error
	c.Sandbox, serr = LoadSandboxConfig(lookup)
	return c, errors.Join(append(r.errs, serr)...)
}

// envReader reads typed variables, collecting one error per bad variable.
type envReader struct {
	lookup func(string) (string, bool)
	errs   []error
}

func (r *envReader) fail(name string, err error) {
	r.errs = append(r.errs, &ConfigError{Var: name, Err: err})
}

func (r *envReader) str(name, def string) string {
	if v, ok := r.lookup(name); ok && v != "" {
		return v
	}
	return def
}

func (r *envReader) integer(name string, def, minimum int) int {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minimum {
		r.fail(name, fmt.Errorf("%q is not an integer >= %d", v, minimum))
		return def
	}
	return n
}

// duration reads a Go duration ("5s", "300ms") or a number of milliseconds.
func (r *envReader) duration(name string, def, minimum time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		ms, err2 := strconv.ParseInt(v, 10, 64)
		if err2 != nil {
			r.fail(name, fmt.Errorf("%q is not a duration (like 5s or 300ms, or milliseconds)", v))
			return def
		}
		d = time.Duration(ms) * time.Millisecond
	}
	if d < minimum {
		r.fail(name, fmt.Errorf("%s is below the minimum %s", d, minimum))
		return def
	}
	return d
}

// size reads a byte count, with an optional KiB, MiB, KB or MB suffix.
func (r *envReader) size(name string, def int64) int64 {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	mult := int64(1)
	num := v
	for _, s := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"KB", 1000}, {"MB", 1000 * 1000}, {"B", 1}} {
		if strings.HasSuffix(v, s.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(v, s.suffix)), s.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		r.fail(name, fmt.Errorf("%q is not a positive size in bytes (suffixes KiB, MiB, KB, MB)", v))
		return def
	}
	return n * mult
}

func (r *envReader) args(name string, required bool) []string {
	v := r.str(name, "")
	if v == "" {
		if required {
			r.fail(name, errors.New("is required for WORKER_EXECUTOR=command"))
		}
		return nil
	}
	args, err := executor.SplitArgs(v)
	if err != nil {
		r.fail(name, err)
		return nil
	}
	return args
}

// redis reads REDIS_URL, or else REDIS_HOST, REDIS_PORT, REDIS_PASSWORD and
// REDIS_DB, and checks that a client can be built from them.
func (r *envReader) redis() redisconn.Config {
	c := redisconn.Config{
		URL:      r.str("REDIS_URL", ""),
		Host:     r.str("REDIS_HOST", ""),
		Port:     r.integer("REDIS_PORT", 0, 1),
		Password: r.str("REDIS_PASSWORD", ""),
		DB:       r.integer("REDIS_DB", 0, 0),
	}
	client, err := redisconn.New(c) // no I/O: only parses
	if err != nil {
		name := "REDIS_HOST"
		if c.URL != "" {
			name = "REDIS_URL"
		}
		r.fail(name, err)
		return c
	}
	_ = client.Close()
	return c
}
