package workerapp

import "github.com/prometheus/client_golang/prometheus"

// taskOutcome is how a task run ended, the "outcome" label of the metrics.
type taskOutcome string

// Task outcomes.
const (
	outcomeCompleted taskOutcome = "completed" // succeeded; completed result posted
	outcomeFailed    taskOutcome = "failed"    // final failure; failed result posted
	outcomeRetried   taskOutcome = "retried"   // attempt failed; BullMQ retries it
	outcomeCancelled taskOutcome = "cancelled" // cancelled on request; failed result posted
	outcomeAbandoned taskOutcome = "abandoned" // lock lost or shutdown: left to BullMQ's stalled recovery
)

// metrics are the worker's Prometheus collectors.
type metrics struct {
	tasks     *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inFlight  prometheus.Gauge
	truncated prometheus.Counter
	results   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "worker_tasks_total",
			Help: "Task runs by outcome: completed, failed (final), retried, cancelled, abandoned.",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "worker_task_duration_seconds",
			Help:    "Duration of task runs by outcome.",
			Buckets: []float64{0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "worker_tasks_in_flight",
			Help: "Tasks running now.",
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "worker_task_output_truncated_total",
			Help: "Task runs whose output was cut at WORKER_MAX_OUTPUT.",
		}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "worker_results_posted_total",
			Help: "Result jobs posted to the results queue, by status.",
		}, []string{"status"}),
	}
	for _, c := range []prometheus.Collector{m.tasks, m.duration, m.inFlight, m.truncated, m.results} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, o := range []taskOutcome{outcomeCompleted, outcomeFailed, outcomeRetried, outcomeCancelled, outcomeAbandoned} {
		m.tasks.WithLabelValues(string(o))
	}
	return m, nil
}
