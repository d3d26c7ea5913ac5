package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agentorch/orchestrator/internal/redact"
)

// Orchestrator is every setting of the orchestrator. Build it with
// LoadOrchestrator, which validates it.
type Orchestrator struct {
	Shared
	Control

	// Port is the HTTP listen port (PORT, default 3000), 1..65535.
	Port int `env:"PORT" envDefault:"3000"`
	// DatabaseURL selects the store (DATABASE_URL): empty for SQLite at
	// DefaultSQLitePath, sqlite://path or file:path for another SQLite
	// file, postgres:// or postgresql:// for PostgreSQL. See Database.
	DatabaseURL string `env:"DATABASE_URL"`
	// Database is DATABASE_URL parsed, filled by LoadOrchestrator.
	Database Database `env:"-"`
	// APIKeys, when not empty, are the accepted bearer keys (API_KEYS,
	// comma-separated; blanks around and empty items are dropped), each
	// "key", "name:key" or "name:key:admin" (see APIKey). Defaults to
	// none: no authentication.
	APIKeys []string `env:"API_KEYS"`
	// Keys is API_KEYS parsed, filled by LoadOrchestrator.
	Keys []APIKey `env:"-"`

	// TaskAttempts is how many times a task's job is tried (TASK_ATTEMPTS,
	// default 3), ≥ 1.
	TaskAttempts int `env:"TASK_ATTEMPTS" envDefault:"3"`
	// TaskBackoffMs is the first delay of the exponential retry backoff in
	// milliseconds (TASK_BACKOFF_MS, default 2000), ≥ 0; 0 means none.
	TaskBackoffMs int64 `env:"TASK_BACKOFF_MS" envDefault:"2000"`
	// TaskRetryOnTimeout says whether a run stopped by the task's timeout
	// may be retried (TASK_RETRY_ON_TIMEOUT, true or false, default false:
	// a timed-out task fails at once with "timed out after …"). It travels
	// in every job's data (taskqueue.Job.RetryOnTimeout), for any worker.
	TaskRetryOnTimeout bool `env:"TASK_RETRY_ON_TIMEOUT" envDefault:"false"`
	// RedisAllowEviction accepts a Redis whose maxmemory-policy is not
	// noeviction (REDIS_ALLOW_EVICTION, true or false, default false).
	// Without it the orchestrator refuses to start on such a Redis, and
	// adds no job to it when Redis comes up later with such a policy.
	RedisAllowEviction bool `env:"REDIS_ALLOW_EVICTION" envDefault:"false"`
	// QueueCleanCompletedAge is how long completed jobs stay in Redis
	// (QUEUE_CLEAN_COMPLETED_AGE, default 1h), > 0.
	QueueCleanCompletedAge time.Duration `env:"QUEUE_CLEAN_COMPLETED_AGE" envDefault:"1h"`
	// QueueCleanFailedAge is how long failed jobs stay in Redis
	// (QUEUE_CLEAN_FAILED_AGE, default 168h), > 0.
	QueueCleanFailedAge time.Duration `env:"QUEUE_CLEAN_FAILED_AGE" envDefault:"168h"`

	// RelayInterval is the time between sweeps of pending tasks (tasks
	// accepted while Redis was down) (RELAY_INTERVAL, default 1s), > 0.
	RelayInterval time.Duration `env:"RELAY_INTERVAL" envDefault:"1s"`
	// ReconcileInterval is the time between reconciler sweeps
	// (RECONCILE_INTERVAL, default 30s), > 0.
	ReconcileInterval time.Duration `env:"RECONCILE_INTERVAL" envDefault:"30s"`
	// ReconcileMinAge: the reconciler skips tasks updated more recently
	// (RECONCILE_MIN_AGE, default 10s), > 0.
	ReconcileMinAge time.Duration `env:"RECONCILE_MIN_AGE" envDefault:"10s"`
	// ResultGrace is how long a task whose job finished or vanished waits
	// for its result job before the reconciler decides from Redis alone
	// (RESULT_GRACE, default 1m), > 0.
	ResultGrace time.Duration `env:"RESULT_GRACE" envDefault:"1m"`
	// ResultConcurrency is how many result jobs are applied at once
	// (RESULT_CONCURRENCY, default 32), ≥ 1.
	ResultConcurrency int `env:"RESULT_CONCURRENCY" envDefault:"32"`

	// ShutdownTimeout bounds the graceful shutdown (SHUTDOWN_TIMEOUT,
	// default 15s), > 0.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"15s"`

	// MetricsAddr (METRICS_ADDR), when set, is a host:port (host may be
	// empty: every interface) where Prometheus /metrics is served alone,
	// without API key, and not on the API port; its port must differ from
	// PORT. Defaults to none: /metrics is served on the API port, behind
	// the API key when API_KEYS is set.
	MetricsAddr string `env:"METRICS_ADDR"`
	// MetricsCacheTTL is how long the task and job counts of /metrics are
	// served from the last read (METRICS_CACHE_TTL, default 5s), > 0: a
	// scraper however fast costs one task count per interval at most.
	MetricsCacheTTL time.Duration `env:"METRICS_CACHE_TTL" envDefault:"5s"`
}

// DefaultSQLitePath is the database file used when DATABASE_URL is empty.
const DefaultSQLitePath = "./data/orchestrator.db"

// Driver names the kind of database DATABASE_URL selects.
type Driver string

// The supported drivers.
const (
	DriverSQLite   Driver = "sqlite"
	DriverPostgres Driver = "postgres"
)

// Database is DATABASE_URL parsed: the driver, and the data source the
// driver's store opens (for SQLite a path or a file: URI, which the SQLite
// store parses; for PostgreSQL the URL unchanged).
type Database struct {
	Driver Driver
	DSN    string
}

