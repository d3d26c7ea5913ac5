package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/task"
)

// CreateIdempotent inserts t and claims k for it in one write transaction,
// unless an unexpired key holds k (see task.Store). Writers are serialized,
// so of concurrent calls with one key the first claims it and the others
// find it (another process writing the same file waits on SQLite's lock).
func (s *Store) CreateIdempotent(ctx context.Context, t *task.Task, k task.IdempotencyKey, expiredBefore time.Time) (*task.Task, bool, error) {
	var created bool
	got, err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) (*task.Task, error) {
		created = false
		// A savepoint, so that a refused claim undoes this op's insert
		// only, not the other ops of the batch.
		if _, err := tx.ExecContext(ctx, "SAVEPOINT idempotent_create"); err != nil {
			return nil, err
		}
		held, ok, err := s.claimTx(ctx, tx, t, k, expiredBefore)
		if err != nil || !ok {
			if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO idempotent_create"); rerr != nil {
				return nil, errors.Join(err, rerr)
			}
		}
		if _, rerr := tx.ExecContext(ctx, "RELEASE idempotent_create"); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		created = ok && err == nil
		return held, err
	})
	if err != nil {
		if errors.Is(err, task.ErrIdempotencyMismatch) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("create task %s with idempotency key: %w", t.ID, err)
	}
	return got, created, nil
}

// claimTx inserts t and claims k; when an unexpired key holds k it returns
// the task holding it (false), or ErrIdempotencyMismatch.
func (s *Store) claimTx(ctx context.Context, tx *sql.Tx, t *task.Task, k task.IdempotencyKey, expiredBefore time.Time) (*task.Task, bool, error) {
	if err := s.insertTx(ctx, tx, t); err != nil {
		return nil, false, err
	}
	var claimed string
	err := tx.QueryRowContext(ctx, claimKey, k.Owner, k.Key, k.Hash[:], t.ID.String(),
		formatTime(k.CreatedAt), formatTime(expiredBefore)).Scan(&claimed)
	if err == nil {
		return t, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, false, err
	}
	var (
		hash   []byte
		holder string
	)
	if err := tx.QueryRowContext(ctx, selectKey, k.Owner, k.Key).Scan(&hash, &holder); err != nil {
		return nil, false, fmt.Errorf("read idempotency key: %w", err)
	}
	if !bytes.Equal(hash, k.Hash[:]) {
		return nil, false, task.ErrIdempotencyMismatch
	}
	held, err := scanTask(tx.QueryRowContext(ctx, selectTask, holder))
	if err != nil {
		return nil, false, fmt.Errorf("read task %s holding the idempotency key: %w", holder, err)
	}
	return held, false, nil
}

// PurgeIdempotencyKeys deletes the keys created before before.
func (s *Store) PurgeIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.writer.ExecContext(ctx, purgeKeys, formatTime(before))
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return res.RowsAffected()
}

// ListWebhooksDue returns up to limit tasks whose webhook is due, the
// longest due (finished) first.
func (s *Store) ListWebhooksDue(ctx context.Context, limit int) ([]*task.Task, error) {
	rows, err := s.reader.QueryContext(ctx, listWebhooksDue, limit)
	if err != nil {
		return nil, fmt.Errorf("list due webhooks: %w", err)
	}
	tasks, err := collectTasks(rows)
	if err != nil {
		return nil, fmt.Errorf("list due webhooks: %w", err)
	}
	return tasks, nil
}

// ApplyWebhook applies c in one conditional UPDATE (in the write batch)
// and returns the task as it is afterwards; task.ErrNotFound or
// task.ErrConflict when it does not apply.
func (s *Store) ApplyWebhook(ctx context.Context, c task.WebhookChange) (*task.Task, error) {
	from, err := json.Marshal(c.From)
	if err != nil {
		return nil, fmt.Errorf("set webhook of task %s %s: %w", c.ID, c.To, err)
	}
	a := c.Attempt
	if a == nil {
		a = &task.WebhookAttempt{}
	}
	t, err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) (*task.Task, error) {
		t, err := scanTask(tx.QueryRowContext(ctx, updateWebhook, c.ID.String(), c.Run, string(from), string(c.To),
			c.Attempt != nil, a.Number, a.Status, a.Error, formatTimePtr(a.DeliveredAt)))
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return t, err
		}
		return nil, notFoundOrConflict(ctx, tx, c.ID)
	})
	if err != nil {
		return nil, fmt.Errorf("set webhook of task %s %s: %w", c.ID, c.To, err)
	}
	return t, nil
}

// notFoundOrConflict tells why a conditional update of task id changed no row.
func notFoundOrConflict(ctx context.Context, tx *sql.Tx, id uuid.UUID) error {
	var exists bool
	if err := tx.QueryRowContext(ctx, taskExists, id.String()).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return task.ErrNotFound
	}
	return task.ErrConflict
}
