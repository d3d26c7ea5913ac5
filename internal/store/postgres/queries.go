package postgres

// The SQL of the store. Every query names its columns; taskColumns is the
// order scanTask reads.

const taskColumns = `id, code, prompt, timeout_ms, status, worker_id, result, error_message,
	attempts, execution_time_ms, created_at, updated_at, started_at, completed_at, sanitized,
	priority, metadata, owner, callback_url, retries, attempt_offset,
	webhook_state, webhook_attempts, webhook_last_status, webhook_last_error, webhook_delivered_at`

const insertTask = `INSERT INTO tasks (` + taskColumns + `)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
	$16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)`

// insertTasks inserts a batch of tasks given as one array per column, and
// returns the ids it inserted: an id already stored is skipped, not an error.
const insertTasks = `INSERT INTO tasks (` + taskColumns + `)
SELECT id, code, prompt, timeout_ms, status, worker_id, result::jsonb, error_message,
	attempts, execution_time_ms, created_at, updated_at, started_at, completed_at, sanitized,
	priority, metadata::jsonb, owner, callback_url, retries, attempt_offset,
	webhook_state, webhook_attempts, webhook_last_status, webhook_last_error, webhook_delivered_at
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[],
	$9::int[], $10::bigint[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[], $14::timestamptz[],
	$15::bool[], $16::int[], $17::text[], $18::text[], $19::text[], $20::int[], $21::int[],
	$22::text[], $23::int[], $24::int[], $25::text[], $26::timestamptz[])
	AS u(id, code, prompt, timeout_ms, status, worker_id, result, error_message,
	attempts, execution_time_ms, created_at, updated_at, started_at, completed_at, sanitized,
	priority, metadata, owner, callback_url, retries, attempt_offset,
	webhook_state, webhook_attempts, webhook_last_status, webhook_last_error, webhook_delivered_at)
ON CONFLICT (id) DO NOTHING
RETURNING id`

const selectTask = `SELECT ` + taskColumns + ` FROM tasks WHERE id = $1`

// updateTask applies a task.Change in one statement. $3 are the allowed
// current statuses; $12 is the task.AttemptGuard (0 any, 1 newer, 2 same or
// newer) compared with the event's attempt $4, which must also be past the
// attempt offset of the task's current run (task.Change.AllowsRun). Nil
// fields keep their value; $13 (task.Change.Sanitized) sets the sanitized
// flag, never clears it. $14 is Change.NewRun (a retry: a new run that
// clears the outcome and restarts the webhook delivery); $15 is
// Change.Notify (a final status: a webhook becomes due, the outbox). SET
// expressions read the row as it was before the update.
const updateTask = `UPDATE tasks SET
	status            = $2,
	attempts          = GREATEST(attempts, $4),
	worker_id         = COALESCE($5, worker_id),
	result            = CASE WHEN $14 THEN NULL ELSE COALESCE($6, result) END,
	error_message     = COALESCE($7, error_message),
	execution_time_ms = CASE WHEN $14 THEN NULL ELSE COALESCE($8, execution_time_ms) END,
	started_at        = COALESCE($9, started_at),
	completed_at      = CASE WHEN $14 THEN NULL ELSE COALESCE($10, completed_at) END,
	updated_at        = $11,
	sanitized         = sanitized OR $13,
	retries           = retries + CASE WHEN $14 THEN 1 ELSE 0 END,
	attempt_offset    = CASE WHEN $14 THEN GREATEST(attempts, $4) ELSE attempt_offset END,
	webhook_state     = CASE WHEN webhook_state IS NULL THEN NULL
		WHEN $14 THEN 'waiting' WHEN $15 THEN 'due' ELSE webhook_state END,
	webhook_attempts     = CASE WHEN $14 THEN 0 ELSE webhook_attempts END,
	webhook_last_status  = CASE WHEN $14 THEN NULL ELSE webhook_last_status END,
	webhook_last_error   = CASE WHEN $14 THEN NULL ELSE webhook_last_error END,
	webhook_delivered_at = CASE WHEN $14 THEN NULL ELSE webhook_delivered_at END
WHERE id = $1
	AND status = ANY($3::text[])
	AND CASE $12::int WHEN 1 THEN attempts < $4 WHEN 2 THEN attempts <= $4 ELSE true END
	AND ($14 OR $4 = 0 OR attempt_offset < $4)
RETURNING ` + taskColumns

