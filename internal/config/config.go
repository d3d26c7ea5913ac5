// Package config reads the orchestrator's settings from environment
// variables, in one place, and validates them once. Only packages under
// cmd/ call it; everything else receives plain values.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/redis/go-redis/v9"
)

// Config is every setting of the orchestrator. Each field names its
// environment variable and default in its tag. Build it with Load, which
// validates it; a Config built by hand should be checked with Validate.
type Config struct {
	// Port is the HTTP listen port (PORT, default 3000), 1..65535.
	Port int `env:"PORT" envDefault:"3000"`
	// DatabaseURL selects the store (DATABASE_URL): empty, sqlite://path
	// or file:path for SQLite (empty means ./data/orchestrator.db),
	// postgres:// or postgresql:// for PostgreSQL.
	DatabaseURL string `env:"DATABASE_URL"`
	// APIKeys, when not empty, are the accepted bearer keys (API_KEYS,
	// comma-separated; blanks around and empty items are dropped).
	APIKeys []string `env:"API_KEYS"`
	// LogLevel is debug, info, warn or error (LOG_LEVEL, default info).
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// LogFormat is json or text (LOG_FORMAT, default json).
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"`

	// RedisURL (REDIS_URL), when set, wins over the REDIS_HOST, REDIS_PORT,
	// REDIS_PASSWORD and REDIS_DB variables.
	RedisURL string `env:"REDIS_URL"`
	// RedisHost is the Redis host (REDIS_HOST, default localhost).
	RedisHost string `env:"REDIS_HOST" envDefault:"localhost"`
	// RedisPort is the Redis port (REDIS_PORT, default 6379).
	RedisPort int `env:"REDIS_PORT" envDefault:"6379"`
	// RedisPassword is the Redis password (REDIS_PASSWORD, default none).
	RedisPassword string `env:"REDIS_PASSWORD"`
	// RedisDB is the Redis database number (REDIS_DB, default 0).
	RedisDB int `env:"REDIS_DB" envDefault:"0"`

	// QueueName is the BullMQ queue of tasks (QUEUE_NAME, default
	// claude-tasks); results go to QueueName + "-results".
	QueueName string `env:"QUEUE_NAME" envDefault:"claude-tasks"`
	// QueuePrefix is the BullMQ key prefix (QUEUE_PREFIX, default bull).
	QueuePrefix string `env:"QUEUE_PREFIX" envDefault:"bull"`
	// TaskAttempts is how many times a task's job is tried (TASK_ATTEMPTS, default 3), ≥ 1.
	TaskAttempts int `env:"TASK_ATTEMPTS" envDefault:"3"`
	// TaskBackoffMs is the first delay of the exponential retry backoff in
	// milliseconds (TASK_BACKOFF_MS, default 2000), ≥ 0.
	TaskBackoffMs int64 `env:"TASK_BACKOFF_MS" envDefault:"2000"`
	// QueueCleanCompletedAge is how long completed jobs stay in Redis
	// (QUEUE_CLEAN_COMPLETED_AGE, a Go duration, default 1h), > 0.
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

	// ShutdownTimeout bounds the graceful shutdown (SHUTDOWN_TIMEOUT, default 15s), > 0.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"15s"`
}

// DefaultSQLitePath is the database file used when DATABASE_URL is empty.
const DefaultSQLitePath = "./data/orchestrator.db"

// Driver names the kind of database a Config selects.
type Driver string

// The supported drivers.
const (
	DriverSQLite   Driver = "sqlite"
	DriverPostgres Driver = "postgres"
)

