package dispatch

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/task"
)

// DefaultStateCacheTTL is how long a StateCollector serves the figures it
// read, unless told otherwise.
const DefaultStateCacheTTL = 5 * time.Second

// StateCollectorOptions configures a StateCollector. The zero value is
// valid.
type StateCollectorOptions struct {
	// Timeout bounds the reads of one refresh. Defaults to 2s.
	Timeout time.Duration
	// CacheTTL is how long the figures of one refresh are served: scrapes
	// within it read neither the database nor Redis, so a fast scraper
	// costs one task count (a full COUNT over the tasks) per CacheTTL at
	// most. Defaults to DefaultStateCacheTTL.
	CacheTTL time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// StateCollector is a Prometheus collector of tasks by status (from the
// database), job counts by state of the queues, and whether Redis and the
// database answer. It reads them at most once per CacheTTL, on a scrape
// (each read bounded by Timeout), and serves those figures to the scrapes
// that follow within CacheTTL; scrapes that arrive while a refresh runs
// wait for it. A failed read is cached too (the database or Redis is then
// reported down), so that scraping never adds load to a struggling
// dependency. It is safe for concurrent use.
type StateCollector struct {
	svc    *task.Service
	queues []*bullmq.Queue
	redis  *RedisChecker
	o      StateCollectorOptions

	tasks, jobs, redisUp, dbUp *prometheus.Desc

	mu   sync.Mutex
	snap *stateSnapshot // nil before the first scrape
}

// stateSnapshot is what one refresh read.
type stateSnapshot struct {
	at      time.Time
	dbUp    bool
	stats   task.Stats
	redisUp bool
	jobs    []queueJobs
}

// queueJobs are the job counts of one queue by state.
type queueJobs struct {
	queue  string
	counts map[bullmq.JobState]int64
}

var _ prometheus.Collector = (*StateCollector)(nil)

// NewStateCollector returns a collector over the tasks of svc, queues and
// the Redis checker (nil: no Redis figures). It does no I/O. It fails when
// an option is negative. Register it with reg.Register.
func NewStateCollector(svc *task.Service, queues []*bullmq.Queue, redis *RedisChecker, o StateCollectorOptions) (*StateCollector, error) {
	if svc == nil {
		return nil, errors.New("new state collector: nil task service")
	}
	if o.Timeout < 0 || o.CacheTTL < 0 {
		return nil, errors.New("new state collector: timeout and cache TTL must not be negative")
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultStateCacheTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &StateCollector{svc: svc, queues: queues, redis: redis, o: o,
		tasks:   prometheus.NewDesc("orchestrator_tasks", "Tasks in the database by status (read at most once per cache interval).", []string{"status"}, nil),
		jobs:    prometheus.NewDesc("orchestrator_queue_jobs", "Jobs in Redis by queue and state (read at most once per cache interval).", []string{"queue", "state"}, nil),
		redisUp: prometheus.NewDesc("orchestrator_redis_up", "1 when Redis answered PING at the last read.", nil, nil),
		dbUp:    prometheus.NewDesc("orchestrator_database_up", "1 when the database answered at the last read.", nil, nil),
	}, nil
}

// Describe implements prometheus.Collector.
func (c *StateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tasks
	ch <- c.jobs
	ch <- c.redisUp
	ch <- c.dbUp
}

// Collect implements prometheus.Collector.
func (c *StateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	if s.dbUp {
		for _, v := range []struct {
			s task.Status
			n int64
		}{{task.StatusPending, s.stats.Pending}, {task.StatusQueued, s.stats.Queued}, {task.StatusRunning, s.stats.Running},
			{task.StatusCompleted, s.stats.Completed}, {task.StatusFailed, s.stats.Failed}, {task.StatusCancelled, s.stats.Cancelled}} {
			ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(v.n), string(v.s))
		}
	}
	ch <- prometheus.MustNewConstMetric(c.dbUp, prometheus.GaugeValue, gauge(s.dbUp))
	for _, q := range s.jobs {
		for _, st := range countedStates {
			ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(q.counts[st]), q.queue, string(st))
		}
	}
	ch <- prometheus.MustNewConstMetric(c.redisUp, prometheus.GaugeValue, gauge(s.redisUp))
}

// snapshot returns the cached figures, read again when older than CacheTTL.
func (c *StateCollector) snapshot() *stateSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.o.Now()
	if c.snap != nil && now.Sub(c.snap.at) < c.o.CacheTTL {
		return c.snap
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.o.Timeout)
	defer cancel()
	s := &stateSnapshot{at: now}
	if st, err := c.svc.Stats(ctx); err == nil {
		s.dbUp, s.stats = true, st
	}
	if c.redis != nil && c.redis.CheckRedis(ctx).Connected {
		s.redisUp = true
		for _, q := range c.queues {
			counts, err := q.GetJobCounts(ctx, countedStates...)
			if err != nil {
				continue
			}
			s.jobs = append(s.jobs, queueJobs{queue: q.Name(), counts: counts})
		}
	}
	c.snap = s
	return s
}

func gauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
