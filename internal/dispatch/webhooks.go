package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/webhook"
)

// Webhook notifications are durable: the change that gives a task with a
// webhook its final status also makes its delivery due (task.Change.Notify,
// in the same conditional update: the database is the outbox). The
// WebhookRelay adds one job per due delivery to the webhooks queue
// (taskqueue.Names.Webhooks), under an id made of the task id, the run and
// the final status, so that adding it twice adds one job, and marks the
// delivery queued. The WebhookDeliverer, a BullMQ worker inside the
// orchestrator, posts each job with the Standard Webhooks signature; BullMQ
// retries failed attempts (errors, timeouts, non-2xx answers) with
// exponential backoff up to the job's attempts, and a delivery job survives
// an orchestrator restart in Redis. Every attempt's outcome is recorded on
// the task (task.WebhookDelivery).
//
// Delivery is at least once: an orchestrator killed after the target
// answered but before the job was marked completed posts again after the
// restart. Every attempt of one notification carries the same webhook-id,
// which receivers use to drop duplicates, as the Standard Webhooks spec
// asks of them.

// WebhookJobName is the name of every webhook delivery job.
const WebhookJobName = "deliver-webhook"

// Sender posts one signed webhook message (webhook.Sender implements it).
type Sender interface {
	// Send posts body to url as message id and returns the HTTP status (0
	// when none came back); an error for anything but 2xx. Errors of
	// targets the address policy refuses wrap webhook.ErrRefused.
	Send(ctx context.Context, url, id string, body []byte) (int, error)
}

