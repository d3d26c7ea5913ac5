// Package dispatch is the bridge between the task domain and the BullMQ
// queues: it enqueues tasks (Enqueuer), queues the tasks that could not be
// queued at once (Relay), follows the task queue's events stream to move
// tasks to running, queued or failed (EventsListener), repairs what the
// stream cannot tell (Reconciler), applies the results that workers post
// on the results queue (ResultConsumer), keeps Redis small (Cleaner),
// delivers the signed webhook notifications of finished tasks through the
// webhooks queue (WebhookRelay, WebhookDeliverer), purges expired
// idempotency keys (KeyPurger), prepares retried tasks' jobs
// (Enqueuer.PrepareRetry), and reports queue statistics, Redis health and
// Prometheus metrics. The
// Dispatcher owns all of it: cmd/orchestrator builds one, gives its
// Enqueuer to the task service, and runs it (Run starts, supervises and
// stops the loops).
//
// The database is the source of truth. The loops read and change tasks
// only through the task.Service; every change is a conditional update
// (task.Change), so every loop here is idempotent and
// may run in several orchestrator replicas at once: a change that another
// replica (or an earlier run) already applied is refused with
// task.ErrConflict, which the loops count and ignore.
//
// Every loop has the same shape: a constructor that does no I/O, Run(ctx)
// that works until ctx is cancelled and then returns nil, logs through an
// injected *slog.Logger, and backs off when Redis or the database fail.
//
// Nothing that comes through Redis is believed before it is checked
// against the job it names (verifyResult, the events listener's rules, the
// worker's cancel check), and no item stops or stalls a loop: errors are
// permanent (dead-lettered, counted in orchestrator_dead_letters_total) or
// temporary (retried while a dependency is down); see deadletter.go and
// docs/trust.md.
package dispatch
