package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/config"
	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/httpapi"
	"github.com/agentorch/orchestrator/internal/redisconn"
	"github.com/agentorch/orchestrator/internal/task"
)

// queueSide is the Redis half of the orchestrator: the client, the two
// queues, the enqueuer given to the task service, and the background loops
// (relay, events listener, reconciler, result consumer, cleaner).
type queueSide struct {
	client   redis.UniversalClient
	tasks    *bullmq.Queue
	results  *bullmq.Queue
	names    dispatch.Queues
	enqueuer *dispatch.Enqueuer
	stats    *dispatch.QueueStats
	checker  *dispatch.RedisChecker
	metrics  *dispatch.Metrics
	log      *slog.Logger
	cfg      config.Config
}

// newQueueSide builds the Redis side. It does no I/O: the orchestrator
// starts and serves while Redis is down.
func newQueueSide(cfg config.Config, reg *prometheus.Registry, logger *slog.Logger) (*queueSide, error) {
	// go-redis logs every refused dial on its own; our loops already warn
	// (with backoff) when Redis is down, so its lines go to debug.
	redis.SetLogger(redisLogger{logger.With("component", "go-redis")})
	client, err := redisconn.New(redisconn.Config{URL: cfg.RedisURL, Host: cfg.RedisHost, Port: cfg.RedisPort,
		Password: cfg.RedisPassword, DB: cfg.RedisDB})
	if err != nil {
		return nil, fmt.Errorf("redis client: %w", err)
	}
	q := &queueSide{client: client, names: dispatch.Queues{Prefix: cfg.QueuePrefix, Tasks: cfg.QueueName},
		log: logger, cfg: cfg}
	qopts := &bullmq.QueueOptions{Prefix: cfg.QueuePrefix, Logger: logger}
	if q.tasks, err = bullmq.NewQueue(client, cfg.QueueName, qopts); err != nil {
		return nil, fmt.Errorf("task queue: %w", err)
	}
	if q.results, err = bullmq.NewQueue(client, q.names.Results(), qopts); err != nil {
		return nil, fmt.Errorf("results queue: %w", err)
	}
	if q.metrics, err = dispatch.NewMetrics(reg); err != nil {
		return nil, fmt.Errorf("dispatch metrics: %w", err)
	}
	q.enqueuer, err = dispatch.NewEnqueuer(q.tasks, client, q.names.CancelChannel(), dispatch.EnqueuerOptions{
		Attempts:         cfg.TaskAttempts,
		Backoff:          backoffOf(cfg.TaskBackoffMs),
		KeepCompletedAge: cfg.QueueCleanCompletedAge,
		KeepFailedAge:    cfg.QueueCleanFailedAge,
		Metrics:          q.metrics,
	})
	if err != nil {
		return nil, err
	}
	q.stats = dispatch.NewQueueStats(q.tasks)
	q.checker = dispatch.NewRedisChecker(client, 2*time.Second)
	return q, nil
}

// redisLogger sends go-redis' internal log lines to slog at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...))
}

// backoffOf turns TASK_BACKOFF_MS into the enqueuer's Backoff (0: none).
func backoffOf(ms int64) time.Duration {
	if ms == 0 {
		return -1
	}
	return time.Duration(ms) * time.Millisecond
}

// collector returns the scrape-time collector of task, job, Redis and
// database state.
func (q *queueSide) collector(store task.Store) prometheus.Collector {
	return dispatch.NewStateCollector(store, []*bullmq.Queue{q.tasks, q.results}, q.checker, 2*time.Second)
}

// queueStats adapts the queue counts to the API's QueueStatser.
func (q *queueSide) queueStats() httpapi.QueueStatser {
	return httpapi.QueueStatsFunc(func(ctx context.Context) (httpapi.QueueCounts, error) {
		c, err := q.stats.QueueCounts(ctx)
		if err != nil {
			return httpapi.QueueCounts{}, err
		}
		return httpapi.QueueCounts{Waiting: c.Waiting, Active: c.Active, Delayed: c.Delayed,
			Completed: c.Completed, Failed: c.Failed, Prioritized: c.Prioritized, Paused: c.Paused}, nil
	})
}

