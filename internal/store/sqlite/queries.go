package sqlite

// The SQL of the store. Every query names its columns; taskColumns is the
// order scanTask reads. Times are text in timeLayout; ids canonical UUID text.

const taskColumns = `id, code, prompt, timeout_ms, status, worker_id, result, error_message,
	attempts, execution_time_ms, created_at, updated_at, started_at, completed_at, sanitized,
	priority, metadata, owner, callback_url, retries, attempt_offset,
	webhook_state, webhook_attempts, webhook_last_status, webhook_last_error, webhook_delivered_at`

const insertTask = `INSERT INTO tasks (` + taskColumns + `)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const selectTask = `SELECT ` + taskColumns + ` FROM tasks WHERE id = ?`

// updateTask applies a task.Change in one statement: ?1 id, ?2 new status,
// ?3 the allowed current statuses as a JSON array, ?4 the event's attempt
// (which must also be past the attempt offset of the task's current run,
// task.Change.AllowsRun), ?5..?10 the fields (NULL keeps the stored value),
// ?11 updated_at, ?12 the task.AttemptGuard (0 any, 1 newer, 2 same or
// newer), ?13 the task.Change.Sanitized flag (1 sets the sanitized column,
// 0 keeps it), ?14 Change.NewRun (a retry: a new run that clears the
// outcome and restarts the webhook delivery), ?15 Change.Notify (a final
// status: a webhook becomes due, the outbox). SET expressions read the row
// as it was before the update.
const updateTask = `UPDATE tasks SET
	status            = ?2,
	attempts          = max(attempts, ?4),
	worker_id         = coalesce(?5, worker_id),
	result            = CASE WHEN ?14 THEN NULL ELSE coalesce(?6, result) END,
	error_message     = coalesce(?7, error_message),
	execution_time_ms = CASE WHEN ?14 THEN NULL ELSE coalesce(?8, execution_time_ms) END,
	started_at        = coalesce(?9, started_at),
	completed_at      = CASE WHEN ?14 THEN NULL ELSE coalesce(?10, completed_at) END,
	updated_at        = ?11,
	sanitized         = max(sanitized, ?13),
	retries           = retries + CASE WHEN ?14 THEN 1 ELSE 0 END,
	attempt_offset    = CASE WHEN ?14 THEN max(attempts, ?4) ELSE attempt_offset END,
	webhook_state     = CASE WHEN webhook_state IS NULL THEN NULL
		WHEN ?14 THEN 'waiting' WHEN ?15 THEN 'due' ELSE webhook_state END,
	webhook_attempts     = CASE WHEN ?14 THEN 0 ELSE webhook_attempts END,
	webhook_last_status  = CASE WHEN ?14 THEN NULL ELSE webhook_last_status END,
	webhook_last_error   = CASE WHEN ?14 THEN NULL ELSE webhook_last_error END,
	webhook_delivered_at = CASE WHEN ?14 THEN NULL ELSE webhook_delivered_at END
WHERE id = ?1
	AND status IN (SELECT value FROM json_each(?3))
	AND CASE ?12 WHEN 1 THEN attempts < ?4 WHEN 2 THEN attempts <= ?4 ELSE 1 END
	AND (?14 OR ?4 = 0 OR attempt_offset < ?4)
RETURNING ` + taskColumns

// updateWebhook applies a task.WebhookChange: ?2 the run (retries), ?3 the
// allowed states as a JSON array, ?4 the new state; when ?5 (an attempt)
// is true, the attempts become max(stored, ?6) and the last status, last
// error and delivery time become ?7, ?8, ?9.
const updateWebhook = `UPDATE tasks SET
	webhook_state        = ?4,
	webhook_attempts     = CASE WHEN ?5 THEN max(webhook_attempts, ?6) ELSE webhook_attempts END,
	webhook_last_status  = CASE WHEN ?5 THEN ?7 ELSE webhook_last_status END,
	webhook_last_error   = CASE WHEN ?5 THEN ?8 ELSE webhook_last_error END,
	webhook_delivered_at = CASE WHEN ?5 THEN ?9 ELSE webhook_delivered_at END
WHERE id = ?1 AND retries = ?2 AND webhook_state IN (SELECT value FROM json_each(?3))
RETURNING ` + taskColumns

const listWebhooksDue = `SELECT ` + taskColumns + ` FROM tasks
	WHERE webhook_state = 'due'
	ORDER BY updated_at, id LIMIT ?`

// claimKey claims an idempotency key for a task inserted in the same
// transaction: it inserts the key, or takes over one that expired (created
// before ?6). It returns no row when an unexpired key holds it. Writers
// are serialized (one write connection, immediate transactions), so
// concurrent claims see each other's committed keys.
const claimKey = `INSERT INTO idempotency_keys (owner, key, hash, task_id, created_at)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (owner, key) DO UPDATE
	SET hash = excluded.hash, task_id = excluded.task_id, created_at = excluded.created_at
	WHERE idempotency_keys.created_at < ?6
RETURNING task_id`

const selectKey = `SELECT hash, task_id FROM idempotency_keys WHERE owner = ? AND key = ?`

const purgeKeys = `DELETE FROM idempotency_keys WHERE created_at < ?`

const taskExists = `SELECT EXISTS (SELECT 1 FROM tasks WHERE id = ?)`

// The newest-first listing: listTasks + " WHERE " + the conditions of the
// query (see listQuery) + listOrder; the last argument is the row limit.
const (
	listTasks = `SELECT ` + taskColumns + ` FROM tasks`
	listOrder = ` ORDER BY created_at DESC, id DESC LIMIT ?`
	// metadataMatch is the metadata filter: a key holding that JSON string.
	metadataMatch = `EXISTS (SELECT 1 FROM json_each(tasks.metadata) AS m
		WHERE m.key = ? AND m.type = 'text' AND m.value = ?)`
)

const listOldest = `SELECT ` + taskColumns + ` FROM tasks
	WHERE status = ?
	ORDER BY created_at, id LIMIT ?`

const stats = `SELECT
	COUNT(*),
	COUNT(*) FILTER (WHERE status = 'pending'),
	COUNT(*) FILTER (WHERE status = 'queued'),
	COUNT(*) FILTER (WHERE status = 'running'),
	COUNT(*) FILTER (WHERE status = 'completed'),
	COUNT(*) FILTER (WHERE status = 'failed'),
	COUNT(*) FILTER (WHERE status = 'cancelled'),
	AVG(execution_time_ms)
FROM tasks`

// ownerStats is stats of the tasks of one owner.
const ownerStats = stats + ` WHERE owner = ?`

const selectCheckpoint = `SELECT value FROM checkpoints WHERE name = ?`

const upsertCheckpoint = `INSERT INTO checkpoints (name, value, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`
