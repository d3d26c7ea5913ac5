package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/agentorch/orchestrator/internal/store/groupcommit"
	"github.com/agentorch/orchestrator/internal/task"
)

// writeOp is one Create or Apply, run inside the write transaction of its
// batch. It returns the domain errors bare (task.ErrConflict,
// task.ErrNotFound); its caller wraps them.
type writeOp func(ctx context.Context, tx *sql.Tx) (*task.Task, error)

// write runs op in the next write batch (group commit): the Create and
// Apply calls that arrive while a batch is being written share the next
// IMMEDIATE transaction, so one commit serves many of them.
func (s *Store) write(ctx context.Context, op writeOp) (*task.Task, error) {
	return s.writes.Do(ctx, op)
}

// writeBatch is the Flush of s.writes. The ops run one after the other in
// one transaction, as if serially. An op's constraint violation or domain
// error undoes only that op's statement (SQLite's statement rollback) and
// fails only its caller; any other error rolls the batch back and runs
// every op again in a transaction of its own, so that each caller gets the
// outcome of its own op.
func (s *Store) writeBatch(ctx context.Context, ops []writeOp, out []groupcommit.Result[*task.Task]) {
	if len(ops) > 1 {
		if s.tryBatch(ctx, ops, out) {
			return
		}
		clear(out)
	}
	for i, op := range ops {
		out[i].Val, out[i].Err = s.writeAlone(ctx, op)
	}
}

// tryBatch runs ops in one transaction and reports whether their outcomes
// in out are final.
func (s *Store) tryBatch(ctx context.Context, ops []writeOp, out []groupcommit.Result[*task.Task]) bool {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		for i := range out {
			out[i].Err = fmt.Errorf("begin write transaction: %w", err)
		}
		return true
	}
	for i, op := range ops {
		v, err := op(ctx, tx)
		if err != nil && !statementLevel(err) {
			_ = tx.Rollback()
			return false
		}
		out[i] = groupcommit.Result[*task.Task]{Val: v, Err: err}
	}
	if err := tx.Commit(); err != nil {
		_ = tx.Rollback()
		for i := range out {
			out[i] = groupcommit.Result[*task.Task]{Err: fmt.Errorf("commit write transaction: %w", err)}
		}
	}
	return true
}

// writeAlone runs op in a transaction of its own.
func (s *Store) writeAlone(ctx context.Context, op writeOp) (*task.Task, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin write transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	v, err := op(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit write transaction: %w", err)
	}
	return v, nil
}

// statementLevel reports whether err leaves the transaction usable: a
// domain outcome, or a constraint violation, which SQLite undoes by rolling
// back only the failing statement.
func statementLevel(err error) bool {
	if errors.Is(err, task.ErrConflict) || errors.Is(err, task.ErrNotFound) || errors.Is(err, task.ErrIdempotencyMismatch) {
		return true
	}
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}
