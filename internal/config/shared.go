package config

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/agentorch/orchestrator/internal/redact"
	"github.com/agentorch/orchestrator/internal/redisconn"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// Shared are the settings of both binaries: where Redis is, the queue
// names, and logging.
type Shared struct {
	// RedisURL (REDIS_URL), when set, wins over REDIS_HOST, REDIS_PORT,
	// REDIS_PASSWORD and REDIS_DB: redis://, rediss:// (TLS),
	// redis-sentinel://…?master=name or redis-cluster://h1:p1,h2:p2 (see
	// redisconn.Config). Defaults to none.
	RedisURL string `env:"REDIS_URL"`
	// RedisHost is the Redis host (REDIS_HOST, default localhost).
	RedisHost string `env:"REDIS_HOST" envDefault:"localhost"`
	// RedisPort is the Redis port (REDIS_PORT, default 6379), 1..65535.
	RedisPort int `env:"REDIS_PORT" envDefault:"6379"`
	// RedisPassword is the Redis password (REDIS_PASSWORD, default none).
	RedisPassword string `env:"REDIS_PASSWORD"`
	// RedisDB is the Redis database number (REDIS_DB, default 0), ≥ 0.
	RedisDB int `env:"REDIS_DB" envDefault:"0"`

	// QueueName is the task queue (QUEUE_NAME, default claude-tasks, see
	// taskqueue.DefaultQueue); it must not contain ':'.
	QueueName string `env:"QUEUE_NAME"`
	// QueuePrefix is the BullMQ key prefix (QUEUE_PREFIX, default bull).
	QueuePrefix string `env:"QUEUE_PREFIX"`

	// LogLevel is debug, info, warn or error (LOG_LEVEL, default info).
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// LogFormat is json or text (LOG_FORMAT, default json).
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"`
}

// fill sets the queue defaults, which the taskqueue contract owns.
func (s *Shared) fill() {
	n := taskqueue.Names{Prefix: s.QueuePrefix, Queue: s.QueueName}.WithDefaults()
	s.QueuePrefix, s.QueueName = n.Prefix, n.Queue
}

// validate records every shared variable that is wrong.
func (s Shared) validateShared(p *problems) {
	if s.RedisURL == "" {
		if s.RedisHost == "" {
			p.add("REDIS_HOST", "must not be empty")
		}
		if s.RedisPort < 1 || s.RedisPort > 65535 {
			p.add("REDIS_PORT", "must be between 1 and 65535, got %d", s.RedisPort)
		}
		if s.RedisDB < 0 {
			p.add("REDIS_DB", "must be ≥ 0, got %d", s.RedisDB)
		}
	}
	// Building a client does no I/O; it checks the URL and its scheme.
	if client, err := redisconn.New(s.Redis()); err != nil {
		name := "REDIS_HOST"
		if s.RedisURL != "" {
			name = "REDIS_URL"
		}
		p.add(name, "%v", err)
	} else {
		_ = client.Close()
	}
	if s.QueueName == "" || strings.Contains(s.QueueName, ":") {
		p.add("QUEUE_NAME", "must be non-empty and contain no ':', got %q", s.QueueName)
	}
	if strings.TrimSpace(s.QueuePrefix) == "" {
		p.add("QUEUE_PREFIX", "must not be empty")
	}
	if _, err := parseLevel(s.LogLevel); err != nil {
		p.add("LOG_LEVEL", "%v", err)
	}
	if s.LogFormat != "json" && s.LogFormat != "text" {
		p.add("LOG_FORMAT", "must be json or text, got %q", s.LogFormat)
	}
}

// Redis returns where Redis is, for redisconn.New.
func (s Shared) Redis() redisconn.Config {
	return redisconn.Config{URL: s.RedisURL, Host: s.RedisHost, Port: s.RedisPort, Password: s.RedisPassword, DB: s.RedisDB}
}

// Names returns the queue and channel names of QUEUE_PREFIX and QUEUE_NAME.
func (s Shared) Names() taskqueue.Names {
	return taskqueue.Names{Prefix: s.QueuePrefix, Queue: s.QueueName}.WithDefaults()
}

// Level returns LOG_LEVEL as a slog.Level (info when invalid; the loaders
// reject invalid levels).
func (s Shared) Level() slog.Level {
	l, _ := parseLevel(s.LogLevel)
	return l
}

// NewLogger returns a logger writing to w in LOG_FORMAT at LOG_LEVEL that
// masks the passwords of REDIS_URL and REDIS_PASSWORD in every line (see
// redact.Secrets.Handler). Orchestrator and Worker have their own, which
// mask their secrets too.
func (s Shared) NewLogger(w io.Writer) *slog.Logger { return s.newLogger(w, s.secrets()) }

func (s Shared) newLogger(w io.Writer, secrets *redact.Secrets) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.Level()}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if s.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(secrets.Handler(h))
}

// secrets returns the secrets of the shared settings: the passwords of
// REDIS_URL and REDIS_PASSWORD.
func (s Shared) secrets() *redact.Secrets {
	var r redact.Secrets
	r.AddURL(s.RedisURL)
	r.Add(s.RedisPassword)
	return &r
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
