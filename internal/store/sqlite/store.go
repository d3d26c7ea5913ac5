package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/agentorch/orchestrator/internal/store/groupcommit"
	"github.com/agentorch/orchestrator/internal/task"
)

// timeLayout is how times are stored: UTC, microseconds, fixed width, so
// that text order is time order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// busyTimeoutMs is how long a statement waits for another process's write
// lock before failing.
const busyTimeoutMs = "10000"

// Store is a task.Store on a SQLite database file. It is safe for
// concurrent use: writes are serialized on one connection, reads run on a
// separate pool. Times are returned in UTC with microsecond precision.
type Store struct {
	writer *sql.DB
	reader *sql.DB // == writer for in-memory databases
	log    *slog.Logger

	insert, update *sql.Stmt
	writes         groupcommit.Batcher[writeOp, *task.Task] // Create's and Apply's group commit
	closeOnce      sync.Once
	closeErr       error
}

var _ task.Store = (*Store)(nil)

// Open opens (creating it and its parent directory when needed) the SQLite
// database that dsn names, applies the pending migrations and returns the
// store. dsn is a plain path ("data/tasks.db"), a sqlite URL
// ("sqlite:///var/lib/tasks.db" for an absolute path, "sqlite://data/tasks.db"
// or "sqlite:data/tasks.db" for a relative one), a SQLite file: URI
// ("file:tasks.db?cache=shared"), or ":memory:" (one connection, data lost at
// Close). Its query parameters are passed to the driver; Open adds WAL mode,
// a busy timeout, foreign keys, synchronous=NORMAL and immediate write
// transactions. A nil logger means slog.Default().
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.Default()
	}
	loc, err := parseLocation(dsn)
	if err != nil {
		return nil, err
	}
	if loc.path != "" {
		if err := os.MkdirAll(filepath.Dir(loc.path), 0o755); err != nil {
			return nil, fmt.Errorf("create directory of sqlite database %s: %w", loc.path, err)
		}
	}
	writer, err := sql.Open("sqlite", loc.dsn(url.Values{
		"_pragma": {"busy_timeout(" + busyTimeoutMs + ")", "journal_mode(wal)", "foreign_keys(1)", "synchronous(normal)"},
		"_txlock": {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	s := &Store{writer: writer, reader: writer, log: logger}
	s.writes.Flush = s.writeBatch
	if !loc.memory {
		reader, err := sql.Open("sqlite", loc.dsn(url.Values{
			"_pragma": {"busy_timeout(" + busyTimeoutMs + ")", "foreign_keys(1)", "query_only(1)"},
		}))
		if err != nil {
			writer.Close()
			return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
		}
		n := max(4, runtime.NumCPU())
		reader.SetMaxOpenConns(n)
		reader.SetMaxIdleConns(n)
		s.reader = reader
	}
	if err := s.open(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	if err := s.writer.PingContext(ctx); err != nil {
		return fmt.Errorf("open sqlite database: %w", err)
	}
	if err := migrate(ctx, s.writer, s.log); err != nil {
		return err
	}
	var err error
	if s.insert, err = s.writer.PrepareContext(ctx, insertTask); err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	if s.update, err = s.writer.PrepareContext(ctx, updateTask); err != nil {
		return fmt.Errorf("prepare update: %w", err)
	}
	return nil
}

// Close closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		for _, st := range []*sql.Stmt{s.insert, s.update} {
			if st != nil {
				_ = st.Close()
			}
		}
		var errs []error
		if s.reader != s.writer {
			errs = append(errs, s.reader.Close())
		}
		errs = append(errs, s.writer.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("close sqlite: %w", err)
		}
	})
	return s.closeErr
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.reader.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// Create inserts t. A task with the same id already stored gives
// task.ErrConflict. Concurrent Create and Apply calls share write
// transactions (group commit); each still gets its own outcome.
func (s *Store) Create(ctx context.Context, t *task.Task) error {
	if _, err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) (*task.Task, error) {
		return nil, s.insertTx(ctx, tx, t)
	}); err != nil {
		return fmt.Errorf("insert task %s: %w", t.ID, dataError(err))
	}
	return nil
}

