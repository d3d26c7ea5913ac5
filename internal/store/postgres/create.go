package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/agentorch/orchestrator/internal/store/groupcommit"
	"github.com/agentorch/orchestrator/internal/task"
)

// Create inserts t. A task with the same id already stored gives
// task.ErrConflict. Concurrent calls are written together (group commit):
// the calls that arrive while a batch is being written form the next batch,
// one multi-row INSERT, so many creates share one transaction and one WAL
// flush; each call still gets its own outcome.
func (s *Store) Create(ctx context.Context, t *task.Task) error {
	if _, err := s.creates.Do(ctx, t); err != nil {
		return dataError(err)
	}
	return nil
}

// insertBatch is the Flush of s.creates. A duplicate id fails only its own
// call; a batch the server rejects for another reason (a CHECK constraint)
// is retried one task at a time, so only the faulty task fails.
func (s *Store) insertBatch(ctx context.Context, ts []*task.Task, out []groupcommit.Result[struct{}]) {
	seen := make(map[uuid.UUID]struct{}, len(ts))
	idx := make([]int, 0, len(ts)) // calls to insert: the first of each id
	for i, t := range ts {
		if _, dup := seen[t.ID]; dup { // a concurrent create of the same id in this batch won
			out[i].Err = task.ErrConflict
			continue
		}
		seen[t.ID] = struct{}{}
		idx = append(idx, i)
	}
	if len(idx) == 1 {
		out[idx[0]].Err = s.insertOne(ctx, ts[idx[0]])
		return
	}
	inserted, err := s.insertMany(ctx, ts, idx)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			for _, i := range idx {
				out[i].Err = s.insertOne(ctx, ts[i])
			}
			return
		}
		for _, i := range idx {
			out[i].Err = err
		}
		return
	}
	for _, i := range idx {
		if _, ok := inserted[ts[i].ID]; !ok {
			out[i].Err = task.ErrConflict
		}
	}
}

// insertArgs are the arguments of insertTask for t.
func insertArgs(t *task.Task) []any {
	wState, wTries, wStatus, wErr, wAt := webhookArgs(t)
	return []any{t.ID, t.Code, t.Prompt, t.Timeout, string(t.Status), t.WorkerID, jsonArg(t.Result), t.ErrorMessage,
		t.Attempts, t.ExecutionTime, utc(t.CreatedAt), utc(t.UpdatedAt), utcPtr(t.StartedAt), utcPtr(t.CompletedAt), t.Sanitized,
		priorityArg(t.Priority), jsonArg(t.Metadata), t.Owner, t.CallbackURL, t.Retries, t.AttemptOffset,
		wState, wTries, wStatus, wErr, wAt}
}

// insertOne inserts one task in its own statement. Create wraps its error.
func (s *Store) insertOne(ctx context.Context, t *task.Task) error {
	_, err := s.pool.Exec(ctx, insertTask, insertArgs(t)...)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
			return task.ErrConflict
		}
		return err
	}
	return nil
}

