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
	cancels   *prometheus.CounterVec
	missing   prometheus.Counter
	squatted  prometheus.Counter
}

// cancelOutcome is what the worker did with a cancel message, the
// "outcome" label of worker_cancel_requests_total.
type cancelOutcome string

// Cancel outcomes.
const (
	cancelApplied    cancelOutcome = "applied"     // requested by the orchestrator; a run here was stopped
	cancelRemembered cancelOutcome = "remembered"  // requested by the orchestrator; no run here yet, kept for a minute
	cancelRejected   cancelOutcome = "rejected"    // not in the cancel requests set: not made by the orchestrator
	cancelUnchecked  cancelOutcome = "check_error" // the set could not be read; ignored
)

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
		cancels: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "worker_cancel_requests_total",
			Help: "Cancel messages received, by outcome: applied, remembered, rejected (not requested by the orchestrator), check_error.",
		}, []string{"outcome"}),
		missing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "worker_jobs_missing_total",
			Help: "Job ids found in the task queue without their job hash, taken off the queue and not run.",
		}),
		squatted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "worker_results_rerouted_total",
			Help: "Results posted under another id because the agreed result job id held a job that was not this worker's.",
		}),
	}
	for _, c := range []prometheus.Collector{m.tasks, m.duration, m.inFlight, m.truncated, m.results, m.cancels, m.missing, m.squatted} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, o := range []taskOutcome{outcomeCompleted, outcomeFailed, outcomeRetried, outcomeCancelled, outcomeAbandoned} {
		m.tasks.WithLabelValues(string(o))
	}
	for _, o := range []cancelOutcome{cancelApplied, cancelRemembered, cancelRejected, cancelUnchecked} {
		m.cancels.WithLabelValues(string(o))
	}
	return m, nil
}
