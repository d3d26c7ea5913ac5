// Command orchestrator serves the task API. It only wires the pieces
// together: configuration from the environment, a logger, the store
// (SQLite or PostgreSQL, chosen by DATABASE_URL; migrations run at open),
// the Redis side (dispatch: the queues and the background loops), the task
// service and the HTTP API, and it shuts down gracefully on SIGINT or
// SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentorch/orchestrator/internal/config"
	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/httpapi"
	"github.com/agentorch/orchestrator/internal/redact"
	"github.com/agentorch/orchestrator/internal/redisconn"
	"github.com/agentorch/orchestrator/internal/store/postgres"
	"github.com/agentorch/orchestrator/internal/store/sqlite"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/webhook"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() { os.Exit(mainCode()) }

// mainCode runs the orchestrator and returns the process exit code: 1 on
// invalid configuration or a failure to start or stop cleanly.
func mainCode() int {
	cfg, err := config.LoadOrchestrator(env.ToMap(os.Environ()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "orchestrator: invalid configuration:\n%v\n", err)
		return 1
	}
	logger := cfg.NewLogger(os.Stderr)
	redisconn.RouteInternalLogs(logger)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, stop, cfg, logger); err != nil {
		logger.Error("orchestrator stopped", "err", err)
		return 1
	}
	return 0
}

