package dispatch

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentorch/orchestrator/bullmq"
)

// Metrics are the counters and gauges the dispatch loops update. Build
// them with NewMetrics; a nil *Metrics is valid and records nothing, so
// tests may omit it. Its methods are safe for concurrent use.
type Metrics struct {
	tasksCreated     prometheus.Counter
	enqueued         *prometheus.CounterVec
	results          *prometheus.CounterVec
	events           *prometheus.CounterVec
	relayBacklog     prometheus.Gauge
	reconciled       *prometheus.CounterVec
	cleaned          *prometheus.CounterVec
	eventsCheckpoint prometheus.Gauge
	deadLetters      *prometheus.CounterVec
}

// NewMetrics creates the dispatch metrics and registers them on reg (not
// on the global registry). It returns an error when a name is already
// registered.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		tasksCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orchestrator_tasks_created_total",
			Help: "Tasks accepted and stored.",
		}),
		enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestrator_tasks_enqueued_total",
			Help: "Job adds for tasks, by outcome (ok, error, skipped: failed fast while Redis is down).",
		}, []string{"outcome"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestrator_results_processed_total",
			Help: "Result jobs processed, by outcome (completed, failed, late, duplicate, rejected, unverified, unstorable, retry).",
		}, []string{"outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestrator_events_applied_total",
			Help: "Task queue events handled, by event type and outcome (applied, stale, gone, ignored, rejected, error).",
		}, []string{"type", "outcome"}),
		relayBacklog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orchestrator_relay_backlog",
			Help: "Pending tasks the relay found in its last sweep (capped by its batch size).",
		}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestrator_reconciler_repairs_total",
			Help: "Tasks the reconciler brought in line with Redis, by action.",
		}, []string{"action"}),
		cleaned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestrator_queue_cleaned_jobs_total",
			Help: "Jobs removed by the periodic clean, by queue and state.",
		}, []string{"queue", "state"}),
		eventsCheckpoint: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "orchestrator_events_checkpoint_timestamp_seconds",
			Help: "Time encoded in the last events stream id the listener applied.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchestrator_dead_letters_total",
			Help: "Items a loop set aside instead of applying or retrying them, by loop (relay, events, reconciler, " +
				"results) and reason (malformed, unknown_task, unverified, invalid_data, persistent_error).",
		}, []string{"loop", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.tasksCreated, m.enqueued, m.results, m.events,
		m.relayBacklog, m.reconciled, m.cleaned, m.eventsCheckpoint, m.deadLetters} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// TaskCreated counts one accepted task.
func (m *Metrics) TaskCreated() {
	if m != nil {
		m.tasksCreated.Inc()
	}
}

func (m *Metrics) enqueue(outcome Outcome) {
	if m != nil {
		m.enqueued.WithLabelValues(string(outcome)).Inc()
	}
}

func (m *Metrics) result(outcome Outcome) {
	if m != nil {
		m.results.WithLabelValues(string(outcome)).Inc()
	}
}

func (m *Metrics) event(typ bullmq.EventType, outcome Outcome) {
	if m != nil {
		m.events.WithLabelValues(string(typ), string(outcome)).Inc()
	}
}

func (m *Metrics) backlog(n int) {
	if m != nil {
		m.relayBacklog.Set(float64(n))
	}
}

func (m *Metrics) repair(action Outcome) {
	if m != nil {
		m.reconciled.WithLabelValues(string(action)).Inc()
	}
}

func (m *Metrics) clean(queue string, state bullmq.JobState, n int) {
	if m != nil {
		m.cleaned.WithLabelValues(queue, string(state)).Add(float64(n))
	}
}

func (m *Metrics) deadLetter(loop Loop, reason Outcome) {
	if m != nil {
		m.deadLetters.WithLabelValues(string(loop), string(reason)).Inc()
	}
}

func (m *Metrics) checkpoint(unixSeconds float64) {
	if m != nil {
		m.eventsCheckpoint.Set(unixSeconds)
	}
}
