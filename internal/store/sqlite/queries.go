package sqlite

// The SQL of the store. Every query names its columns; taskColumns is the
// order scanTask reads. Times are text in timeLayout; ids canonical UUID text.

const taskColumns = `id, code, prompt, timeout_ms, status, worker_id, result, error_message,
	attempts, execution_time_ms, created_at, updated_at, started_at, completed_at, sanitized`

const insertTask = `INSERT INTO tasks (` + taskColumns + `)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const selectTask = `SELECT ` + taskColumns + ` FROM tasks WHERE id = ?`

// updateTask applies a task.Change in one statement: ?1 id, ?2 new status,
// ?3 the allowed current statuses as a JSON array, ?4 the event's attempt,
// ?5..?10 the fields (NULL keeps the stored value), ?11 updated_at, ?12 the
// task.AttemptGuard (0 any, 1 newer, 2 same or newer), ?13 the
// task.Change.Sanitized flag (1 sets the sanitized column, 0 keeps it).
const updateTask = `UPDATE tasks SET
	status            = ?2,
	attempts          = max(attempts, ?4),
	worker_id         = coalesce(?5, worker_id),
	result            = coalesce(?6, result),
	error_message     = coalesce(?7, error_message),
	execution_time_ms = coalesce(?8, execution_time_ms),
	started_at        = coalesce(?9, started_at),
	completed_at      = coalesce(?10, completed_at),
	updated_at        = ?11,
	sanitized         = max(sanitized, ?13)
WHERE id = ?1
	AND status IN (SELECT value FROM json_each(?3))
	AND CASE ?12 WHEN 1 THEN attempts < ?4 WHEN 2 THEN attempts <= ?4 ELSE 1 END
RETURNING ` + taskColumns

const taskExists = `SELECT EXISTS (SELECT 1 FROM tasks WHERE id = ?)`

// The four shapes of the newest-first listing; the last argument is the row limit.
const (
	listAll = `SELECT ` + taskColumns + ` FROM tasks
	ORDER BY created_at DESC, id DESC LIMIT ?`
	listAllAfter = `SELECT ` + taskColumns + ` FROM tasks
	WHERE (created_at, id) < (?, ?)
	ORDER BY created_at DESC, id DESC LIMIT ?`
	listStatus = `SELECT ` + taskColumns + ` FROM tasks
	WHERE status = ?
	ORDER BY created_at DESC, id DESC LIMIT ?`
	listStatusAfter = `SELECT ` + taskColumns + ` FROM tasks
	WHERE status = ? AND (created_at, id) < (?, ?)
	ORDER BY created_at DESC, id DESC LIMIT ?`
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

const selectCheckpoint = `SELECT value FROM checkpoints WHERE name = ?`

const upsertCheckpoint = `INSERT INTO checkpoints (name, value, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`