func (s *Store) insertTx(ctx context.Context, tx *sql.Tx, t *task.Task) error {
	var (
		wState, wErr *string
		wTries       int
		wStatus      *int
		wAt          any
	)
	if w := t.Webhook; w != nil {
		st := string(w.State)
		wState, wTries, wStatus, wErr, wAt = &st, w.Attempts, w.LastStatus, w.LastError, formatTimePtr(w.DeliveredAt)
	}
	_, err := tx.StmtContext(ctx, s.insert).ExecContext(ctx,
		t.ID.String(), t.Code, t.Prompt, t.Timeout, string(t.Status), t.WorkerID, jsonArg(t.Result), t.ErrorMessage,
		t.Attempts, t.ExecutionTime, formatTime(t.CreatedAt), formatTime(t.UpdatedAt),
		formatTimePtr(t.StartedAt), formatTimePtr(t.CompletedAt), t.Sanitized,
		t.Priority, jsonArg(t.Metadata), t.Owner, t.CallbackURL, t.Retries, t.AttemptOffset,
		wState, wTries, wStatus, wErr, wAt)
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return task.ErrConflict
	}
	return err
}

// Get returns the task with the id, or task.ErrNotFound.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (*task.Task, error) {
	t, err := scanTask(s.reader.QueryRowContext(ctx, selectTask, id.String()))
	if errors.Is(err, sql.ErrNoRows) {
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
// never uses OFFSET. The metadata filter reads each candidate's metadata
// with json_each (no index).
func (s *Store) List(ctx context.Context, q task.ListQuery) ([]*task.Task, *task.Cursor, error) {
	var (
		conds []string
		args  []any
	)
	if q.Owner != nil {
		conds, args = append(conds, "owner = ?"), append(args, *q.Owner)
	}
	if q.Status != nil {
		conds, args = append(conds, "status = ?"), append(args, string(*q.Status))
	}
	if q.Metadata != nil {
		conds, args = append(conds, metadataMatch), append(args, q.Metadata.Key, q.Metadata.Value)
	}
	if q.After != nil {
		conds, args = append(conds, "(created_at, id) < (?, ?)"), append(args, formatTime(q.After.CreatedAt), q.After.ID.String())
	}
	query := listTasks
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	rows, err := s.reader.QueryContext(ctx, query+listOrder, append(args, q.FetchLimit())...)
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
	rows, err := s.reader.QueryContext(ctx, listOldest, string(st), limit)
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
	st, err := scanStats(s.reader.QueryRowContext(ctx, stats))
	if err != nil {
		return task.Stats{}, fmt.Errorf("task stats: %w", err)
	}
	return st, nil
}

// OwnerStats is Stats of the tasks of owner.
func (s *Store) OwnerStats(ctx context.Context, owner string) (task.Stats, error) {
	st, err := scanStats(s.reader.QueryRowContext(ctx, ownerStats, owner))
	if err != nil {
		return task.Stats{}, fmt.Errorf("task stats of owner %q: %w", owner, err)
	}
	return st, nil
}

func scanStats(row *sql.Row) (task.Stats, error) {
	var (
		st  task.Stats
		avg sql.NullFloat64
	)
	err := row.Scan(&st.Total, &st.Pending, &st.Queued, &st.Running, &st.Completed, &st.Failed, &st.Cancelled, &avg)
	if err != nil {
		return task.Stats{}, err
	}
	if avg.Valid {
		st.AvgExecutionTimeMs = &avg.Float64
	}
	return st, nil
}

// Apply applies c in one conditional UPDATE and returns the task as it is
// afterwards. When c does not apply it changes nothing and returns
// task.ErrNotFound (no such task) or task.ErrConflict; data SQLite refuses
// gives task.ErrInvalidData (see dataError). A zero c.At means
// now. Concurrent Create and Apply calls share write transactions (group
// commit) and run in them one after the other, as if serially.
func (s *Store) Apply(ctx context.Context, c task.Change) (*task.Task, error) {
	at := c.At
	if at.IsZero() {
		at = time.Now()
	}
	from, err := json.Marshal(c.From)
	if err != nil {
		return nil, fmt.Errorf("set task %s %s: %w", c.ID, c.To, err)
	}
	t, err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) (*task.Task, error) {
		return s.updateTx(ctx, tx, c, string(from), at)
	})
	if err != nil {
		return nil, fmt.Errorf("set task %s %s: %w", c.ID, c.To, dataError(err))
	}
	return t, nil
}

