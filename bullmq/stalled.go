package bullmq

import (
	"context"
	"fmt"
	"time"
)

// stalledLoop runs the stalled-job check at once and then every
// StalledInterval until ctx ends. The script itself makes sure only one
// worker of the whole fleet (Go or Node) runs it per interval.
func (w *Worker) stalledLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids, err := w.checkStalled(ctx)
		if err != nil {
			w.reportError(err)
		}
		for _, id := range ids {
			w.log.Warn("bullmq: stalled job moved back to wait", "queue", w.keys.queue, "job", id)
			if fn := w.opts.OnStalled; fn != nil {
				id := id
				w.hooks.push(func() { fn(id) })
			}
		}
		t.Reset(w.opts.StalledInterval)
	}
}

// checkStalled runs moveStalledJobsToWait once and returns the ids it moved
// back to wait (none when another worker already checked this interval).
func (w *Worker) checkStalled(ctx context.Context) ([]string, error) {
	k := w.keys
	ids, err := w.moveStalled.run(ctx, w.client,
		[]string{k.stalled, k.wait, k.active, k.stalledCheck, k.meta, k.paused, k.marker, k.events},
		w.opts.MaxStalledCount, k.base, w.opts.Clock().UnixMilli(), w.opts.StalledInterval.Milliseconds(),
	).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("check stalled jobs of queue %s: %w", k.queue, err)
	}
	return ids, nil
}
