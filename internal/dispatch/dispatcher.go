package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// Options configures a Dispatcher. The zero value is valid: every field
// defaults as documented on the loop it configures.
type Options struct {
	// Names are the queue and channel names. Defaults to taskqueue's.
	Names taskqueue.Names
	// Enqueue configures the job adds (attempts, backoff, retention).
	// Its Metrics is set by the Dispatcher.
	Enqueue EnqueuerOptions
	// Relay, Events, Reconciler, Results and Cleaner configure the loops.
	// Their Logger and Metrics are set by the Dispatcher; the Reconciler's
	// and Relay's Enqueuer/Canceller are the Dispatcher's Enqueuer.
	Relay      RelayOptions
	Events     EventsOptions
	Reconciler ReconcilerOptions
	Results    ResultsOptions
	Cleaner    CleanerOptions
	// Webhooks configures the webhook relay and deliverer; they run only
	// when Webhooks.Sender is set. Its Logger is set by the Dispatcher.
	Webhooks WebhookOptions
	// Keys configures the purge of expired idempotency keys. Its Logger is
	// set by the Dispatcher.
	Keys KeyPurgerOptions
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the dispatch metrics. Defaults to none: no
	// metrics are kept.
	Registerer prometheus.Registerer
	// RestartDelay is the pause before a loop that stopped with an error
	// is started again. Defaults to 5s.
	RestartDelay time.Duration
	// StateCacheTTL is how long the Collector serves the task and job
	// counts it read (see StateCollectorOptions.CacheTTL). Defaults to
	// DefaultStateCacheTTL.
	StateCacheTTL time.Duration
	// AllowEviction accepts a Redis whose maxmemory-policy is not
	// noeviction (REDIS_ALLOW_EVICTION). Defaults to false: no job is added
	// to such a Redis (see CheckEvictionPolicy).
	AllowEviction bool
}

// Dispatcher is the Redis side of the orchestrator: the task, results and
// webhooks queues, the Enqueuer the task service adds jobs with, and the
// background loops (relay, events listener, reconciler, result consumer,
// cleaner, webhook relay and deliverer, idempotency key purge), which Run
// starts, supervises and stops. It also answers the queue
// statistics and the Redis health check. Build it with New; it is safe for
// concurrent use.
type Dispatcher struct {
	client   redis.UniversalClient
	names    taskqueue.Names
	o        Options
	log      *slog.Logger
	tasks    *bullmq.Queue
	results  *bullmq.Queue
	webhooks *bullmq.Queue
	enqueuer *Enqueuer
	stats    *QueueStats
	checker  *RedisChecker
	metrics  *Metrics
	policy   *policyGate
}

