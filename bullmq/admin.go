package bullmq

import (
	"context"
	"fmt"
	"time"
)

// scriptInt runs s and returns its integer reply.
func (q *Queue) scriptInt(ctx context.Context, s *script, keys []string, args ...any) (int64, error) {
	return s.run(ctx, q.client, keys, args...).Int64()
}

// Remove removes job id from whatever state it is in, with its logs and
// other keys, and emits "removed". It fails with ErrJobNotFound when the
// job does not exist, ErrJobLocked when a worker holds it (an active job),
// and ErrJobBelongsToScheduler for the current iteration of a job scheduler.
func (q *Queue) Remove(ctx context.Context, id string) error {
	if err := q.checkOpen("remove"); err != nil {
		return err
	}
	k := q.keys
	code, err := q.scriptInt(ctx, q.scripts().remove,
		[]string{k.job(id), k.lock(id), k.events, k.meta, k.active, k.wait, k.paused, k.delayed, k.prioritized, k.completed, k.failed, k.waitingChildren},
		k.base, id)
	if err != nil {
		return fmt.Errorf("remove job %s from queue %s: %w", id, q.name, err)
	}
	return scriptError("remove from queue "+q.name, id, code)
}

// cleanBatch is the most jobs one clean script call removes, as in Node.
const cleanBatch = 10000

// Clean removes jobs in state that are older than grace (by finish time for
// completed and failed jobs; otherwise by the first of finishedOn,
// processedOn, timestamp), at most limit of them (0 = no limit), and returns
// their ids. Each script call writes one "cleaned" event with its count, as
// the Node package does. Active jobs that hold a lock are never removed.
// States: completed, failed, delayed, prioritized, waiting, paused, active,
// waiting-children; another state fails with ErrInvalidOptions.
func (q *Queue) Clean(ctx context.Context, grace time.Duration, limit int, state JobState) ([]string, error) {
	if err := q.checkOpen("clean"); err != nil {
		return nil, err
	}
	if limit < 0 || grace < 0 {
		return nil, fmt.Errorf("clean queue %s: %w: negative grace or limit", q.name, ErrInvalidOptions)
	}
	key := q.keys.state(state)
	if key == "" {
		return nil, fmt.Errorf("clean queue %s: %w: unknown state %q", q.name, ErrInvalidOptions, state)
	}
	typ := string(state)
	if state == StateWaiting {
		typ = "wait"
	}
	cutoff := q.now().Add(-grace).UnixMilli()
	var removed []string
	for {
		batch := cleanBatch
		if limit > 0 {
			batch = min(batch, limit-len(removed))
		}
		ids, err := q.scripts().clean.run(ctx, q.client, []string{key, q.keys.events, q.keys.meta},
			q.keys.base, cutoff, batch, typ).StringSlice()
		if err != nil {
			return removed, fmt.Errorf("clean %s jobs of queue %s: %w", state, q.name, err)
		}
		removed = append(removed, ids...)
		if len(ids) < batch || (limit > 0 && len(removed) >= limit) {
			return removed, nil
		}
	}
}

// Pause pauses the queue globally: workers of every BullMQ version (and ours)
// stop taking jobs, and jobs added meanwhile wait. It uses the v5 layout
// (wait list moved to "paused"), which v6 workers also handle; an existing
// "paused" list is merged, never overwritten. It emits "paused".
func (q *Queue) Pause(ctx context.Context) error {
	if err := q.checkOpen("pause"); err != nil {
		return err
	}
	k := q.keys
	if _, err := q.scriptInt(ctx, q.scripts().pause, []string{k.wait, k.paused, k.meta, k.marker, k.events}); err != nil {
		return fmt.Errorf("pause queue %s: %w", q.name, err)
	}
	return nil
}

// Resume resumes a paused queue, whichever client paused it: it clears the
// flag, merges the "paused" list into "wait" without losing ids already in
// wait (the v6 way, safe with v5 data), wakes workers, and emits "resumed".
func (q *Queue) Resume(ctx context.Context) error {
	if err := q.checkOpen("resume"); err != nil {
		return err
	}
	k := q.keys
	if _, err := q.scriptInt(ctx, q.scripts().resume, []string{k.wait, k.paused, k.meta, k.prioritized, k.delayed, k.marker, k.events}); err != nil {
		return fmt.Errorf("resume queue %s: %w", q.name, err)
	}
	return nil
}

// Drain removes every job that has not started: waiting, paused and
// prioritized ones, and delayed ones too when delayed is true. Active,
// completed and failed jobs stay. Current job-scheduler iterations are kept.
func (q *Queue) Drain(ctx context.Context, delayed bool) error {
	if err := q.checkOpen("drain"); err != nil {
		return err
	}
	k := q.keys
	d := ""
	if delayed {
		d = "1"
	}
	if _, err := q.scriptInt(ctx, q.scripts().drain, []string{k.wait, k.paused, k.delayed, k.prioritized}, k.base, d); err != nil {
		return fmt.Errorf("drain queue %s: %w", q.name, err)
	}
	return nil
}

// obliterateBatch is the most jobs one obliterate call deletes.
const obliterateBatch = 1000

// Obliterate pauses the queue and then deletes it completely: every job in
// every state, its schedulers, events, counters and meta. Without force it
// fails with ErrActiveJobs while jobs are active (the queue stays paused).
// Deduplication keys ("de:*") are left, as in the Node package. Meant for
// tests and admin tools.
func (q *Queue) Obliterate(ctx context.Context, force bool) error {
	if err := q.Pause(ctx); err != nil {
		return fmt.Errorf("obliterate: %w", err)
	}
	k := q.keys
	keyList := []string{k.meta, k.active, k.delayed, k.wait, k.paused, k.prioritized, k.completed, k.failed,
		k.waitingChildren, k.repeat, k.events, k.id, k.pc, k.marker, k.stalled, k.stalledCheck, k.limiter,
		k.delay, k.metricsComp, k.metricsFail, k.metricsCompData, k.metricsFailData}
	f := ""
	if force {
		f = "1"
	}
	for {
		code, err := q.scriptInt(ctx, q.scripts().obliterate, keyList, k.base, obliterateBatch, f)
		if err != nil {
			return fmt.Errorf("obliterate queue %s: %w", q.name, err)
		}
		if code < 0 {
			return scriptError("obliterate queue "+q.name, "", code)
		}
		if code == 0 {
			q.metaWritten.Store(false)
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("obliterate queue %s: %w", q.name, err)
		}
	}
}
