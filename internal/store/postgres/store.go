package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agentorch/orchestrator/internal/store/groupcommit"
	"github.com/agentorch/orchestrator/internal/task"
)

// Store is a task.Store on a PostgreSQL connection pool. It is safe for
// concurrent use. Times are stored as timestamptz (microseconds) and
// returned in UTC; results as jsonb, so a result comes back as equivalent
// JSON, not byte for byte (key order and spacing are normalized).
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	creates groupcommit.Batcher[*task.Task, struct{}]  // Create's group commit
	applies groupcommit.Batcher[applyArgs, *task.Task] // Apply's group commit
}

var _ task.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or key=value DSN
// that pgx accepts, including pool_max_conns and search_path), applies the
// pending migrations and returns the store. The pool defaults to
// max(32, 4×CPUs) connections unless the URL sets pool_max_conns: concurrent
// inserts share WAL flushes (group commit), so more connections than CPUs
// raise insert throughput. A nil logger means slog.Default(). Close the
// store to release the pool.
func Open(ctx context.Context, url string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.Default()
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse postgres url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = int32(max(32, 4*runtime.NumCPU()))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if err := migrate(ctx, pool, logger); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, log: logger}
	s.creates.Flush = s.insertBatch
	s.applies.Flush = s.applyBatch
	return s, nil
}

// Close closes the pool, waiting for connections in use to be returned. It
// is safe to call more than once.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// Get returns the task with the id, or task.ErrNotFound.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (*task.Task, error) {
	t, err := scanTask(s.pool.QueryRow(ctx, selectTask, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("get task %s: %w", id, task.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get task %s: %w", id, err)
	}
	return t, nil
}

// List returns up to q.Limit tasks (task.DefaultListLimit when 0), newest
// first, strictly after q.After, and the cursor of the next page (nil on the
// last page). It seeks on the (created_at, id) index; it never uses OFFSET.
func (s *Store) List(ctx context.Context, q task.ListQuery) ([]*task.Task, *task.Cursor, error) {
	limit := q.FetchLimit()
	var (
		rows pgx.Rows
		err  error
	)
	switch {
	case q.Status == nil && q.After == nil:
		rows, err = s.pool.Query(ctx, listAll, limit)
	case q.Status == nil:
		rows, err = s.pool.Query(ctx, listAllAfter, utc(q.After.CreatedAt), q.After.ID, limit)
	case q.After == nil:
		rows, err = s.pool.Query(ctx, listStatus, string(*q.Status), limit)
	default:
		rows, err = s.pool.Query(ctx, listStatusAfter, string(*q.Status), utc(q.After.CreatedAt), q.After.ID, limit)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list tasks: %w", err)
	}
	tasks, err := collectTasks(rows)
	if err != nil {
		return nil, nil, fmt.Errorf("list tasks: %w", err)
	}
	page, next := q.Page(tasks)
	return page, next, nil
}

// ListOldest returns up to limit tasks in status st, oldest first.
func (s *Store) ListOldest(ctx context.Context, st task.Status, limit int) ([]*task.Task, error) {
	rows, err := s.pool.Query(ctx, listOldest, string(st), limit)
	if err != nil {
		return nil, fmt.Errorf("list oldest %s tasks: %w", st, err)
	}
	tasks, err := collectTasks(rows)
	if err != nil {
		return nil, fmt.Errorf("list oldest %s tasks: %w", st, err)
	}
	return tasks, nil
}

// Stats counts tasks by status and averages execution time in one query.
func (s *Store) Stats(ctx context.Context) (task.Stats, error) {
	var st task.Stats
	err := s.pool.QueryRow(ctx, stats).Scan(&st.Total, &st.Pending, &st.Queued, &st.Running,
		&st.Completed, &st.Failed, &st.Cancelled, &st.AvgExecutionTimeMs)
	if err != nil {
		return task.Stats{}, fmt.Errorf("task stats: %w", err)
	}
	return st, nil
}

// Checkpoint returns the value stored under name, or "" when none is.
func (s *Store) Checkpoint(ctx context.Context, name string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, selectCheckpoint, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read checkpoint %q: %w", name, err)
	}
	return v, nil
}

// SetCheckpoint stores value under name, replacing any previous value.
func (s *Store) SetCheckpoint(ctx context.Context, name, value string) error {
	if _, err := s.pool.Exec(ctx, upsertCheckpoint, name, value); err != nil {
		return fmt.Errorf("write checkpoint %q: %w", name, err)
	}
	return nil
}

func scanTask(row pgx.Row) (*task.Task, error) {
	var (
		t      task.Task
		status string
		result []byte
	)
	err := row.Scan(&t.ID, &t.Code, &t.Prompt, &t.Timeout, &status, &t.WorkerID, &result, &t.ErrorMessage,
		&t.Attempts, &t.ExecutionTime, &t.CreatedAt, &t.UpdatedAt, &t.StartedAt, &t.CompletedAt, &t.Sanitized)
	if err != nil {
		return nil, err
	}
	t.Status = task.Status(status)
	if result != nil {
		t.Result = json.RawMessage(result)
	}
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	t.StartedAt, t.CompletedAt = utcPtr(t.StartedAt), utcPtr(t.CompletedAt)
	return &t, nil
}

func collectTasks(rows pgx.Rows) ([]*task.Task, error) {
	defer rows.Close()
	var tasks []*task.Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, t)
	}
	return tasks, rows.Err()
}

// dataError translates the server's refusal of the data (SQLSTATE class 22,
// data exception: invalid UTF-8 or \u0000 in text or jsonb, a value out of
// range; class 23, integrity constraint violation: a CHECK) into
// task.ErrInvalidData, keeping the server's message. Any other error is
// returned as is: the caller treats it as temporary.
func dataError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")) {
		return fmt.Errorf("%w: %w", task.ErrInvalidData, err)
	}
	return err
}

// jsonArg passes an empty result as SQL NULL.
func jsonArg(m json.RawMessage) any {
	if len(m) == 0 {
		return nil
	}
	return string(m)
}

func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := utc(*t)
	return &u
}