// New returns a Dispatcher on client. It does no I/O, so the orchestrator
// starts and serves while Redis is down; it returns an error for invalid
// options or when the metrics cannot be registered.
func New(client redis.UniversalClient, o Options) (*Dispatcher, error) {
	if client == nil {
		return nil, errors.New("new dispatcher: nil redis client")
	}
	if err := o.Names.Validate(); err != nil {
		return nil, fmt.Errorf("new dispatcher: %w", err)
	}
	if o.RestartDelay < 0 {
		return nil, errors.New("new dispatcher: restart delay must not be negative")
	}
	if o.StateCacheTTL < 0 {
		return nil, errors.New("new dispatcher: state cache TTL must not be negative")
	}
	if o.RestartDelay == 0 {
		o.RestartDelay = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	d := &Dispatcher{client: client, names: o.Names.WithDefaults(), o: o, log: o.Logger}
	if o.Registerer != nil {
		m, err := NewMetrics(o.Registerer)
		if err != nil {
			return nil, fmt.Errorf("new dispatcher: metrics: %w", err)
		}
		d.metrics = m
	}
	var err error
	qopts := &bullmq.QueueOptions{Prefix: d.names.Prefix, Logger: o.Logger}
	if d.tasks, err = bullmq.NewQueue(client, d.names.Tasks(), qopts); err != nil {
		return nil, fmt.Errorf("new dispatcher: task queue: %w", err)
	}
	if d.results, err = bullmq.NewQueue(client, d.names.Results(), qopts); err != nil {
		return nil, fmt.Errorf("new dispatcher: results queue: %w", err)
	}
	if d.webhooks, err = bullmq.NewQueue(client, d.names.Webhooks(), qopts); err != nil {
		return nil, fmt.Errorf("new dispatcher: webhooks queue: %w", err)
	}
	if err := o.Webhooks.fill(); err != nil {
		return nil, fmt.Errorf("new dispatcher: %w", err)
	}
	d.policy = newPolicyGate(client, o.AllowEviction)
	eo := o.Enqueue
	eo.Metrics = d.metrics
	eo.Gate = d.policy.Allow
	if d.enqueuer, err = NewEnqueuer(d.tasks, client, d.names, eo); err != nil {
		return nil, fmt.Errorf("new dispatcher: %w", err)
	}
	d.stats = NewQueueStats(d.tasks)
	d.checker = NewRedisChecker(client, 2*time.Second)
	d.checker.policy = d.policy
	return d, nil
}

// CheckEvictionPolicy reads Redis' maxmemory-policy now. It returns an
// error wrapping ErrEvictionPolicy when the policy is not noeviction and
// AllowEviction is false (the orchestrator then refuses to start), the
// error of a Redis that does not answer (the orchestrator starts anyway and
// checks the policy before every add, see policyGate), or nil.
func (d *Dispatcher) CheckEvictionPolicy(ctx context.Context) error {
	return d.policy.Check(ctx)
}

// Enqueuer returns the Enqueuer to give the task service (it also cancels
// jobs: task.JobCanceller).
func (d *Dispatcher) Enqueuer() *Enqueuer { return d.enqueuer }

// Metrics returns the dispatch metrics (nil without a Registerer; a nil
// *Metrics records nothing).
func (d *Dispatcher) Metrics() *Metrics { return d.metrics }

// QueueCounts returns the job counts of the task queue by state.
func (d *Dispatcher) QueueCounts(ctx context.Context) (task.QueueCounts, error) {
	return d.stats.QueueCounts(ctx)
}

// CheckRedis pings Redis and reads its eviction policy (see RedisChecker).
func (d *Dispatcher) CheckRedis(ctx context.Context) task.QueueHealth {
	return d.checker.CheckRedis(ctx)
}

// Collector returns the Prometheus collector of task, job, Redis and
// database state, reading tasks through svc at most once per
// StateCacheTTL.
func (d *Dispatcher) Collector(svc *task.Service) (*StateCollector, error) {
	return NewStateCollector(svc, []*bullmq.Queue{d.tasks, d.results, d.webhooks}, d.checker,
		StateCollectorOptions{Timeout: 2 * time.Second, CacheTTL: d.o.StateCacheTTL})
}

// loop is a background loop: it works until ctx is cancelled.
type loop interface {
	Run(ctx context.Context) error
}

// namedLoop is a loop and its name in the logs.
type namedLoop struct {
	name string
	l    loop
}

// Run builds the background loops on svc (whose Enqueuer should be this
// Dispatcher's) and runs them until ctx is cancelled; a loop that stops
// with an error is logged and started again after RestartDelay. Run
// returns once every loop has stopped: nil after ctx ends, or an error
// when a loop cannot be built.
func (d *Dispatcher) Run(ctx context.Context, svc *task.Service) error {
	if svc == nil {
		return errors.New("dispatcher: nil task service")
	}
	o := d.o
	o.Relay.Logger, o.Relay.Metrics, o.Relay.Canceller = d.log, d.metrics, d.enqueuer
	o.Events.Logger, o.Events.Metrics = d.log, d.metrics
	o.Reconciler.Logger, o.Reconciler.Metrics, o.Reconciler.Enqueuer = d.log, d.metrics, d.enqueuer
	o.Results.Logger, o.Results.Metrics = d.log, d.metrics
	o.Cleaner.Logger, o.Cleaner.Metrics = d.log, d.metrics
	o.Webhooks.Logger, o.Keys.Logger = d.log, d.log

	relay, err := NewRelay(svc, o.Relay)
	if err != nil {
		return err
	}
	events, err := NewEventsListener(d.client, d.tasks, svc, d.names, o.Events)
	if err != nil {
		return err
	}
	reconciler, err := NewReconciler(d.tasks, d.results, svc, o.Reconciler)
	if err != nil {
		return err
	}
	results, err := NewResultConsumer(d.client, svc, d.names, o.Results)
	if err != nil {
		return err
	}
	cleaner, err := NewCleaner([]*bullmq.Queue{d.tasks, d.results}, o.Cleaner)
	if err != nil {
		return err
	}
	keys, err := NewKeyPurger(svc, o.Keys)
	if err != nil {
		return err
	}
	loops := []namedLoop{{"relay", relay}, {"events", events}, {"reconciler", reconciler}, {"results", results},
		{"cleaner", cleaner}, {"idempotency-keys", keys}}
	if o.Webhooks.Sender != nil {
		wrelay, err := NewWebhookRelay(d.webhooks, svc, o.Webhooks)
		if err != nil {
			return err
		}
		deliverer, err := NewWebhookDeliverer(d.client, svc, d.names, o.Webhooks)
		if err != nil {
			return err
		}
		loops = append(loops, namedLoop{"webhook-relay", wrelay}, namedLoop{"webhooks", deliverer})
	}
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.supervise(ctx, l.name, l.l)
		}()
	}
	wg.Wait()
	return nil
}

// supervise runs l until ctx is cancelled, restarting it (after
// RestartDelay) when it stops with an error.
func (d *Dispatcher) supervise(ctx context.Context, name string, l loop) {
	for {
		err := l.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		d.log.Error("background loop stopped; restarting", "loop", name, "err", err, "restart_in", d.o.RestartDelay)
		if !sleep(ctx, d.o.RestartDelay) {
			return
		}
	}
}

// Close releases the queues. It does not close the Redis client, which
// the caller owns. It is safe to call twice.
func (d *Dispatcher) Close() error {
	return errors.Join(d.tasks.Close(), d.results.Close(), d.webhooks.Close())
}
