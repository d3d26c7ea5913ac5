package workerapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/executor"
	"github.com/agentorch/orchestrator/internal/sandbox"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// Options are the dependencies of an App.
type Options struct {
	// Config is the App's settings. Required; New fills in its defaults.
	Config *Config
	// Client is the Redis client for the queues and the cancel channel.
	// Required; the App does not close it.
	Client redis.UniversalClient
	// Executor runs the tasks. Required.
	Executor executor.Executor
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Clock defaults to time.Now.
	Clock func() time.Time
	// Registry receives the metrics and is served on /metrics. Defaults to
	// a new registry with the Go and process collectors.
	Registry *prometheus.Registry
	// Sandbox is the agent sandbox the executor runs programs in; its
	// report is logged at start and shown on /health. Nil shows none.
	Sandbox *sandbox.Sandbox
}

// App is the worker application. Build it with New and start it with Run.
type App struct {
	cfg      *Config
	client   redis.UniversalClient
	exec     executor.Executor
	log      *slog.Logger
	clock    func() time.Time
	registry *prometheus.Registry
	sandbox  *sandbox.Sandbox
	metrics  *metrics
	running  *runningTasks
	results  *bullmq.Queue
	worker   *bullmq.Worker

	subscribed chan struct{} // closed once the cancel channel is subscribed
	subOnce    sync.Once
	httpAddr   chan net.Addr // receives the HTTP listener's address once
}

// New returns an App. It does no I/O. It returns an error for a missing
// dependency or invalid settings.
func New(opts Options) (*App, error) {
	switch {
	case opts.Config == nil:
		return nil, errors.New("new worker app: nil config")
	case opts.Client == nil:
		return nil, errors.New("new worker app: nil redis client")
	case opts.Executor == nil:
		return nil, errors.New("new worker app: nil executor")
	}
	cfg := *opts.Config
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new worker app: %w", err)
	}
	a := &App{
		cfg: &cfg, client: opts.Client, exec: opts.Executor,
		log: opts.Logger, clock: opts.Clock, registry: opts.Registry, sandbox: opts.Sandbox,
		subscribed: make(chan struct{}), httpAddr: make(chan net.Addr, 1),
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.log = a.log.With("worker_id", a.cfg.WorkerID)
	if a.clock == nil {
		a.clock = time.Now
	}
	if a.registry == nil {
		a.registry = prometheus.NewRegistry()
		a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m, err := newMetrics(a.registry)
	if err != nil {
		return nil, fmt.Errorf("new worker app: register metrics: %w", err)
	}
	a.metrics = m
	a.running = newRunningTasks(a.clock)
	names := a.cfg.Names
	a.results, err = bullmq.NewQueue(a.client, names.Results(), &bullmq.QueueOptions{Prefix: names.Prefix, Logger: a.log})
	if err != nil {
		return nil, fmt.Errorf("new worker app: results queue: %w", err)
	}
	a.worker, err = bullmq.NewWorker(a.client, names.Tasks(), a.process, &bullmq.WorkerOptions{
		Prefix:          names.Prefix,
		Name:            a.cfg.WorkerID,
		Concurrency:     a.cfg.Concurrency,
		LockDuration:    a.cfg.LockDuration,
		StalledInterval: a.cfg.StalledInterval,
		Logger:          a.log,
		Clock:           a.clock,
		OnError:         func(err error) { a.log.Warn("queue error", "err", err) },
		OnStalled:       func(id string) { a.log.Warn("stalled job moved back to wait", "job_id", id) },
		OnLockLost:      func(job *bullmq.Job) { a.log.Warn("job lock lost; stopping its run", "job_id", job.ID) },
		OnFailed:        a.onFailed,
		OnMissingJob:    func(string) { a.metrics.missing.Inc() },
		MaxStalledCount: a.cfg.MaxStalled,
	})
	if err != nil {
		return nil, fmt.Errorf("new worker app: worker: %w", err)
	}
	return a, nil
}

// Subscribed is closed once the App listens on the cancel channel.
func (a *App) Subscribed() <-chan struct{} { return a.subscribed }

// HTTPAddr returns a channel that receives the address /health and
// /metrics are served on, once listening (never, when WORKER_HTTP_ADDR is
// empty).
func (a *App) HTTPAddr() <-chan net.Addr { return a.httpAddr }

// Run runs the worker until ctx ends, then shuts down gracefully: it stops
// taking jobs, lets the running tasks finish for up to ShutdownTimeout, and
// then kills them (SIGTERM, SIGKILL after the grace), leaving their jobs
// active so that a stalled checker gives them to another worker. Run
// returns nil after a clean shutdown and the error that stopped it
// otherwise (the HTTP address already in use, for example).
func (a *App) Run(ctx context.Context) error {
	var srv *http.Server
	if a.cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("worker: listen on WORKER_HTTP_ADDR %s: %w", a.cfg.HTTPAddr, err)
		}
		a.httpAddr <- ln.Addr()
		srv = &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("http server stopped", "err", err)
			}
		}()
	}

	// The cancel listener lives until the worker has stopped, so that tasks
	// still finishing during shutdown can be cancelled.
	listenCtx, stopListen := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); a.listenCancels(listenCtx) }()

	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorker()
	workerDone := make(chan error, 1)
	go func() { workerDone <- a.worker.Run(workerCtx) }()
	a.log.Info("worker started", "queue", a.cfg.Names.Tasks(), "prefix", a.cfg.Names.Prefix,
		"executor", a.cfg.Executor, "concurrency", a.cfg.Concurrency, "cancel_channel", a.cfg.Names.CancelChannel())
	a.logSandbox(ctx)

	var runErr error
	select {
	case runErr = <-workerDone:
	case <-ctx.Done():
		n := a.running.count()
		a.log.Info("shutting down: no new tasks; waiting for running ones", "running", n, "timeout", a.cfg.ShutdownTimeout)
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
		if err := a.worker.Close(closeCtx); err != nil {
			a.log.Warn("shutdown timeout passed: killed the running tasks; their jobs stay active for recovery", "err", err)
		}
		cancel()
		runErr = <-workerDone
	}
	stopListen()
	bg.Wait()
	if srv != nil {
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = srv.Shutdown(shutCtx)
		cancel()
	}
	a.log.Info("worker stopped")
	return runErr
}