// WebhookOptions configures the webhook relay and deliverer. Webhooks run
// only when Sender is set.
type WebhookOptions struct {
	// Sender posts the notifications. Defaults to none: no webhook loop
	// runs (WEBHOOK_SECRET unset), and due deliveries wait in the database.
	Sender Sender
	// URL is the global target (WEBHOOK_URL) of tasks without a callback
	// URL. Defaults to none: such a task's delivery fails with
	// NoTargetReason.
	URL string
	// Attempts is how many times a notification is tried. Defaults to 10.
	Attempts int
	// Backoff is the first delay of the exponential backoff between
	// attempts (then 2×, 4×, …). Defaults to 2s.
	Backoff time.Duration
	// Concurrency is how many notifications are posted at once. Defaults
	// to 8.
	Concurrency int
	// RelayInterval is the time between sweeps of due deliveries.
	// Defaults to 1s.
	RelayInterval time.Duration
	// Batch is the most due deliveries queued per sweep. Defaults to 100.
	Batch int
	// ShutdownTimeout bounds how long the deliverer waits, once its
	// context ends, for the posts in flight. Defaults to 5s.
	ShutdownTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// NoTargetReason is the error of a delivery whose task has no callback URL
// while no WEBHOOK_URL is configured (any more).
const NoTargetReason = "no webhook target: the task has no callbackUrl and WEBHOOK_URL is not set"

func (o *WebhookOptions) fill() error {
	if o.Attempts < 0 || o.Backoff < 0 || o.Concurrency < 0 || o.RelayInterval < 0 || o.Batch < 0 || o.ShutdownTimeout < 0 {
		return errors.New("webhook options must not be negative")
	}
	if o.Attempts == 0 {
		o.Attempts = 10
	}
	if o.Backoff == 0 {
		o.Backoff = 2 * time.Second
	}
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	if o.RelayInterval == 0 {
		o.RelayInterval = time.Second
	}
	if o.Batch == 0 {
		o.Batch = 100
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// webhookJob is the data of a delivery job.
type webhookJob struct {
	TaskID string          `json:"taskId"`
	Run    int             `json:"run"`
	URL    string          `json:"url"`
	Body   json.RawMessage `json:"body"`
}

// WebhookJobID is the id of the delivery job (and the webhook-id) of the
// notification of run run of a task that reached status.
func WebhookJobID(id uuid.UUID, run int, status task.Status) string {
	return id.String() + "-webhook-" + strconv.Itoa(run) + "-" + string(status)
}

// WebhookRelay queues the due webhook deliveries: each sweep lists the
// tasks whose delivery is due, adds a delivery job for each (idempotent:
// the job id names the task, run and status) and marks it queued. Several
// replicas may relay at once. A delivery whose task has no target fails
// at once with NoTargetReason.
type WebhookRelay struct {
	queue *bullmq.Queue
	svc   *task.Service
	o     WebhookOptions
	opts  bullmq.JobOptions
	log   *slog.Logger
}

// NewWebhookRelay returns a relay adding delivery jobs to queue (the
// webhooks queue).
func NewWebhookRelay(queue *bullmq.Queue, svc *task.Service, o WebhookOptions) (*WebhookRelay, error) {
	if queue == nil || svc == nil {
		return nil, errors.New("new webhook relay: nil queue or service")
	}
	if err := o.fill(); err != nil {
		return nil, fmt.Errorf("new webhook relay: %w", err)
	}
	return &WebhookRelay{queue: queue, svc: svc, o: o, log: o.Logger.With("loop", "webhook-relay"),
		opts: bullmq.JobOptions{
			Attempts: o.Attempts,
			Backoff:  &bullmq.Backoff{Type: "exponential", Delay: o.Backoff},
			// Completed jobs are kept a day, so that a relay that added a
			// job but died before marking it queued adds nothing the
			// second time.
			RemoveOnComplete: bullmq.KeepFor(24*time.Hour, 100000),
			RemoveOnFail:     bullmq.KeepFor(7*24*time.Hour, 10000),
		}}, nil
}

// Run sweeps every RelayInterval until ctx is cancelled, then returns nil.
func (r *WebhookRelay) Run(ctx context.Context) error {
	b := newBackoff(r.o.RelayInterval, 10*time.Second)
	for {
		wait := r.o.RelayInterval
		n, err := r.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			wait = b.fail()
			r.log.WarnContext(ctx, "webhook relay sweep failed", "err", err, "retry_in", wait)
		default:
			b.reset()
			if n == r.o.Batch {
				wait = 0
			}
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// Sweep queues up to Batch due deliveries and returns how many it found.
// It stops at the first Redis or database error.
func (r *WebhookRelay) Sweep(ctx context.Context) (int, error) {
	due, err := r.svc.ListWebhooksDue(ctx, r.o.Batch)
	if err != nil {
		return 0, err
	}
	for _, t := range due {
		if err := r.relay(ctx, t); err != nil {
			return len(due), err
		}
	}
	return len(due), nil
}

// relay queues the delivery of one due task.
func (r *WebhookRelay) relay(ctx context.Context, t *task.Task) error {
	target := r.o.URL
	if t.CallbackURL != nil {
		target = *t.CallbackURL
	}
	if target == "" {
		_, err := r.svc.ApplyWebhook(ctx, task.MarkWebhookFailed(t.ID, t.Retries, 0, nil, NoTargetReason))
		if err != nil && !errors.Is(err, task.ErrConflict) && !errors.Is(err, task.ErrNotFound) {
			return fmt.Errorf("fail webhook of task %s: %w", t.ID, err)
		}
		r.log.WarnContext(ctx, "webhook has no target", "task_id", t.ID)
		return nil
	}
	body, err := json.Marshal(task.NotificationOf(t))
	if err != nil {
		return fmt.Errorf("webhook message of task %s: %w", t.ID, err)
	}
	opts := r.opts
	opts.JobID = WebhookJobID(t.ID, t.Retries, t.Status)
	data := webhookJob{TaskID: t.ID.String(), Run: t.Retries, URL: target, Body: body}
	if _, err := r.queue.Add(ctx, WebhookJobName, data, &opts); err != nil {
		return fmt.Errorf("add webhook job %s: %w", opts.JobID, err)
	}
	_, err = r.svc.ApplyWebhook(ctx, task.MarkWebhookQueued(t.ID, t.Retries))
	switch {
	case err == nil, errors.Is(err, task.ErrConflict), errors.Is(err, task.ErrNotFound):
		// Conflict: the deliverer already recorded an attempt, another
		// replica marked it, or a retry started a new run.
		r.log.DebugContext(ctx, "webhook queued", "task_id", t.ID, "job_id", opts.JobID)
		return nil
	}
	return fmt.Errorf("mark webhook of task %s queued: %w", t.ID, err)
}

// WebhookDeliverer posts the delivery jobs of the webhooks queue and
// records each attempt on its task: delivered on 2xx; on an error, a
// timeout or another status the attempt is recorded and the job fails, so
// that BullMQ tries again after its backoff, until its last attempt, which
// marks the delivery failed. A target the address policy refuses fails at
// once (unrecoverable).
type WebhookDeliverer struct {
	client redis.UniversalClient
	svc    *task.Service
	names  taskqueue.Names
	o      WebhookOptions
	log    *slog.Logger
}

// NewWebhookDeliverer returns a deliverer of the webhooks queue of names.
func NewWebhookDeliverer(client redis.UniversalClient, svc *task.Service, names taskqueue.Names, o WebhookOptions) (*WebhookDeliverer, error) {
	if client == nil || svc == nil || o.Sender == nil {
		return nil, errors.New("new webhook deliverer: nil client, service or sender")
	}
	if err := o.fill(); err != nil {
		return nil, fmt.Errorf("new webhook deliverer: %w", err)
	}
	return &WebhookDeliverer{client: client, svc: svc, names: names.WithDefaults(), o: o,
		log: o.Logger.With("loop", "webhooks")}, nil
}

// Run delivers until ctx is cancelled, then lets the posts in flight
// finish (up to ShutdownTimeout) and returns nil. A post cut short is
// left active in Redis; its lock expires and it is posted again.
func (d *WebhookDeliverer) Run(ctx context.Context) error {
	w, err := bullmq.NewWorker(d.client, d.names.Webhooks(), d.Process, &bullmq.WorkerOptions{
		Prefix: d.names.Prefix, Name: "orchestrator-webhooks", Concurrency: d.o.Concurrency,
		// A delivery cut by an orchestrator crash is posted again, not
		// failed for stalling.
		MaxStalledCount: 1000, Logger: d.o.Logger,
	})
	if err != nil {
		return fmt.Errorf("webhook deliverer: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- w.Run(runCtx) }()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("webhook deliverer: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), d.o.ShutdownTimeout)
	defer ccancel()
	if err := w.Close(cctx); err != nil {
		d.log.Warn("webhook worker did not stop cleanly", "err", err)
	}
	cancel()
	<-errc
	return nil
}

// Process posts one delivery job (the bullmq Processor of the deliverer).
func (d *WebhookDeliverer) Process(ctx context.Context, job *bullmq.Job) (any, error) {
	var j webhookJob
	if err := json.Unmarshal(job.Data, &j); err != nil || j.URL == "" || len(j.Body) == 0 {
		return nil, bullmq.Unrecoverable(fmt.Errorf("malformed webhook job %s", job.ID))
	}
	id, err := uuid.Parse(j.TaskID)
	if err != nil {
		return nil, bullmq.Unrecoverable(fmt.Errorf("malformed webhook job %s: task id %q", job.ID, j.TaskID))
	}
	attempt := job.AttemptsMade + 1
	last := attempt >= max(job.Opts.Attempts, 1)
	log := d.log.With("task_id", id, "job_id", job.ID, "attempt", attempt)
	status, sendErr := d.o.Sender.Send(ctx, j.URL, job.ID, j.Body)
	var st *int
	if status != 0 {
		st = &status
	}
	switch {
	case sendErr == nil:
		d.record(ctx, log, task.MarkWebhookDelivered(id, j.Run, attempt, status, d.o.Now()))
		log.InfoContext(ctx, "webhook delivered", "status", status)
		return map[string]int{"status": status}, nil
	case errors.Is(sendErr, webhook.ErrRefused):
		d.record(ctx, log, task.MarkWebhookFailed(id, j.Run, attempt, st, sendErr.Error()))
		log.WarnContext(ctx, "webhook target refused", "err", sendErr)
		return nil, bullmq.Unrecoverable(sendErr)
	case last:
		d.record(ctx, log, task.MarkWebhookFailed(id, j.Run, attempt, st, sendErr.Error()))
		log.WarnContext(ctx, "webhook delivery failed for good", "err", sendErr)
	default:
		d.record(ctx, log, task.RecordWebhookFailure(id, j.Run, attempt, st, sendErr.Error()))
		log.InfoContext(ctx, "webhook attempt failed; will retry", "err", sendErr)
	}
	return nil, sendErr
}

// record stores an attempt's outcome on the task, retrying a failing
// database for a few seconds; a conflict (another run, or recorded
// already) is not an error. A delivery is never posted again because its
// record failed.
func (d *WebhookDeliverer) record(ctx context.Context, log *slog.Logger, c task.WebhookChange) {
	ctx = context.WithoutCancel(ctx)
	b := newBackoff(100*time.Millisecond, 2*time.Second)
	deadline := d.o.Now().Add(10 * time.Second)
	for {
		_, err := d.svc.ApplyWebhook(ctx, c)
		if err == nil || errors.Is(err, task.ErrConflict) || errors.Is(err, task.ErrNotFound) {
			return
		}
		wait := b.fail()
		if d.o.Now().Add(wait).After(deadline) {
			log.ErrorContext(ctx, "cannot record the webhook attempt", "state", c.To, "err", err)
			return
		}
		sleep(ctx, wait)
	}
}
