package config

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agentorch/orchestrator/internal/redact"
)

// Executor kinds, the values of WORKER_EXECUTOR.
const (
	ExecutorClaude    = "claude"
	ExecutorAnthropic = "anthropic"
	ExecutorCommand   = "command"
	// ExecutorNoop does no work; for measuring the worker's own overhead.
	ExecutorNoop = "noop"
)

// Worker is every setting of the task worker. Build it with LoadWorker,
// which validates it.
type Worker struct {
	Shared
	// Sandbox holds WORKER_SANDBOX and WORKER_AGENT_*.
	Sandbox

	// Executor is WORKER_EXECUTOR: claude (default), anthropic, command, or
	// noop (no work at all; for benchmarks).
	Executor string `env:"WORKER_EXECUTOR" envDefault:"claude"`
	// Command is WORKER_COMMAND split into arguments (see SplitArgs).
	// Required for the command executor; defaults to none.
	Command Args `env:"WORKER_COMMAND"`
	// ClaudeBin is CLAUDE_BIN, the Claude Code CLI (default claude on PATH).
	ClaudeBin string `env:"CLAUDE_BIN" envDefault:"claude"`
	// ClaudeModel is CLAUDE_MODEL, passed as --model when set (default none).
	ClaudeModel string `env:"CLAUDE_MODEL"`
	// ClaudePermissionMode is CLAUDE_PERMISSION_MODE (default acceptEdits).
	ClaudePermissionMode string `env:"CLAUDE_PERMISSION_MODE" envDefault:"acceptEdits"`
	// ClaudeArgs is CLAUDE_ARGS split into arguments, added to the CLI's
	// (default none).
	ClaudeArgs Args `env:"CLAUDE_ARGS"`
	// AnthropicAPIKey is ANTHROPIC_API_KEY, required for the anthropic executor.
	AnthropicAPIKey string `env:"ANTHROPIC_API_KEY"`
	// AnthropicModel is ANTHROPIC_MODEL (default claude-sonnet-5-5).
	AnthropicModel string `env:"ANTHROPIC_MODEL" envDefault:"claude-sonnet-5-5"`
	// AnthropicBaseURL is ANTHROPIC_BASE_URL, an absolute URL (default the
	// production API).
	AnthropicBaseURL string `env:"ANTHROPIC_BASE_URL"`
	// AnthropicMaxTokens is ANTHROPIC_MAX_TOKENS (default 4096), ≥ 1.
	AnthropicMaxTokens int64 `env:"ANTHROPIC_MAX_TOKENS" envDefault:"4096"`
	// AnthropicMaxRetries is ANTHROPIC_MAX_RETRIES (default 2), ≥ -1; -1
	// disables retries.
	AnthropicMaxRetries int `env:"ANTHROPIC_MAX_RETRIES" envDefault:"2"`

	// WorkerID is WORKER_ID, the results' workerId and the BullMQ worker
	// name (default "<hostname>-<pid>").
	WorkerID string `env:"WORKER_ID"`
	// Concurrency is WORKER_CONCURRENCY, tasks run at once (default 1), ≥ 1.
	Concurrency int `env:"WORKER_CONCURRENCY" envDefault:"1"`
	// KillGrace is WORKER_KILL_GRACE, between SIGTERM and SIGKILL of a
	// stopped task (default 5s), ≥ 0.
	KillGrace time.Duration `env:"WORKER_KILL_GRACE" envDefault:"5s"`
	// MaxOutput is WORKER_MAX_OUTPUT, the output cap (default 1MiB), > 0.
	MaxOutput ByteSize `env:"WORKER_MAX_OUTPUT" envDefault:"1MiB"`
	// DefaultTimeout is WORKER_DEFAULT_TIMEOUT, the timeout of a job whose
	// data has none (default 5m), ≥ 1ms.
	DefaultTimeout time.Duration `env:"WORKER_DEFAULT_TIMEOUT" envDefault:"5m"`
	// ShutdownTimeout is WORKER_SHUTDOWN_TIMEOUT: how long running tasks may
	// go on after a shutdown request (default 30s), ≥ 0.
	ShutdownTimeout time.Duration `env:"WORKER_SHUTDOWN_TIMEOUT" envDefault:"30s"`
	// LockDuration is WORKER_LOCK_DURATION, the BullMQ job lock (default
	// 30s), ≥ 100ms.
	LockDuration time.Duration `env:"WORKER_LOCK_DURATION" envDefault:"30s"`
	// StalledInterval is WORKER_STALLED_INTERVAL, the stalled-job check
	// period (default 30s), ≥ 100ms.
	StalledInterval time.Duration `env:"WORKER_STALLED_INTERVAL" envDefault:"30s"`
	// MaxStalled is WORKER_MAX_STALLED, how many times a job may stall (its
	// worker stopped or crashed while running it) and still be run again
	// (default 3, see workerapp.DefaultMaxStalled: a long task survives two
	// rolling restarts and a crash), ≥ 1.
	MaxStalled int `env:"WORKER_MAX_STALLED" envDefault:"3"`
	// HTTPAddr is WORKER_HTTP_ADDR for /health and /metrics (default none:
	// nothing is served).
	HTTPAddr string `env:"WORKER_HTTP_ADDR"`
}

// UsesSandbox reports whether the executor starts programs, which then run
// in the agent sandbox.
func (c Worker) UsesSandbox() bool {
	return c.Executor == ExecutorClaude || c.Executor == ExecutorCommand
}