// updateWebhook applies a task.WebhookChange: $2 the run (retries), $3 the
// allowed states, $4 the new state; when $5 (an attempt) is true, the
// attempts become GREATEST(stored, $6) and the last status, last error and
// delivery time become $7, $8, $9.
const updateWebhook = `UPDATE tasks SET
	webhook_state        = $4,
	webhook_attempts     = CASE WHEN $5 THEN GREATEST(webhook_attempts, $6) ELSE webhook_attempts END,
	webhook_last_status  = CASE WHEN $5 THEN $7 ELSE webhook_last_status END,
	webhook_last_error   = CASE WHEN $5 THEN $8 ELSE webhook_last_error END,
	webhook_delivered_at = CASE WHEN $5 THEN $9 ELSE webhook_delivered_at END
WHERE id = $1 AND retries = $2 AND webhook_state = ANY($3::text[])
RETURNING ` + taskColumns

const listWebhooksDue = `SELECT ` + taskColumns + ` FROM tasks
	WHERE webhook_state = 'due'
	ORDER BY updated_at, id LIMIT $1`

// claimKey claims an idempotency key for a task being inserted in the same
// transaction: it inserts the key, or takes over one that expired (created
// before $6). It returns no row when an unexpired key holds it; a
// concurrent transaction claiming the same key makes it wait for that
// transaction's outcome (the primary key's index).
const claimKey = `INSERT INTO idempotency_keys (owner, key, hash, task_id, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (owner, key) DO UPDATE
	SET hash = EXCLUDED.hash, task_id = EXCLUDED.task_id, created_at = EXCLUDED.created_at
	WHERE idempotency_keys.created_at < $6
RETURNING task_id`

const selectKey = `SELECT hash, task_id FROM idempotency_keys WHERE owner = $1 AND key = $2`

const purgeKeys = `DELETE FROM idempotency_keys WHERE created_at < $1`

const taskExists = `SELECT EXISTS (SELECT 1 FROM tasks WHERE id = $1)`

// existingTasks returns which of the ids $1 are stored.
const existingTasks = `SELECT id FROM tasks WHERE id = ANY($1::uuid[])`

// The newest-first listing: listTasks + " WHERE " + the conditions of the
// query (see listQuery) + listOrder; the last argument is the row limit.
const (
	listTasks = `SELECT ` + taskColumns + ` FROM tasks`
	listOrder = ` ORDER BY created_at DESC, id DESC LIMIT `
)

const listOldest = `SELECT ` + taskColumns + ` FROM tasks
	WHERE status = $1
	ORDER BY created_at, id LIMIT $2`

const stats = `SELECT
	COUNT(*),
	COUNT(*) FILTER (WHERE status = 'pending'),
	COUNT(*) FILTER (WHERE status = 'queued'),
	COUNT(*) FILTER (WHERE status = 'running'),
	COUNT(*) FILTER (WHERE status = 'completed'),
	COUNT(*) FILTER (WHERE status = 'failed'),
	COUNT(*) FILTER (WHERE status = 'cancelled'),
	AVG(execution_time_ms)::float8
FROM tasks`

// ownerStats is stats of the tasks of the owner $1.
const ownerStats = stats + ` WHERE owner = $1`

const selectCheckpoint = `SELECT value FROM checkpoints WHERE name = $1`

const upsertCheckpoint = `INSERT INTO checkpoints (name, value, updated_at) VALUES ($1, $2, now())
ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`