// insertMany inserts ts[i] for i in idx in one statement and returns the
// ids it inserted. Create wraps its error.
func (s *Store) insertMany(ctx context.Context, ts []*task.Task, idx []int) (map[uuid.UUID]struct{}, error) {
	n := len(idx)
	var (
		ids         = make([]uuid.UUID, n)
		codes       = make([]string, n)
		prompts     = make([]string, n)
		timeouts    = make([]int64, n)
		statuses    = make([]string, n)
		workerIDs   = make([]*string, n)
		results     = make([]*string, n)
		errMsgs     = make([]*string, n)
		attempts    = make([]int32, n)
		execTimes   = make([]*int64, n)
		createdAts  = make([]time.Time, n)
		updatedAts  = make([]time.Time, n)
		startedAts  = make([]*time.Time, n)
		completeAts = make([]*time.Time, n)
		sanitized   = make([]bool, n)
		priorities  = make([]*int32, n)
		metadatas   = make([]*string, n)
		owners      = make([]string, n)
		callbacks   = make([]*string, n)
		retries     = make([]int32, n)
		offsets     = make([]int32, n)
		wStates     = make([]*string, n)
		wTries      = make([]int32, n)
		wStatuses   = make([]*int32, n)
		wErrors     = make([]*string, n)
		wAts        = make([]*time.Time, n)
	)
	for k, i := range idx {
		t := ts[i]
		ids[k], codes[k], prompts[k], timeouts[k], statuses[k] = t.ID, t.Code, t.Prompt, t.Timeout, string(t.Status)
		workerIDs[k], errMsgs[k], attempts[k], execTimes[k] = t.WorkerID, t.ErrorMessage, int32(t.Attempts), t.ExecutionTime
		if len(t.Result) > 0 {
			r := string(t.Result)
			results[k] = &r
		}
		createdAts[k], updatedAts[k] = utc(t.CreatedAt), utc(t.UpdatedAt)
		startedAts[k], completeAts[k] = utcPtr(t.StartedAt), utcPtr(t.CompletedAt)
		sanitized[k] = t.Sanitized
		priorities[k], owners[k], callbacks[k] = priorityArg(t.Priority), t.Owner, t.CallbackURL
		if len(t.Metadata) > 0 {
			m := string(t.Metadata)
			metadatas[k] = &m
		}
		retries[k], offsets[k] = int32(t.Retries), int32(t.AttemptOffset)
		wStates[k], wTries[k], wStatuses[k], wErrors[k], wAts[k] = webhookArgs(t)
	}
	rows, err := s.pool.Query(ctx, insertTasks, ids, codes, prompts, timeouts, statuses, workerIDs, results, errMsgs,
		attempts, execTimes, createdAts, updatedAts, startedAts, completeAts, sanitized,
		priorities, metadatas, owners, callbacks, retries, offsets, wStates, wTries, wStatuses, wErrors, wAts)
	if err != nil {
		return nil, err
	}
	inserted := make(map[uuid.UUID]struct{}, n)
	var id uuid.UUID
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
		inserted[id] = struct{}{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return inserted, nil
}

// CreateIdempotent inserts t and claims k for it in one transaction, unless
// an unexpired key holds k (see task.Store). The key's primary key makes
// concurrent claims of one key wait for each other: the first commits,
// the others see its key and return its task.
func (s *Store) CreateIdempotent(ctx context.Context, t *task.Task, k task.IdempotencyKey, expiredBefore time.Time) (*task.Task, bool, error) {
	created, err := s.claimAndInsert(ctx, t, k, expiredBefore)
	if err != nil {
		return nil, false, fmt.Errorf("create task %s with idempotency key: %w", t.ID, err)
	}
	if created {
		return t, true, nil
	}
	var (
		hash   []byte
		holder uuid.UUID
	)
	if err := s.pool.QueryRow(ctx, selectKey, k.Owner, k.Key).Scan(&hash, &holder); err != nil {
		if errors.Is(err, pgx.ErrNoRows) { // purged meanwhile: the caller may try again
			err = task.ErrConflict
		}
		return nil, false, fmt.Errorf("read idempotency key: %w", err)
	}
	if !bytes.Equal(hash, k.Hash[:]) {
		return nil, false, task.ErrIdempotencyMismatch
	}
	held, err := s.Get(ctx, holder)
	if err != nil {
		return nil, false, err
	}
	return held, false, nil
}

// claimAndInsert inserts t and claims k in one transaction and reports
// whether it did; false (nothing written) when an unexpired key holds k.
func (s *Store) claimAndInsert(ctx context.Context, t *task.Task, k task.IdempotencyKey, expiredBefore time.Time) (bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, insertTask, insertArgs(t)...); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return false, task.ErrConflict
		}
		return false, err
	}
	var claimed uuid.UUID
	err = tx.QueryRow(ctx, claimKey, k.Owner, k.Key, k.Hash[:], t.ID, utc(k.CreatedAt), utc(expiredBefore)).Scan(&claimed)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

// PurgeIdempotencyKeys deletes the keys created before before.
func (s *Store) PurgeIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, purgeKeys, utc(before))
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}