// LoadWorker reads the worker's configuration from environ (a variable
// name → value map), applies the defaults and validates the result. The
// error names every variable that is wrong.
func LoadWorker(environ map[string]string) (Worker, error) {
	// Whatever the error, the secrets it may quote are masked.
	secrets := Worker{Shared: Shared{RedisURL: environ["REDIS_URL"], RedisPassword: environ["REDIS_PASSWORD"]},
		AnthropicAPIKey: environ["ANTHROPIC_API_KEY"]}.secrets()
	c, err := load[Worker](environ)
	if err != nil {
		return Worker{}, secrets.Error(err)
	}
	c.fill()
	if c.WorkerID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "worker"
		}
		c.WorkerID = host + "-" + strconv.Itoa(os.Getpid())
	}
	if err := c.Validate(); err != nil {
		return Worker{}, secrets.Error(err)
	}
	return c, nil
}

// NewLogger returns a logger writing to w in LOG_FORMAT at LOG_LEVEL that
// masks the passwords of REDIS_URL and REDIS_PASSWORD and the Anthropic
// API key in every line.
func (c Worker) NewLogger(w io.Writer) *slog.Logger { return c.newLogger(w, c.secrets()) }

// secrets returns the worker's secrets: the shared ones and the Anthropic
// API key.
func (c Worker) secrets() *redact.Secrets {
	s := c.Shared.secrets()
	s.Add(c.AnthropicAPIKey)
	return s
}

// Validate checks every setting; the error names each variable whose
// value is wrong.
func (c Worker) Validate() error {
	var p problems
	c.validateShared(&p)
	switch c.Executor {
	case ExecutorClaude, ExecutorAnthropic, ExecutorNoop:
	case ExecutorCommand:
		if len(c.Command) == 0 {
			p.add("WORKER_COMMAND", "is required for WORKER_EXECUTOR=command")
		}
	default:
		p.add("WORKER_EXECUTOR", "unknown executor %q (want claude, anthropic, command or noop)", c.Executor)
	}
	if c.Executor == ExecutorClaude && c.ClaudeBin == "" {
		p.add("CLAUDE_BIN", "must not be empty")
	}
	if c.Executor == ExecutorAnthropic && c.AnthropicAPIKey == "" {
		p.add("ANTHROPIC_API_KEY", "is required for WORKER_EXECUTOR=anthropic")
	}
	if c.AnthropicBaseURL != "" {
		if u, err := url.Parse(c.AnthropicBaseURL); err != nil || u.Scheme == "" || u.Host == "" {
			p.add("ANTHROPIC_BASE_URL", "%q is not an absolute URL", c.AnthropicBaseURL)
		}
	}
	if c.AnthropicMaxTokens < 1 {
		p.add("ANTHROPIC_MAX_TOKENS", "must be ≥ 1, got %d", c.AnthropicMaxTokens)
	}
	p.atLeast("ANTHROPIC_MAX_RETRIES", c.AnthropicMaxRetries, -1)
	if strings.TrimSpace(c.WorkerID) == "" {
		p.add("WORKER_ID", "must not be blank")
	}
	p.atLeast("WORKER_CONCURRENCY", c.Concurrency, 1)
	p.atLeast("WORKER_MAX_STALLED", c.MaxStalled, 1)
	c.validateSandbox(&p)
	if c.KillGrace < 0 {
		p.add("WORKER_KILL_GRACE", "must be ≥ 0, got %s", c.KillGrace)
	}
	if c.MaxOutput <= 0 {
		p.add("WORKER_MAX_OUTPUT", "must be > 0, got %d", c.MaxOutput)
	}
	for _, d := range []struct {
		name     string
		v, least time.Duration
	}{
		{"WORKER_DEFAULT_TIMEOUT", c.DefaultTimeout, time.Millisecond},
		{"WORKER_SHUTDOWN_TIMEOUT", c.ShutdownTimeout, 0},
		{"WORKER_LOCK_DURATION", c.LockDuration, 100 * time.Millisecond},
		{"WORKER_STALLED_INTERVAL", c.StalledInterval, 100 * time.Millisecond},
	} {
		if d.v < d.least {
			p.add(d.name, "must be ≥ %s, got %s", d.least, d.v)
		}
	}
	return p.err()
}

// Args is a command line read from one variable and split into arguments
// with SplitArgs.
type Args []string

// UnmarshalText splits text with SplitArgs; empty text is no arguments.
func (a *Args) UnmarshalText(text []byte) error {
	if strings.TrimSpace(string(text)) == "" {
		*a = nil
		return nil
	}
	args, err := SplitArgs(string(text))
	if err != nil {
		return err
	}
	*a = args
	return nil
}

// ByteSize is a number of bytes read with an optional unit suffix: KiB,
// MiB, GiB (powers of 1024), KB, MB, GB (powers of 1000) or B.
type ByteSize int64

// UnmarshalText parses a positive size such as "1048576", "512KiB" or "2MB".
func (b *ByteSize) UnmarshalText(text []byte) error {
	v := strings.TrimSpace(string(text))
	num, mult := v, int64(1)
	for _, s := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}} {
		if strings.HasSuffix(v, s.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(v, s.suffix)), s.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a positive size in bytes (suffixes KiB, MiB, GiB, KB, MB, GB)", v)
	}
	*b = ByteSize(n * mult)
	return nil
}
