package dispatch

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/task"
)

// StateCollector is a Prometheus collector that reads, on each scrape
// (each read bounded by a timeout): tasks by status from the database,
// job counts by state of the queues, and whether Redis and the database
// answer. It is safe for concurrent use.
type StateCollector struct {
	svc     *task.Service
	queues  []*bullmq.Queue
	redis   *RedisChecker
	timeout time.Duration

	tasks, jobs, redisUp, dbUp *prometheus.Desc
}

var _ prometheus.Collector = (*StateCollector)(nil)

// NewStateCollector returns a collector over the tasks of svc, queues and
// the Redis checker; timeout bounds each scrape's reads (defaults to 2s
// when 0). Register it with reg.MustRegister or reg.Register.
func NewStateCollector(svc *task.Service, queues []*bullmq.Queue, redis *RedisChecker, timeout time.Duration) *StateCollector {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &StateCollector{svc: svc, queues: queues, redis: redis, timeout: timeout,
		tasks:   prometheus.NewDesc("orchestrator_tasks", "Tasks in the database by status.", []string{"status"}, nil),
		jobs:    prometheus.NewDesc("orchestrator_queue_jobs", "Jobs in Redis by queue and state.", []string{"queue", "state"}, nil),
		redisUp: prometheus.NewDesc("orchestrator_redis_up", "1 when Redis answers PING.", nil, nil),
		dbUp:    prometheus.NewDesc("orchestrator_database_up", "1 when the database answers.", nil, nil),
	}
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
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()

	dbUp := 0.0
	if st, err := c.svc.Stats(ctx); err == nil {
		dbUp = 1
		for _, v := range []struct {
			s task.Status
			n int64
		}{{task.StatusPending, st.Pending}, {task.StatusQueued, st.Queued}, {task.StatusRunning, st.Running},
			{task.StatusCompleted, st.Completed}, {task.StatusFailed, st.Failed}, {task.StatusCancelled, st.Cancelled}} {
			ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(v.n), string(v.s))
		}
	}
	ch <- prometheus.MustNewConstMetric(c.dbUp, prometheus.GaugeValue, dbUp)

	redisUp := 0.0
	if c.redis != nil && c.redis.CheckRedis(ctx).Connected {
		redisUp = 1
		for _, q := range c.queues {
			counts, err := q.GetJobCounts(ctx, countedStates...)
			if err != nil {
				continue
			}
			for _, s := range countedStates {
				ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(counts[s]), q.Name(), string(s))
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.redisUp, prometheus.GaugeValue, redisUp)
}
