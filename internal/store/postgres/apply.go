package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/agentorch/orchestrator/internal/store/groupcommit"
	"github.com/agentorch/orchestrator/internal/task"
)

// applyArgs is one Apply call: the change and its resolved time and
// allowed statuses.
type applyArgs struct {
	c    task.Change
	at   time.Time
	from []string
}

// Apply applies c in one conditional UPDATE and returns the task as it is
// afterwards. When c does not apply it changes nothing and returns
// task.ErrNotFound (no such task) or task.ErrConflict; data the server
// refuses gives task.ErrInvalidData (see dataError). A zero c.At means
// now. Concurrent calls are written together (group commit): the calls
// that arrive while a batch is being written send their UPDATEs in one
// pipeline and one transaction, so they share one round trip and one WAL
// flush; changes to the same task run in arrival order, each seeing the
// effect of the one before, exactly as if they ran one after the other.
func (s *Store) Apply(ctx context.Context, c task.Change) (*task.Task, error) {
	a := applyArgs{c: c, at: c.At, from: make([]string, len(c.From))}
	if a.at.IsZero() {
		a.at = time.Now()
	}
	for i, f := range c.From {
		a.from[i] = string(f)
	}
	t, err := s.applies.Do(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("set task %s %s: %w", c.ID, c.To, dataError(err))
	}
	return t, nil
}

// applyBatch is the Flush of s.applies. When the batch's transaction fails
// (a constraint, a deadlock with another writer), it runs every change
// again on its own, so that each caller gets the outcome of its own change.
func (s *Store) applyBatch(ctx context.Context, as []applyArgs, out []groupcommit.Result[*task.Task]) {
	if len(as) > 1 {
		err := s.applyMany(ctx, as, out)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) {
			if err != nil {
				for i := range out {
					out[i] = groupcommit.Result[*task.Task]{Err: err}
				}
			}
			return
		}
		clear(out)
	}
	for i, a := range as {
		out[i].Val, out[i].Err = s.applyOne(ctx, a)
	}
}

// applyMany sends the changes' UPDATEs in one pipeline, one implicit
// transaction, changes to one task in arrival order, so each sees the
// effect of the ones before it.
// (One statement per change keeps each an index lookup by id; a multi-row
// UPDATE ... FROM unnest(...) risks a cached generic plan that scans the
// table.) Then it tells, for the changes that did not apply, a missing task
// from a conflict. It returns an error, and sets no outcome, when the
// transaction failed.
func (s *Store) applyMany(ctx context.Context, as []applyArgs, out []groupcommit.Result[*task.Task]) error {
	// Lock rows in id order, so that concurrent batches (other replicas)
	// never deadlock; the stable sort keeps the order of changes to one task.
	order := make([]int, len(as))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return bytes.Compare(as[i].c.ID[:], as[j].c.ID[:]) })
	b := &pgx.Batch{}
	for _, i := range order {
		b.Queue(updateTask, updateArgs(as[i])...)
	}
	br := s.pool.SendBatch(ctx, b)
	var errs []error
	for _, i := range order {
		t, err := scanTask(br.QueryRow())
		switch {
		case err == nil:
			out[i].Val = t
		case errors.Is(err, pgx.ErrNoRows):
		default:
			errs = append(errs, err)
		}
	}
	errs = append(errs, br.Close())
	if err := errors.Join(errs...); err != nil {
		var pgErr *pgconn.PgError
		for _, e := range errs { // report the server's error, if any, for the fallback
			if errors.As(e, &pgErr) {
				return e
			}
		}
		return err
	}
	var missed []uuid.UUID // ids of the changes that did not apply
	for i, a := range as {
		if out[i].Val == nil {
			missed = append(missed, a.c.ID)
		}
	}
	if len(missed) == 0 {
		return nil
	}
	found := make(map[uuid.UUID]struct{}, len(missed))
	rows, err := s.pool.Query(ctx, existingTasks, missed)
	if err == nil {
		var id uuid.UUID
		_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
			found[id] = struct{}{}
			return nil
		})
	}
	for i, a := range as {
		if out[i].Val != nil {
			continue
		}
		switch _, ok := found[a.c.ID]; {
		case err != nil:
			out[i].Err = err
		case ok:
			out[i].Err = task.ErrConflict
		default:
			out[i].Err = task.ErrNotFound
		}
	}
	return nil
}

// applyOne applies one change in its own statement. Apply wraps its error.
func (s *Store) applyOne(ctx context.Context, a applyArgs) (*task.Task, error) {
	t, err := scanTask(s.pool.QueryRow(ctx, updateTask, updateArgs(a)...))
	if err == nil {
		return t, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, taskExists, a.c.ID).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, task.ErrNotFound
	}
	return nil, task.ErrConflict
}

// updateArgs are the arguments of updateTask for a.
func updateArgs(a applyArgs) []any {
	c := a.c
	return []any{c.ID, string(c.To), a.from, c.Attempts, c.WorkerID, jsonArg(c.Result), c.ErrorMessage,
		c.ExecutionTime, utcPtr(c.StartedAt), utcPtr(c.CompletedAt), utc(a.at), int(c.Guard), c.Sanitized, c.NewRun, c.Notify}
}
