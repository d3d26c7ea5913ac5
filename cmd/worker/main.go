// Command worker runs AI coding tasks from the orchestrator's BullMQ queue:
// it takes task jobs from QUEUE_NAME, runs each with the executor chosen by
// WORKER_EXECUTOR (the Claude Code CLI, the Anthropic API, or any command),
// and posts the outcome to "<QUEUE_NAME>-results" (the contract of package
// taskqueue).
//
// Configuration is read from the environment; see internal/config.Worker
// for every variable. A wrong variable stops the worker at start with a
// message naming it. SIGTERM or SIGINT shut it down gracefully: it stops
// taking jobs and lets running tasks finish for up to
// WORKER_SHUTDOWN_TIMEOUT; a second signal skips the wait.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/caarlos0/env/v11"

	"github.com/agentorch/orchestrator/internal/config"
	"github.com/agentorch/orchestrator/internal/redisconn"
	"github.com/agentorch/orchestrator/internal/workerapp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.LoadWorker(env.ToMap(os.Environ()))
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log := cfg.NewLogger(os.Stderr)
	redisconn.RouteInternalLogs(log)

	exec, err := newExecutor(cfg)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	client, err := redisconn.New(cfg.Redis())
	if err != nil {
		return fmt.Errorf("configuration: redis: %w", err)
	}
	defer client.Close()

	app, err := workerapp.New(workerapp.Options{
		Config: &workerapp.Config{
			Names: cfg.Names(), WorkerID: cfg.WorkerID, Executor: cfg.Executor, Concurrency: cfg.Concurrency,
			DefaultTimeout: cfg.DefaultTimeout, ShutdownTimeout: cfg.ShutdownTimeout,
			LockDuration: cfg.LockDuration, StalledInterval: cfg.StalledInterval, MaxStalled: cfg.MaxStalled,
			HTTPAddr: cfg.HTTPAddr,
		},
		Client: client, Executor: exec, Logger: log,
	})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-sigs
		log.Info("signal received: shutting down", "signal", sig.String())
		cancel()
		sig = <-sigs
		log.Warn("second signal: exiting now; running jobs stay active for recovery", "signal", sig.String())
		os.Exit(1)
	}()
	return app.Run(ctx)
}
