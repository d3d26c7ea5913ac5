package postgres

// The SQL of the store. Every query names its columns; taskColumns is the
// order scanTask reads.

const taskColumns = `id, code, prompt, timeout_ms, status, worker_id, result, error_message,
	attempts, execution_time_ms, created_at, updated_at, started_at, completed_at, sanitized`

const insertTask = `INSERT INTO tasks (` + taskColumns + `)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`

// insertTasks inserts a batch of tasks given as one array per column, and
// returns the ids it inserted: an id already stored is skipped, not an error.
const insertTasks = `INSERT INTO tasks (` + taskColumns + `)
SELECT id, code, prompt, timeout_ms, status, worker_id, result::jsonb, error_message,
	attempts, execution_time_ms, created_at, updated_at, started_at, completed_at, sanitized
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[],
	$9::int[], $10::bigint[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[], $14::timestamptz[],
	$15::bool[])
	AS u(id, code, prompt, timeout_ms, status, worker_id, result, error_message,
	attempts, execution_time_ms, created_at, updated_at, started_at, completed_at, sanitized)
ON CONFLICT (id) DO NOTHING
RETURNING id`

const selectTask = `SELECT ` + taskColumns + ` FROM tasks WHERE id = $1`

// updateTask applies a task.Change in one statement. $3 are the allowed
// current statuses; $12 is the task.AttemptGuard (0 any, 1 newer, 2 same or
// newer) compared with the event's attempt $4. Nil fields keep their value;
// $13 (task.Change.Sanitized) sets the sanitized flag, never clears it.
const updateTask = `UPDATE tasks SET
	status            = $2,
	attempts          = GREATEST(attempts, $4),
	worker_id         = COALESCE($5, worker_id),
	result            = COALESCE($6, result),
	error_message     = COALESCE($7, error_message),
	execution_time_ms = COALESCE($8, execution_time_ms),
	started_at        = COALESCE($9, started_at),
	completed_at      = COALESCE($10, completed_at),
	updated_at        = $11,
	sanitized         = sanitized OR $13
WHERE id = $1
	AND status = ANY($3::text[])
	AND CASE $12::int WHEN 1 THEN attempts < $4 WHEN 2 THEN attempts <= $4 ELSE true END
RETURNING ` + taskColumns

const taskExists = `SELECT EXISTS (SELECT 1 FROM tasks WHERE id = $1)`

// existingTasks returns which of the ids $1 are stored.
const existingTasks = `SELECT id FROM tasks WHERE id = ANY($1::uuid[])`

// The four shapes of the newest-first listing; $n is the row limit.
const (
	listAll = `SELECT ` + taskColumns + ` FROM tasks
	ORDER BY created_at DESC, id DESC LIMIT $1`
	listAllAfter = `SELECT ` + taskColumns + ` FROM tasks
	WHERE (created_at, id) < ($1, $2)
	ORDER BY created_at DESC, id DESC LIMIT $3`
	listStatus = `SELECT ` + taskColumns + ` FROM tasks
	WHERE status = $1
	ORDER BY created_at DESC, id DESC LIMIT $2`
	listStatusAfter = `SELECT ` + taskColumns + ` FROM tasks
	WHERE status = $1 AND (created_at, id) < ($2, $3)
	ORDER BY created_at DESC, id DESC LIMIT $4`
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

const selectCheckpoint = `SELECT value FROM checkpoints WHERE name = $1`

const upsertCheckpoint = `INSERT INTO checkpoints (name, value, updated_at) VALUES ($1, $2, now())
ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`