func (s *Store) updateTx(ctx context.Context, tx *sql.Tx, c task.Change, from string, at time.Time) (*task.Task, error) {
	t, err := scanTask(tx.StmtContext(ctx, s.update).QueryRowContext(ctx,
		c.ID.String(), string(c.To), from, c.Attempts, c.WorkerID, jsonArg(c.Result), c.ErrorMessage,
		c.ExecutionTime, formatTimePtr(c.StartedAt), formatTimePtr(c.CompletedAt), formatTime(at), int(c.Guard), c.Sanitized,
		c.NewRun, c.Notify))
	if err == nil {
		return t, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	var exists bool
	if err := tx.QueryRowContext(ctx, taskExists, c.ID.String()).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, task.ErrNotFound
	}
	return nil, task.ErrConflict
}

// Checkpoint returns the value stored under name, or "" when none is.
func (s *Store) Checkpoint(ctx context.Context, name string) (string, error) {
	var v string
	err := s.reader.QueryRowContext(ctx, selectCheckpoint, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read checkpoint %q: %w", name, err)
	}
	return v, nil
}

// SetCheckpoint stores value under name, replacing any previous value.
func (s *Store) SetCheckpoint(ctx context.Context, name, value string) error {
	if _, err := s.writer.ExecContext(ctx, upsertCheckpoint, name, value, formatTime(time.Now())); err != nil {
		return fmt.Errorf("write checkpoint %q: %w", name, err)
	}
	return nil
}

func scanTask(row interface{ Scan(...any) error }) (*task.Task, error) {
	var (
		t                      task.Task
		id, status             string
		result, metadata       sql.NullString
		createdAt, updatedAt   string
		startedAt, completedAt sql.NullString
		priority               sql.NullInt64
		wState, wErr, wAt      sql.NullString
		wTries                 int
		wStatus                sql.NullInt64
	)
	err := row.Scan(&id, &t.Code, &t.Prompt, &t.Timeout, &status, &t.WorkerID, &result, &t.ErrorMessage,
		&t.Attempts, &t.ExecutionTime, &createdAt, &updatedAt, &startedAt, &completedAt, &t.Sanitized,
		&priority, &metadata, &t.Owner, &t.CallbackURL, &t.Retries, &t.AttemptOffset,
		&wState, &wTries, &wStatus, &wErr, &wAt)
	if err != nil {
		return nil, err
	}
	if t.ID, err = uuid.Parse(id); err != nil {
		return nil, fmt.Errorf("stored task id %q: %w", id, err)
	}
	t.Status = task.Status(status)
	if result.Valid {
		t.Result = json.RawMessage(result.String)
	}
	if metadata.Valid {
		t.Metadata = json.RawMessage(metadata.String)
	}
	if priority.Valid {
		p := int(priority.Int64)
		t.Priority = &p
	}
	if t.CreatedAt, err = parseTime(createdAt); err != nil {
		return nil, err
	}
	if t.UpdatedAt, err = parseTime(updatedAt); err != nil {
		return nil, err
	}
	if t.StartedAt, err = parseTimePtr(startedAt); err != nil {
		return nil, err
	}
	if t.CompletedAt, err = parseTimePtr(completedAt); err != nil {
		return nil, err
	}
	if wState.Valid {
		w := &task.WebhookDelivery{State: task.WebhookState(wState.String), Attempts: wTries}
		if wStatus.Valid {
			n := int(wStatus.Int64)
			w.LastStatus = &n
		}
		if wErr.Valid {
			w.LastError = &wErr.String
		}
		if w.DeliveredAt, err = parseTimePtr(wAt); err != nil {
			return nil, err
		}
		t.Webhook = w
	}
	return &t, nil
}

func collectTasks(rows *sql.Rows) ([]*task.Task, error) {
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

// dataError translates SQLite's refusal of the data (a constraint such as
// the result's json_valid CHECK, a value too big, a type mismatch) into
// task.ErrInvalidData, keeping SQLite's message. Any other error (busy,
// I/O) is returned as is: the caller treats it as temporary. A duplicate
// id is not a data error: Create reports it as task.ErrConflict before.
func dataError(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH:
			return fmt.Errorf("%w: %w", task.ErrInvalidData, err)
		}
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

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func formatTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return formatTime(*t)
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t, nil
}

func parseTimePtr(s sql.NullString) (*time.Time, error) {
	if !s.Valid {
		return nil, nil
	}
	t, err := parseTime(s.String)
	if err != nil {
		return nil, err
	}
	return &t, nil
}