// Load reads the configuration from environ (a variable name → value map,
// e.g. env.ToMap(os.Environ()) in main), applies the defaults and
// validates the result. The error names every variable that is wrong.
func Load(environ map[string]string) (Config, error) {
	c, err := env.ParseAsWithOptions[Config](env.Options{Environment: environ})
	if err != nil {
		return Config{}, explain(err)
	}
	keys := c.APIKeys[:0]
	for _, k := range c.APIKeys {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	c.APIKeys = keys
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// explain rewrites env's parse errors, which name struct fields, so that
// they name the environment variable instead.
func explain(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("read environment: %w", err)
	}
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			errs = append(errs, fmt.Errorf("%s: invalid value: %w", envName(pe.Name), pe.Err))
			continue
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// envName returns the environment variable of the Config field named field.
func envName(field string) string {
	if f, ok := reflect.TypeFor[Config]().FieldByName(field); ok {
		if name := f.Tag.Get("env"); name != "" {
			return name
		}
	}
	return field
}

// Validate checks every setting and returns an error naming each variable
// whose value is out of range.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	if c.Port < 1 || c.Port > 65535 {
		bad("PORT", "must be between 1 and 65535, got %d", c.Port)
	}
	if _, _, err := c.Database(); err != nil {
		bad("DATABASE_URL", "%v", err)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		bad("LOG_LEVEL", "%v", err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("LOG_FORMAT", "must be json or text, got %q", c.LogFormat)
	}
	if c.RedisURL != "" {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			bad("REDIS_URL", "%v", err)
		}
	} else {
		if c.RedisHost == "" {
			bad("REDIS_HOST", "must not be empty")
		}
		if c.RedisPort < 1 || c.RedisPort > 65535 {
			bad("REDIS_PORT", "must be between 1 and 65535, got %d", c.RedisPort)
		}
		if c.RedisDB < 0 {
			bad("REDIS_DB", "must be ≥ 0, got %d", c.RedisDB)
		}
	}
	if c.QueueName == "" || strings.Contains(c.QueueName, ":") {
		bad("QUEUE_NAME", "must be non-empty and contain no ':', got %q", c.QueueName)
	}
	if c.QueuePrefix == "" {
		bad("QUEUE_PREFIX", "must not be empty")
	}
	if c.TaskAttempts < 1 {
		bad("TASK_ATTEMPTS", "must be ≥ 1, got %d", c.TaskAttempts)
	}
	if c.TaskBackoffMs < 0 {
		bad("TASK_BACKOFF_MS", "must be ≥ 0, got %d", c.TaskBackoffMs)
	}
	if c.QueueCleanCompletedAge <= 0 {
		bad("QUEUE_CLEAN_COMPLETED_AGE", "must be > 0, got %s", c.QueueCleanCompletedAge)
	}
	if c.QueueCleanFailedAge <= 0 {
		bad("QUEUE_CLEAN_FAILED_AGE", "must be > 0, got %s", c.QueueCleanFailedAge)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"RELAY_INTERVAL", c.RelayInterval}, {"RECONCILE_INTERVAL", c.ReconcileInterval},
		{"RECONCILE_MIN_AGE", c.ReconcileMinAge}, {"RESULT_GRACE", c.ResultGrace}} {
		if d.v <= 0 {
			bad(d.name, "must be > 0, got %s", d.v)
		}
	}
	if c.ResultConcurrency < 1 {
		bad("RESULT_CONCURRENCY", "must be ≥ 1, got %d", c.ResultConcurrency)
	}
	if c.ShutdownTimeout <= 0 {
		bad("SHUTDOWN_TIMEOUT", "must be > 0, got %s", c.ShutdownTimeout)
	}
	return errors.Join(errs...)
}

// Database returns the driver DATABASE_URL selects and the data source to
// give that driver: for SQLite a file path or a file: URI, for PostgreSQL
// the URL unchanged.
func (c Config) Database() (Driver, string, error) {
	u := c.DatabaseURL
	switch {
	case u == "":
		return DriverSQLite, DefaultSQLitePath, nil
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		if _, err := url.Parse(u); err != nil {
			return "", "", fmt.Errorf("invalid PostgreSQL URL: %w", err)
		}
		return DriverPostgres, u, nil
	case strings.HasPrefix(u, "sqlite://"):
		p := strings.TrimPrefix(u, "sqlite://")
		if p == "" {
			return "", "", errors.New("sqlite:// URL has no path")
		}
		return DriverSQLite, p, nil
	case strings.HasPrefix(u, "file:"):
		if u == "file:" {
			return "", "", errors.New("file: URL has no path")
		}
		return DriverSQLite, u, nil
	}
	return "", "", errors.New("must start with postgres://, postgresql://, sqlite:// or file:")
}

// Level returns LOG_LEVEL as a slog.Level (info when invalid; Load
// rejects invalid levels).
func (c Config) Level() slog.Level {
	l, _ := parseLevel(c.LogLevel)
	return l
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("must be debug, info, warn or error, got %q", s)
}

// RedisOptions returns the go-redis options for REDIS_URL or, when it is
// empty, for REDIS_HOST, REDIS_PORT, REDIS_PASSWORD and REDIS_DB. It
// assumes a validated Config.
func (c Config) RedisOptions() (*redis.Options, error) {
	if c.RedisURL != "" {
		o, err := redis.ParseURL(c.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		return o, nil
	}
	return &redis.Options{
		Addr:     fmt.Sprintf("%s:%d", c.RedisHost, c.RedisPort),
		Password: c.RedisPassword,
		DB:       c.RedisDB,
	}, nil
}

// Addr returns the HTTP listen address, ":PORT".
func (c Config) Addr() string { return fmt.Sprintf(":%d", c.Port) }