// redisChecker is the Redis part of /health.
func (q *queueSide) redisChecker() httpapi.RedisChecker {
	return httpapi.RedisCheckerFunc(func(ctx context.Context) httpapi.RedisHealth {
		h := q.checker.CheckRedis(ctx)
		return httpapi.RedisHealth{Connected: h.Connected, LatencyMs: h.LatencyMs,
			MaxmemoryPolicy: h.MaxmemoryPolicy, Warning: h.Warning}
	})
}

// loop is a background loop of the orchestrator.
type loop interface {
	Run(ctx context.Context) error
}

// start builds the loops on svc and runs them until ctx is cancelled; the
// returned function waits for all of them to stop.
func (q *queueSide) start(ctx context.Context, svc *task.Service) (wait func(), err error) {
	store := svc.Store()
	relay, err := dispatch.NewRelay(svc, dispatch.RelayOptions{Interval: q.cfg.RelayInterval,
		Logger: q.log, Metrics: q.metrics, Canceller: q.enqueuer})
	if err != nil {
		return nil, err
	}
	events, err := dispatch.NewEventsListener(q.client, q.tasks, store, q.names,
		dispatch.EventsOptions{Logger: q.log, Metrics: q.metrics})
	if err != nil {
		return nil, err
	}
	reconciler, err := dispatch.NewReconciler(q.tasks, q.results, store, dispatch.ReconcilerOptions{
		Interval: q.cfg.ReconcileInterval, MinAge: q.cfg.ReconcileMinAge, ResultGrace: q.cfg.ResultGrace,
		Enqueuer: q.enqueuer, Logger: q.log, Metrics: q.metrics})
	if err != nil {
		return nil, err
	}
	results, err := dispatch.NewResultConsumer(q.client, store, q.names, dispatch.ResultsOptions{
		Concurrency: q.cfg.ResultConcurrency, Logger: q.log, Metrics: q.metrics})
	if err != nil {
		return nil, err
	}
	cleaner, err := dispatch.NewCleaner([]*bullmq.Queue{q.tasks, q.results}, dispatch.CleanerOptions{
		CompletedAge: q.cfg.QueueCleanCompletedAge, FailedAge: q.cfg.QueueCleanFailedAge,
		Logger: q.log, Metrics: q.metrics})
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	for name, l := range map[string]loop{"relay": relay, "events": events, "reconciler": reconciler,
		"results": results, "cleaner": cleaner} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			supervise(ctx, name, l, q.log)
		}()
	}
	return wg.Wait, nil
}

// close releases the Redis client.
func (q *queueSide) close() error {
	_ = q.tasks.Close()
	_ = q.results.Close()
	return q.client.Close()
}

// supervise runs l until ctx is cancelled, restarting it (after a pause)
// when it stops with an error.
func supervise(ctx context.Context, name string, l loop, log *slog.Logger) {
	for {
		err := l.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		log.Error("background loop stopped; restarting", "loop", name, "err", err, "restart_in", loopRestartDelay)
		t := time.NewTimer(loopRestartDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// loopRestartDelay is the pause before a failed loop is restarted.
const loopRestartDelay = 5 * time.Second

// countCreates wraps store so that each created task is counted in the
// tasks-created metric.
func (q *queueSide) countCreates(store task.Store) task.Store {
	return creationCounter{Store: store, m: q.metrics}
}

// creationCounter is a task.Store that counts successful creates.
type creationCounter struct {
	task.Store
	m *dispatch.Metrics
}

func (c creationCounter) Create(ctx context.Context, t *task.Task) error {
	if err := c.Store.Create(ctx, t); err != nil {
		return err
	}
	c.m.TaskCreated()
	return nil
}
