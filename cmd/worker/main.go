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
//
// The claude and command executors run their agents in a sandbox
// (WORKER_SANDBOX, WORKER_AGENT_*; see internal/sandbox): the binary
// re-executes itself as "worker sandbox-exec …" to start each one.
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
	"github.com/agentorch/orchestrator/internal/sandbox"
	"github.com/agentorch/orchestrator/internal/workerapp"
)

func main() {
	// The agent sandbox's launcher is this binary re-executed: it must
	// run before anything else, reading no configuration.
	if sandbox.IsLauncher(os.Args) {
		sandbox.RunLauncher()
	}
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

	var sb *sandbox.Sandbox
	if cfg.UsesSandbox() {
		if sb, err = sandbox.New(cfg.SandboxOptions(cfg.KillGrace)); err != nil {
			return fmt.Errorf("configuration: WORKER_SANDBOX: %w", err)
		}
		// WORKER_SANDBOX=strict refuses to start without every protection.
		if _, err := sb.Probe(context.Background()); err != nil {
			return err
		}
	}
	exec, err := newExecutor(cfg, sb)
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
		Client: client, Executor: exec, Logger: log, Sandbox: sb,
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
