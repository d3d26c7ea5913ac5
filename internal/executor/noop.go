package executor

import (
	"context"
	"encoding/json"
)

// Noop is an executor that does no work: it returns {"noop": true} at once.
// It exists to measure the worker and queue overhead in benchmarks.
type Noop struct{}

var _ Executor = Noop{}

var noopResult = json.RawMessage(`{"noop":true}`)

// Run returns at once, or the cause of ctx if it has already ended.
func (Noop) Run(ctx context.Context, in Input) (Output, error) {
	if ctx.Err() != nil {
		return Output{}, stopCause(ctx)
	}
	return Output{Result: noopResult}, nil
}
