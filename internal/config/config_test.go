package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	c, err := LoadOrchestrator(map[string]string{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Orchestrator{
		Shared: Shared{LogLevel: "info", LogFormat: "json",
			RedisHost: "localhost", RedisPort: 6379, QueueName: "claude-tasks", QueuePrefix: "bull"},
		Port: 3000, TaskAttempts: 3, TaskBackoffMs: 2000, QueueCleanCompletedAge: time.Hour,
		QueueCleanFailedAge: 168 * time.Hour, ShutdownTimeout: 15 * time.Second,
	}
	if c.Port != want.Port || c.LogLevel != want.LogLevel || c.LogFormat != want.LogFormat ||
		c.RedisHost != want.RedisHost || c.RedisPort != want.RedisPort || c.RedisDB != 0 ||
		c.QueueName != want.QueueName || c.QueuePrefix != want.QueuePrefix ||
		c.TaskAttempts != want.TaskAttempts || c.TaskBackoffMs != want.TaskBackoffMs ||
		c.QueueCleanCompletedAge != want.QueueCleanCompletedAge || c.QueueCleanFailedAge != want.QueueCleanFailedAge ||
		c.ShutdownTimeout != want.ShutdownTimeout || c.RelayInterval != time.Second || c.ReconcileInterval != 30*time.Second ||
		c.ReconcileMinAge != 10*time.Second || c.ResultGrace != time.Minute || c.ResultConcurrency != 32 || len(c.APIKeys) != 0 || c.DatabaseURL != "" ||
		c.MetricsAddr != "" || c.MetricsCacheTTL != 5*time.Second {
		t.Errorf("defaults = %+v", c)
	}
	if c.Database != (Database{Driver: DriverSQLite, DSN: DefaultSQLitePath}) {
		t.Errorf("Database = %+v; want sqlite %s", c.Database, DefaultSQLitePath)
	}
	if c.Level() != slog.LevelInfo {
		t.Errorf("Level() = %v", c.Level())
	}
	if r := c.Redis(); r.Host != "localhost" || r.Port != 6379 || r.DB != 0 || r.URL != "" {
		t.Errorf("Redis() = %+v", r)
	}
	if n := c.Names(); n.Tasks() != "claude-tasks" || n.Results() != "claude-tasks-results" || n.CancelChannel() != "bull:claude-tasks:cancel" {
		t.Errorf("Names() = %+v", n)
	}
	if c.Addr() != ":3000" {
		t.Errorf("Addr() = %q", c.Addr())
	}
}

func TestLoadValues(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c Orchestrator)
	}{
		{"port", map[string]string{"PORT": "8080"}, func(t *testing.T, c Orchestrator) {
			if c.Port != 8080 {
				t.Errorf("Port = %d", c.Port)
			}
		}},
		{"api keys trimmed", map[string]string{"API_KEYS": " a , b,,c "}, func(t *testing.T, c Orchestrator) {
			if strings.Join(c.APIKeys, "|") != "a|b|c" {
				t.Errorf("APIKeys = %q", c.APIKeys)
			}
		}},
		{"api keys only commas", map[string]string{"API_KEYS": ", ,"}, func(t *testing.T, c Orchestrator) {
			if len(c.APIKeys) != 0 {
				t.Errorf("APIKeys = %q", c.APIKeys)
			}
		}},
		{"log", map[string]string{"LOG_LEVEL": "debug", "LOG_FORMAT": "text"}, func(t *testing.T, c Orchestrator) {
			if c.Level() != slog.LevelDebug || c.LogFormat != "text" {
				t.Errorf("level %v format %q", c.Level(), c.LogFormat)
			}
		}},
		{"log level case", map[string]string{"LOG_LEVEL": "WARN"}, func(t *testing.T, c Orchestrator) {
			if c.Level() != slog.LevelWarn {
				t.Errorf("level %v", c.Level())
			}
		}},
		{"redis parts", map[string]string{"REDIS_HOST": "r", "REDIS_PORT": "7000", "REDIS_PASSWORD": "pw", "REDIS_DB": "2"}, func(t *testing.T, c Orchestrator) {
			if r := c.Redis(); r.Host != "r" || r.Port != 7000 || r.Password != "pw" || r.DB != 2 {
				t.Errorf("Redis() = %+v", r)
			}
		}},
		{"redis url wins", map[string]string{"REDIS_URL": "redis://:pw@127.0.0.1:6380/3", "REDIS_HOST": "ignored"}, func(t *testing.T, c Orchestrator) {
			if r := c.Redis(); r.URL != "redis://:pw@127.0.0.1:6380/3" {
				t.Errorf("Redis() = %+v", r)
			}
		}},
		{"every REDIS_URL scheme", map[string]string{"REDIS_URL": "redis-cluster://127.0.0.1:7000,127.0.0.1:7001"}, func(t *testing.T, c Orchestrator) {
			if c.Redis().URL == "" {
				t.Error("cluster URL dropped")
			}
		}},
		{"sentinel url", map[string]string{"REDIS_URL": "redis-sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/0?master=m"}, func(t *testing.T, c Orchestrator) {
			if c.Redis().URL == "" {
				t.Error("sentinel URL dropped")
			}
		}},
		{"metrics", map[string]string{"METRICS_ADDR": "127.0.0.1:9100", "METRICS_CACHE_TTL": "30s"}, func(t *testing.T, c Orchestrator) {
			if c.MetricsAddr != "127.0.0.1:9100" || c.MetricsCacheTTL != 30*time.Second {
				t.Errorf("MetricsAddr %q MetricsCacheTTL %s", c.MetricsAddr, c.MetricsCacheTTL)
			}
		}},
		{"metrics on every interface", map[string]string{"METRICS_ADDR": ":9100"}, func(t *testing.T, c Orchestrator) {
			if c.MetricsAddr != ":9100" {
				t.Errorf("MetricsAddr %q", c.MetricsAddr)
			}
		}},
		{"durations in milliseconds", map[string]string{"RELAY_INTERVAL": "250", "SHUTDOWN_TIMEOUT": "2500"}, func(t *testing.T, c Orchestrator) {
			if c.RelayInterval != 250*time.Millisecond || c.ShutdownTimeout != 2500*time.Millisecond {
				t.Errorf("RelayInterval %s ShutdownTimeout %s", c.RelayInterval, c.ShutdownTimeout)
			}
		}},
		{"queue", map[string]string{"QUEUE_NAME": "q", "QUEUE_PREFIX": "p", "TASK_ATTEMPTS": "5", "TASK_BACKOFF_MS": "0",
			"QUEUE_CLEAN_COMPLETED_AGE": "30m", "QUEUE_CLEAN_FAILED_AGE": "24h", "SHUTDOWN_TIMEOUT": "2s"}, func(t *testing.T, c Orchestrator) {
			if c.QueueName != "q" || c.QueuePrefix != "p" || c.TaskAttempts != 5 || c.TaskBackoffMs != 0 ||
				c.QueueCleanCompletedAge != 30*time.Minute || c.QueueCleanFailedAge != 24*time.Hour || c.ShutdownTimeout != 2*time.Second {
				t.Errorf("got %+v", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadOrchestrator(tt.env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestDatabase(t *testing.T) {
	tests := []struct {
		url    string
		driver Driver
		dsn    string
	}{
		{"", DriverSQLite, DefaultSQLitePath},
		{"sqlite://./x.db", DriverSQLite, "./x.db"},
		{"sqlite:///var/lib/o.db", DriverSQLite, "/var/lib/o.db"},
		{"file:/tmp/o.db?_pragma=foo", DriverSQLite, "file:/tmp/o.db?_pragma=foo"},
		{"postgres://u@h:5432/db?sslmode=disable", DriverPostgres, "postgres://u@h:5432/db?sslmode=disable"},
		{"postgresql://u@h/db", DriverPostgres, "postgresql://u@h/db"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c, err := LoadOrchestrator(map[string]string{"DATABASE_URL": tt.url})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Database != (Database{Driver: tt.driver, DSN: tt.dsn}) {
				t.Errorf("Database = %+v; want %q, %q", c.Database, tt.driver, tt.dsn)
			}
		})
	}
}

func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string // the variable the error must name
	}{
		{map[string]string{"PORT": "abc"}, "PORT"},
		{map[string]string{"PORT": "0"}, "PORT"},
		{map[string]string{"PORT": "70000"}, "PORT"},
		{map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		{map[string]string{"DATABASE_URL": "sqlite://"}, "DATABASE_URL"},
		{map[string]string{"DATABASE_URL": "postgres://%zz"}, "DATABASE_URL"},
		{map[string]string{"REDIS_URL": "redis-sentinel://127.0.0.1:26379"}, "REDIS_URL"},
		{map[string]string{"LOG_LEVEL": "verbose"}, "LOG_LEVEL"},
		{map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{map[string]string{"REDIS_URL": "http://x"}, "REDIS_URL"},
		{map[string]string{"REDIS_PORT": "x"}, "REDIS_PORT"},
		{map[string]string{"REDIS_PORT": "0"}, "REDIS_PORT"},
		{map[string]string{"REDIS_DB": "-1"}, "REDIS_DB"},
		{map[string]string{"QUEUE_NAME": "a:b"}, "QUEUE_NAME"},
		{map[string]string{"TASK_ATTEMPTS": "0"}, "TASK_ATTEMPTS"},
		{map[string]string{"TASK_BACKOFF_MS": "-1"}, "TASK_BACKOFF_MS"},
		{map[string]string{"TASK_BACKOFF_MS": "1.5"}, "TASK_BACKOFF_MS"},
		{map[string]string{"QUEUE_CLEAN_COMPLETED_AGE": "1 hour"}, "QUEUE_CLEAN_COMPLETED_AGE"},
		{map[string]string{"QUEUE_CLEAN_FAILED_AGE": "0s"}, "QUEUE_CLEAN_FAILED_AGE"},
		{map[string]string{"SHUTDOWN_TIMEOUT": "-1s"}, "SHUTDOWN_TIMEOUT"},
		{map[string]string{"RELAY_INTERVAL": "0s"}, "RELAY_INTERVAL"},
		{map[string]string{"RECONCILE_INTERVAL": "x"}, "RECONCILE_INTERVAL"},
		{map[string]string{"RECONCILE_MIN_AGE": "-1s"}, "RECONCILE_MIN_AGE"},
		{map[string]string{"RESULT_GRACE": "0"}, "RESULT_GRACE"},
		{map[string]string{"RESULT_CONCURRENCY": "0"}, "RESULT_CONCURRENCY"},
		{map[string]string{"METRICS_ADDR": "9100"}, "METRICS_ADDR"},
		{map[string]string{"METRICS_ADDR": "localhost"}, "METRICS_ADDR"},
		{map[string]string{"METRICS_ADDR": ":0"}, "METRICS_ADDR"},
		{map[string]string{"METRICS_ADDR": ":http"}, "METRICS_ADDR"},
		{map[string]string{"METRICS_ADDR": ":70000"}, "METRICS_ADDR"},
		{map[string]string{"METRICS_ADDR": ":3000"}, "METRICS_ADDR"},
		{map[string]string{"METRICS_ADDR": "127.0.0.1:8080", "PORT": "8080"}, "METRICS_ADDR"},
		{map[string]string{"METRICS_CACHE_TTL": "0"}, "METRICS_CACHE_TTL"},
		{map[string]string{"METRICS_CACHE_TTL": "-5s"}, "METRICS_CACHE_TTL"},
		{map[string]string{"METRICS_CACHE_TTL": "often"}, "METRICS_CACHE_TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := LoadOrchestrator(tt.env)
			if err == nil {
				t.Fatalf("Load(%v) = nil error", tt.env)
			}
			if !strings.Contains(err.Error(), tt.want+":") {
				t.Errorf("error %q does not name %s", err, tt.want)
			}
		})
	}
}

func TestLoadInvalidNamesEveryVariable(t *testing.T) {
	_, err := LoadOrchestrator(map[string]string{"PORT": "abc", "LOG_FORMAT": "xml", "SHUTDOWN_TIMEOUT": "soon"})
	if err == nil {
		t.Fatal("Load = nil error")
	}
	// Parse errors stop before range checks; both parse failures are named.
	for _, name := range []string{"PORT", "SHUTDOWN_TIMEOUT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestValidateZeroConfig(t *testing.T) {
	c := Orchestrator{}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate of the zero Orchestrator = nil")
	}
	for _, name := range []string{"PORT", "LOG_LEVEL", "LOG_FORMAT", "REDIS_HOST", "REDIS_PORT", "QUEUE_NAME",
		"QUEUE_PREFIX", "TASK_ATTEMPTS", "QUEUE_CLEAN_COMPLETED_AGE", "QUEUE_CLEAN_FAILED_AGE", "SHUTDOWN_TIMEOUT", "RELAY_INTERVAL", "RESULT_CONCURRENCY",
		"METRICS_CACHE_TTL"} {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestLoadEmptyMeansDefault(t *testing.T) {
	c, err := LoadOrchestrator(map[string]string{"REDIS_HOST": "", "QUEUE_PREFIX": "", "PORT": ""})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.RedisHost != "localhost" || c.QueuePrefix != "bull" || c.Port != 3000 {
		t.Errorf("got %+v", c)
	}
}
