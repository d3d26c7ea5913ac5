package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
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
// first, strictly after q.After, of q.Owner and matching q.Metadata when
// set, and the cursor of the next page (nil on the last page). It seeks on
// the (created_at, id) index, or (owner, created_at, id) with an owner; it
// never uses OFFSET. The metadata filter is a jsonb containment test,
// served by the GIN index on metadata.
func (s *Store) List(ctx context.Context, q task.ListQuery) ([]*task.Task, *task.Cursor, error) {
	sql, args := listQuery(q)
	rows, err := s.pool.Query(ctx, sql, args...)
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

// listQuery builds the SQL and arguments of a listing: one condition per
// filter of q, numbered in order, then the limit.
func listQuery(q task.ListQuery) (string, []any) {
	var (
		conds []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Owner != nil {
		conds = append(conds, "owner = "+arg(*q.Owner))
	}
	if q.Status != nil {
		conds = append(conds, "status = "+arg(string(*q.Status)))
	}
	if q.Metadata != nil {
		conds = append(conds, "metadata @> "+arg(q.Metadata.JSON())+"::jsonb")
	}
	if q.After != nil {
		conds = append(conds, "(created_at, id) < ("+arg(utc(q.After.CreatedAt))+", "+arg(q.After.ID)+")")
	}
	sql := listTasks
	if len(conds) > 0 {
		sql += " WHERE " + strings.Join(conds, " AND ")
	}
	sql += listOrder + arg(q.FetchLimit())
	return sql, args
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

// OwnerStats is Stats of the tasks of owner.
func (s *Store) OwnerStats(ctx context.Context, owner string) (task.Stats, error) {
	var st task.Stats
	err := s.pool.QueryRow(ctx, ownerStats, owner).Scan(&st.Total, &st.Pending, &st.Queued, &st.Running,
		&st.Completed, &st.Failed, &st.Cancelled, &st.AvgExecutionTimeMs)
	if err != nil {
		return task.Stats{}, fmt.Errorf("task stats of owner %q: %w", owner, err)
	}
	return st, nil
}

// ListWebhooksDue returns up to limit tasks whose webhook is due, the
// longest due (finished) first.
func (s *Store) ListWebhooksDue(ctx context.Context, limit int) ([]*task.Task, error) {
	rows, err := s.pool.Query(ctx, listWebhooksDue, limit)
	if err != nil {
		return nil, fmt.Errorf("list due webhooks: %w", err)
	}
	tasks, err := collectTasks(rows)
	if err != nil {
		return nil, fmt.Errorf("list due webhooks: %w", err)
	}
	return tasks, nil
}

// ApplyWebhook applies c in one conditional UPDATE and returns the task
// as it is afterwards; task.ErrNotFound or task.ErrConflict when it does
// not apply.
func (s *Store) ApplyWebhook(ctx context.Context, c task.WebhookChange) (*task.Task, error) {
	from := make([]string, len(c.From))
	for i, f := range c.From {
		from[i] = string(f)
	}
	a := c.Attempt
	if a == nil {
		a = &task.WebhookAttempt{}
	}
	t, err := scanTask(s.pool.QueryRow(ctx, updateWebhook, c.ID, c.Run, from, string(c.To),
		c.Attempt != nil, a.Number, a.Status, a.Error, utcPtr(a.DeliveredAt)))
	if err == nil {
		return t, nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		var exists bool
		if err = s.pool.QueryRow(ctx, taskExists, c.ID).Scan(&exists); err == nil {
			err = task.ErrConflict
			if !exists {
				err = task.ErrNotFound
			}
		}
	}
	return nil, fmt.Errorf("set webhook of task %s %s: %w", c.ID, c.To, err)
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
		t        task.Task
		status   string
		result   []byte
		metadata []byte
		priority *int32
		wState   *string
		wTries   int
		wStatus  *int32
		wError   *string
		wAt      *time.Time
	)
	err := row.Scan(&t.ID, &t.Code, &t.Prompt, &t.Timeout, &status, &t.WorkerID, &result, &t.ErrorMessage,
		&t.Attempts, &t.ExecutionTime, &t.CreatedAt, &t.UpdatedAt, &t.StartedAt, &t.CompletedAt, &t.Sanitized,
		&priority, &metadata, &t.Owner, &t.CallbackURL, &t.Retries, &t.AttemptOffset,
		&wState, &wTries, &wStatus, &wError, &wAt)
	if err != nil {
		return nil, err
	}
	t.Status = task.Status(status)
	if result != nil {
		t.Result = json.RawMessage(result)
	}
	if metadata != nil {
		t.Metadata = json.RawMessage(metadata)
	}
	if priority != nil {
		p := int(*priority)
		t.Priority = &p
	}
	if wState != nil {
		t.Webhook = &task.WebhookDelivery{State: task.WebhookState(*wState), Attempts: wTries, LastError: wError,
			DeliveredAt: utcPtr(wAt)}
		if wStatus != nil {
			st := int(*wStatus)
			t.Webhook.LastStatus = &st
		}
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

// webhookArgs are the webhook columns of t for an insert: state (nil for
// none), attempts, last status, last error, delivery time.
func webhookArgs(t *task.Task) (state *string, attempts int32, status *int32, lastErr *string, at *time.Time) {
	w := t.Webhook
	if w == nil {
		return nil, 0, nil, nil, nil
	}
	st := string(w.State)
	if w.LastStatus != nil {
		n := int32(*w.LastStatus)
		status = &n
	}
	return &st, int32(w.Attempts), status, w.LastError, utcPtr(w.DeliveredAt)
}

// priorityArg passes a task's priority as a nullable int4.
func priorityArg(p *int) *int32 {
	if p == nil {
		return nil
	}
	n := int32(*p)
	return &n
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