// run serves until ctx is cancelled, then shuts down within
// cfg.ShutdownTimeout: stop accepting, finish in-flight requests, stop the
// background loops, close the store. stopSignals is called when shutdown
// starts, so that a second SIGINT or SIGTERM kills the process at once.
func run(ctx context.Context, stopSignals func(), cfg config.Orchestrator, logger *slog.Logger) error {
	store, err := openStore(ctx, cfg.Database, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Error("close store", "err", err)
		}
	}()

	client, err := redisconn.New(cfg.Redis())
	if err != nil {
		return fmt.Errorf("redis client: %w", err)
	}
	defer func() {
		if err := client.Close(); err != nil {
			logger.Error("close redis client", "err", err)
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	webhooks := dispatch.WebhookOptions{URL: cfg.WebhookURL, Attempts: cfg.WebhookAttempts, Backoff: cfg.WebhookBackoff,
		Concurrency: cfg.WebhookConcurrency}
	if cfg.Webhooks() {
		sender, err := webhook.NewSender(webhook.SenderOptions{Key: cfg.WebhookKey, Timeout: cfg.WebhookTimeout,
			AllowPrivate: cfg.WebhookAllowPrivate, UserAgent: "agentorch/" + version})
		if err != nil {
			return err
		}
		defer sender.Close()
		webhooks.Sender = sender
	}
	disp, err := dispatch.New(client, dispatch.Options{
		Names: cfg.Names(),
		Enqueue: dispatch.EnqueuerOptions{Attempts: cfg.TaskAttempts, Backoff: backoffOf(cfg.TaskBackoff()),
			KeepCompletedAge: cfg.QueueCleanCompletedAge, KeepFailedAge: cfg.QueueCleanFailedAge,
			RetryOnTimeout: cfg.TaskRetryOnTimeout},
		Relay:         dispatch.RelayOptions{Interval: cfg.RelayInterval},
		Reconciler:    dispatch.ReconcilerOptions{Interval: cfg.ReconcileInterval, MinAge: cfg.ReconcileMinAge, ResultGrace: cfg.ResultGrace},
		Results:       dispatch.ResultsOptions{Concurrency: cfg.ResultConcurrency},
		Cleaner:       dispatch.CleanerOptions{CompletedAge: cfg.QueueCleanCompletedAge, FailedAge: cfg.QueueCleanFailedAge},
		Webhooks:      webhooks,
		Logger:        logger,
		Registerer:    reg,
		StateCacheTTL: cfg.MetricsCacheTTL,

		AllowEviction: cfg.RedisAllowEviction,
	})
	if err != nil {
		return err
	}
	defer disp.Close()
	if err := checkEvictionPolicy(ctx, disp, logger); err != nil {
		return err
	}

	svcOpts := task.ServiceOptions{Logger: logger, Enqueuer: disp.Enqueuer(),
		OnCreated:      func(*task.Task) { disp.Metrics().TaskCreated() },
		IdempotencyTTL: cfg.IdempotencyTTL, GlobalWebhook: cfg.Webhooks() && cfg.WebhookURL != ""}
	if cfg.Webhooks() {
		svcOpts.CheckCallbackURL = func(u string) error { return webhook.CheckURL(u, cfg.WebhookAllowPrivate) }
	}
	svc := task.NewService(store, svcOpts)
	state, err := disp.Collector(svc)
	if err != nil {
		return err
	}
	reg.MustRegister(state)
	httpMetrics, err := httpapi.MetricsMiddleware(reg)
	if err != nil {
		return err
	}
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	var routes []httpapi.ExtraRoute
	if cfg.MetricsAddr == "" { // on the API port, behind the API key when keys are set
		routes = append(routes, httpapi.ExtraRoute{Pattern: "GET /metrics", Handler: metrics})
	}
	api, err := httpapi.New(httpapi.Options{
		Service:    svc,
		Logger:     logger,
		APIKeys:    apiKeys(cfg.Keys),
		Version:    version,
		Redis:      disp,
		QueueStats: disp,
		Middleware: []func(http.Handler) http.Handler{httpMetrics},
		Routes:     routes,
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
	defer ln.Close()
	// METRICS_ADDR: /metrics alone, without key, on its own listener.
	var metricsSrv *http.Server
	metricsServed := make(chan error, 1) // stays empty without METRICS_ADDR
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics)
		metricsSrv = &http.Server{Addr: cfg.MetricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second,
			MaxHeaderBytes: 16 << 10, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listen on METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		defer func() { _ = metricsSrv.Close() }() // on every return; a no-op after Shutdown
		logger.Info("metrics listening", "addr", mln.Addr().String())
		go func() { metricsServed <- metricsSrv.Serve(mln) }()
	}
	logger.Info("orchestrator listening", "addr", ln.Addr().String(), "version", version,
		"api_keys", len(cfg.Keys), "webhooks", cfg.Webhooks(), "metrics_addr", cfg.MetricsAddr,
		"redis", cfg.Redis().Redacted(), "database", cfg.DatabaseRedacted())

	// The loops outlive the HTTP server at shutdown, so that requests in
	// flight can still enqueue; they stop right after it.
	loopCtx, stopLoops := context.WithCancel(context.WithoutCancel(ctx))
	loopsDone := make(chan error, 1)
	go func() { loopsDone <- disp.Run(loopCtx, svc) }()
	var (
		loopsErr     error
		loopsStopped bool
	)
	waitLoops := func() error { // stops the loops and waits for them, once
		stopLoops()
		if !loopsStopped {
			loopsErr, loopsStopped = <-loopsDone, true
		}
		return loopsErr
	}
	defer func() { _ = waitLoops() }()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve http: %w", err)
	case err := <-metricsServed:
		_ = srv.Close()
		return fmt.Errorf("serve metrics: %w", err)
	case err := <-loopsDone:
		loopsErr, loopsStopped = err, true
		_ = srv.Close()
		return fmt.Errorf("start background loops: %w", err)
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
	if metricsSrv != nil {
		if err := metricsSrv.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutdown metrics server: %w", err)
		}
		if err := <-metricsServed; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve metrics: %w", err)
		}
	}
	if err := waitLoops(); err != nil {
		return fmt.Errorf("background loops: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// apiKeys converts the parsed API_KEYS for the HTTP API.
func apiKeys(keys []config.APIKey) []httpapi.APIKey {
	out := make([]httpapi.APIKey, len(keys))
	for i, k := range keys {
		out[i] = httpapi.APIKey{Name: k.Name, Key: k.Key, Admin: k.Admin}
	}
	return out
}

// checkEvictionPolicy refuses to start on a Redis whose maxmemory-policy may
// evict queue keys (unless REDIS_ALLOW_EVICTION=true). A Redis that does
// not answer does not stop the start: the policy is then checked before
// every job add (dispatch.ErrEvictionPolicy), and tasks wait as pending.
func checkEvictionPolicy(ctx context.Context, disp *dispatch.Dispatcher, logger *slog.Logger) error {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := disp.CheckEvictionPolicy(cctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dispatch.ErrEvictionPolicy):
		return err
	}
	logger.Warn("redis does not answer at start; its maxmemory-policy will be checked before jobs are added", "err", err)
	return nil
}

// backoffOf turns TASK_BACKOFF_MS into the enqueuer's Backoff, where a
// negative value means none.
func backoffOf(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// openStore opens the store DATABASE_URL selects; opening runs the
// migrations (and, for SQLite, creates the file's directory).
func openStore(ctx context.Context, db config.Database, logger *slog.Logger) (task.Store, error) {
	switch db.Driver {
	case config.DriverPostgres:
		s, err := postgres.Open(ctx, db.DSN, logger)
		if err != nil {
			return nil, fmt.Errorf("open postgres store %s: %w", redact.DSN(db.DSN), redact.DSNError(err, db.DSN))
		}
		logger.Info("store opened", "driver", db.Driver, "database", redact.DSN(db.DSN))
		return s, nil
	default:
		s, err := sqlite.Open(ctx, db.DSN, logger)
		if err != nil {
			return nil, fmt.Errorf("open sqlite store %s: %w", db.DSN, err)
		}
		logger.Info("store opened", "driver", db.Driver, "path", redact.DSN(db.DSN))
		return s, nil
	}
}