// ParseDatabaseURL selects the driver of a DATABASE_URL value.
func ParseDatabaseURL(u string) (Database, error) {
	switch {
	case u == "":
		return Database{Driver: DriverSQLite, DSN: DefaultSQLitePath}, nil
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		if _, err := url.Parse(u); err != nil {
			return Database{}, fmt.Errorf("invalid PostgreSQL URL: %w", redact.URLError(err, u))
		}
		return Database{Driver: DriverPostgres, DSN: u}, nil
	case strings.HasPrefix(u, "sqlite://"):
		p := strings.TrimPrefix(u, "sqlite://")
		if p == "" {
			return Database{}, errors.New("sqlite:// URL has no path")
		}
		return Database{Driver: DriverSQLite, DSN: p}, nil
	case strings.HasPrefix(u, "file:"):
		if u == "file:" {
			return Database{}, errors.New("file: URL has no path")
		}
		return Database{Driver: DriverSQLite, DSN: u}, nil
	}
	return Database{}, errors.New("must start with postgres://, postgresql://, sqlite:// or file:")
}

// LoadOrchestrator reads the orchestrator's configuration from environ (a
// variable name → value map, e.g. env.ToMap(os.Environ()) in main),
// applies the defaults and validates the result. The error names every
// variable that is wrong.
func LoadOrchestrator(environ map[string]string) (Orchestrator, error) {
	// Whatever the error, the secrets it may quote are masked.
	secrets := Orchestrator{Shared: Shared{RedisURL: environ["REDIS_URL"], RedisPassword: environ["REDIS_PASSWORD"]},
		DatabaseURL: environ["DATABASE_URL"], APIKeys: strings.Split(environ["API_KEYS"], ",")}.secrets()
	c, err := load[Orchestrator](environ)
	if err != nil {
		return Orchestrator{}, secrets.Error(err)
	}
	c.fill()
	c.APIKeys = trimList(c.APIKeys)
	if err := c.Validate(); err != nil {
		return Orchestrator{}, secrets.Error(err)
	}
	return c, nil
}

// NewLogger returns a logger writing to w in LOG_FORMAT at LOG_LEVEL that
// masks the passwords of REDIS_URL, REDIS_PASSWORD and DATABASE_URL and
// the API keys in every line.
func (c Orchestrator) NewLogger(w io.Writer) *slog.Logger { return c.newLogger(w, c.secrets()) }

// secrets returns the orchestrator's secrets: the shared ones, the
// passwords of DATABASE_URL, the API keys.
func (c Orchestrator) secrets() *redact.Secrets {
	s := c.Shared.secrets()
	s.AddDSN(c.DatabaseURL)
	s.Add(trimList(c.APIKeys)...)
	return s
}

// DatabaseRedacted returns the database the orchestrator uses, for log
// lines: DATABASE_URL with its passwords masked, or the default SQLite
// path.
func (c Orchestrator) DatabaseRedacted() string {
	if c.DatabaseURL == "" {
		return DefaultSQLitePath
	}
	return redact.DSN(c.DatabaseURL)
}

// Validate checks every setting and parses DATABASE_URL into Database; the
// error names each variable whose value is wrong.
func (c *Orchestrator) Validate() error {
	var p problems
	c.validateShared(&p)
	if c.Port < 1 || c.Port > 65535 {
		p.add("PORT", "must be between 1 and 65535, got %d", c.Port)
	}
	db, err := ParseDatabaseURL(c.DatabaseURL)
	if err != nil {
		p.add("DATABASE_URL", "%v", err)
	}
	c.Database = db
	c.Keys = parseAPIKeys(c.APIKeys, &p)
	c.validateControl(&p)
	p.atLeast("TASK_ATTEMPTS", c.TaskAttempts, 1)
	if c.TaskBackoffMs < 0 {
		p.add("TASK_BACKOFF_MS", "must be ≥ 0, got %d", c.TaskBackoffMs)
	}
	p.positive("QUEUE_CLEAN_COMPLETED_AGE", c.QueueCleanCompletedAge)
	p.positive("QUEUE_CLEAN_FAILED_AGE", c.QueueCleanFailedAge)
	p.positive("RELAY_INTERVAL", c.RelayInterval)
	p.positive("RECONCILE_INTERVAL", c.ReconcileInterval)
	p.positive("RECONCILE_MIN_AGE", c.ReconcileMinAge)
	p.positive("RESULT_GRACE", c.ResultGrace)
	p.atLeast("RESULT_CONCURRENCY", c.ResultConcurrency, 1)
	p.positive("SHUTDOWN_TIMEOUT", c.ShutdownTimeout)
	if c.MetricsAddr != "" {
		if port, err := listenPort(c.MetricsAddr); err != nil {
			p.add("METRICS_ADDR", "%v", err)
		} else if port == c.Port {
			p.add("METRICS_ADDR", "port %d is the API port (PORT); unset METRICS_ADDR to serve /metrics there", port)
		}
	}
	p.positive("METRICS_CACHE_TTL", c.MetricsCacheTTL)
	return p.err()
}

// listenPort checks a host:port listen address and returns its port.
func listenPort(addr string) (int, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("must be host:port or :port, got %q", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port must be between 1 and 65535, got %q", port)
	}
	return n, nil
}

// Addr returns the HTTP listen address, ":PORT".
func (c Orchestrator) Addr() string { return fmt.Sprintf(":%d", c.Port) }

// TaskBackoff returns TASK_BACKOFF_MS as a duration; 0 means no backoff.
func (c Orchestrator) TaskBackoff() time.Duration {
	return time.Duration(c.TaskBackoffMs) * time.Millisecond
}