// listenCancels subscribes to the cancel channel and stops the runs of the
// task ids published on it, until ctx ends. A message is acted on only when
// the orchestrator recorded the request (see checkCancel). go-redis
// resubscribes after a lost connection by itself.
func (a *App) listenCancels(ctx context.Context) {
	channel := a.cfg.Names.CancelChannel()
	for ctx.Err() == nil {
		ps := a.client.Subscribe(ctx, channel)
		if _, err := ps.Receive(ctx); err != nil {
			_ = ps.Close()
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("subscribe to the cancel channel failed; retrying", "channel", channel, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		a.subOnce.Do(func() { close(a.subscribed) })
		msgs := ps.Channel()
		for done := false; !done; {
			select {
			case <-ctx.Done():
				done = true
			case msg, ok := <-msgs:
				if !ok {
					done = true
					break
				}
				a.metrics.cancels.WithLabelValues(string(a.handleCancel(ctx, msg.Payload))).Inc()
			}
		}
		_ = ps.Close()
	}
}

// handleCancel acts on one cancel message: it stops the runs of the task
// when the orchestrator requested the cancel, and says what it did.
func (a *App) handleCancel(ctx context.Context, taskID string) cancelOutcome {
	if err := a.checkCancel(ctx, taskID); err != nil {
		var rejected *rejectedCancel
		if errors.As(err, &rejected) {
			a.log.Warn("cancel message rejected: the orchestrator made no such request", "task_id", taskID)
			return cancelRejected
		}
		a.log.Warn("cancel message ignored: the cancel requests could not be read", "task_id", taskID, "err", err)
		return cancelUnchecked
	}
	if a.running.cancel(taskID) {
		a.log.Info("cancel request: stopping the task", "task_id", taskID)
		return cancelApplied
	}
	a.log.Debug("cancel request for a task not running here", "task_id", taskID)
	return cancelRemembered
}

// rejectedCancel is a cancel message whose task id the orchestrator did not
// record.
type rejectedCancel struct{}

func (*rejectedCancel) Error() string { return "cancel not requested" }

// checkCancel verifies a cancel message: the orchestrator records every
// cancel request in the sorted set taskqueue.Names.CancelRequests (task id,
// request time) before it publishes the task id, so a message whose id is
// not there, or is older than taskqueue.CancelRequestTTL, was not sent by
// it (*rejectedCancel). With the Redis ACL of docs/redis-acl.md, workers
// can read that set but not write it, and cannot publish.
func (a *App) checkCancel(ctx context.Context, taskID string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	score, err := a.client.ZScore(ctx, a.cfg.Names.CancelRequests(), taskID).Result()
	if errors.Is(err, redis.Nil) {
		return &rejectedCancel{}
	}
	if err != nil {
		return err
	}
	if at := time.UnixMilli(int64(score)); a.clock().Sub(at) > taskqueue.CancelRequestTTL {
		return &rejectedCancel{}
	}
	return nil
}

// Handler serves GET /health (Redis reachable: 200, else 503, with a JSON
// body) and GET /metrics (Prometheus).
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		body := map[string]any{"status": "ok", "workerId": a.cfg.WorkerID, "executor": a.cfg.Executor,
			"queue": a.cfg.Names.Tasks(), "running": a.running.count(), "redis": "ok"}
		if a.sandbox != nil {
			rep, _ := a.sandbox.Probe(ctx) // probed at start; cached
			body["sandbox"] = rep
		}
		code := http.StatusOK
		if err := a.client.Ping(ctx).Err(); err != nil {
			body["status"], body["redis"] = "unhealthy", err.Error()
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	})
	return mux
}

// logSandbox says which protections the agents run under: a warning when
// the sandbox is off or some protection is missing.
func (a *App) logSandbox(ctx context.Context) {
	if a.sandbox == nil {
		return
	}
	rep, err := a.sandbox.Probe(ctx)
	switch {
	case err != nil:
		a.log.Error("agent sandbox unusable", "err", err)
	case rep.Mode == sandbox.ModeOff:
		a.log.Warn("agent sandbox is off (WORKER_SANDBOX=off): agents run with the worker's environment, files and network")
	case len(rep.Missing) > 0:
		a.log.Warn("agent sandbox: some protections are not available on this machine", "sandbox", rep.String())
	default:
		a.log.Info("agent sandbox", "sandbox", rep.String())
	}
}
