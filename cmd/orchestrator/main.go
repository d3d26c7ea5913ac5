// Command orchestrator serves the task API. It only wires the pieces
// together: configuration from the environment, a logger, the store
// (SQLite or PostgreSQL, chosen by DATABASE_URL; migrations run at open),
// the task service and the HTTP API, and it shuts down gracefully on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentorch/orchestrator/internal/config"
	"github.com/agentorch/orchestrator/internal/httpapi"
	"github.com/agentorch/orchestrator/internal/store/postgres"
	"github.com/agentorch/orchestrator/internal/store/sqlite"
	"github.com/agentorch/orchestrator/internal/task"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() { os.Exit(mainCode()) }

// mainCode runs the orchestrator and returns the process exit code: 1 on
// invalid configuration or a failure to start or stop cleanly.
func mainCode() int {
	cfg, err := config.Load(env.ToMap(os.Environ()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "orchestrator: invalid configuration:\n%v\n", err)
		return 1
	}
	logger := newLogger(cfg, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, stop, cfg, logger); err != nil {
		logger.Error("orchestrator stopped", "err", err)
		return 1
	}
	return 0
}

// newLogger builds the process logger from LOG_LEVEL and LOG_FORMAT.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Level()}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// run serves until ctx is cancelled, then shuts down within
// cfg.ShutdownTimeout: stop accepting, finish in-flight requests, close
// the store. stopSignals is called when shutdown starts, so that a second
// SIGINT or SIGTERM kills the process at once.
func run(ctx context.Context, stopSignals func(), cfg config.Config, logger *slog.Logger) error {
	store, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Error("close store", "err", err)
		}
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	qs, err := newQueueSide(cfg, reg, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := qs.close(); err != nil {
			logger.Error("close redis client", "err", err)
		}
	}()
	reg.MustRegister(qs.collector(store))
	httpMetrics, err := httpapi.MetricsMiddleware(reg)
	if err != nil {
		return err
	}

	svc := task.NewService(qs.countCreates(store), task.ServiceOptions{Logger: logger, Enqueuer: qs.enqueuer})
	api, err := httpapi.New(httpapi.Options{
		Service:    svc,
		Logger:     logger,
		APIKeys:    cfg.APIKeys,
		Version:    version,
		Redis:      qs.redisChecker(),
		QueueStats: qs.queueStats(),
		Middleware: []func(http.Handler) http.Handler{httpMetrics},
		Routes: []httpapi.ExtraRoute{{Pattern: "GET /metrics",
			Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}), Public: true}},
	})
	if err != nil {
		return fmt.Errorf("build http api: %w", err)
	}
	srv := &http.Server{
		Addr:              cfg.Addr(),
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", srv.Addr, err)
	}
	logger.Info("orchestrator listening", "addr", ln.Addr().String(), "version", version,
		"api_keys", len(cfg.APIKeys) > 0)

	// The loops outlive the HTTP server at shutdown, so that requests in
	// flight can still enqueue; they stop right after it.
	loopCtx, stopLoops := context.WithCancel(context.WithoutCancel(ctx))
	waitLoops, err := qs.start(loopCtx, svc)
	if err != nil {
		stopLoops()
		return fmt.Errorf("start background loops: %w", err)
	}
	defer func() { stopLoops(); waitLoops() }()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	stopSignals()
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown http server: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	stopLoops()
	waitLoops()
	logger.Info("stopped")
	return nil
}

// openStore opens the store DATABASE_URL selects; opening runs the
// migrations.
func openStore(ctx context.Context, cfg config.Config, logger *slog.Logger) (task.Store, error) {
	driver, dsn, err := cfg.Database()
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	switch driver {
	case config.DriverPostgres:
		s, err := postgres.Open(ctx, dsn, logger)
		if err != nil {
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
		logger.Info("store opened", "driver", driver)
		return s, nil
	default:
		if dir := sqliteDir(dsn); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("create sqlite directory %s: %w", dir, err)
			}
		}
		s, err := sqlite.Open(ctx, dsn, logger)
		if err != nil {
			return nil, fmt.Errorf("open sqlite store %s: %w", dsn, err)
		}
		logger.Info("store opened", "driver", driver, "path", dsn)
		return s, nil
	}
}

// sqliteDir returns the directory of a SQLite path or file: URI, "" when
// there is none to create (in-memory databases).
func sqliteDir(dsn string) string {
	p := dsn
	if strings.HasPrefix(p, "file:") {
		p = strings.TrimPrefix(p, "file:")
		p, _, _ = strings.Cut(p, "?")
		p = strings.TrimPrefix(p, "//")
	}
	if p == "" || p == ":memory:" || strings.Contains(dsn, "mode=memory") {
		return ""
	}
	return filepath.Dir(p)
}
