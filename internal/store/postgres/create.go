package postgres

import (
	"context"
	"errors"
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

// insertOne inserts one task in its own statement. Create wraps its error.
func (s *Store) insertOne(ctx context.Context, t *task.Task) error {
	_, err := s.pool.Exec(ctx, insertTask,
		t.ID, t.Code, t.Prompt, t.Timeout, string(t.Status), t.WorkerID, jsonArg(t.Result), t.ErrorMessage,
		t.Attempts, t.ExecutionTime, utc(t.CreatedAt), utc(t.UpdatedAt), utcPtr(t.StartedAt), utcPtr(t.CompletedAt), t.Sanitized)
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
	}
	rows, err := s.pool.Query(ctx, insertTasks, ids, codes, prompts, timeouts, statuses, workerIDs, results, errMsgs,
		attempts, execTimes, createdAts, updatedAts, startedAts, completeAts, sanitized)
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
