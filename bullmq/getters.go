package bullmq

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// GetJob reads job id. It fails with ErrJobNotFound when the job hash does
// not exist. Every field is parsed with the Node package's rules.
func (q *Queue) GetJob(ctx context.Context, id string) (*Job, error) {
	if err := q.checkOpen("get job"); err != nil {
		return nil, err
	}
	h, err := q.client.HGetAll(ctx, q.keys.job(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("get job %s from queue %s: %w", id, q.name, err)
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("get job %s from queue %s: %w", id, q.name, ErrJobNotFound)
	}
	j, err := parseJob(id, h)
	if err != nil {
		return nil, fmt.Errorf("get job from queue %s: %w", q.name, err)
	}
	j.client, j.keys = q.client, q.keys
	return j, nil
}

// GetJobAttempts returns how many attempts of job id were made (atm, or
// the legacy attemptsMade) and started (ats), with one HMGET that does not
// read the job's data. It fails with ErrJobNotFound when the job hash does
// not exist.
func (q *Queue) GetJobAttempts(ctx context.Context, id string) (made, started int, err error) {
	if err := q.checkOpen("get job attempts"); err != nil {
		return 0, 0, err
	}
	v, err := q.client.HMGet(ctx, q.keys.job(id), "atm", "attemptsMade", "ats", "name").Result()
	if err != nil {
		return 0, 0, fmt.Errorf("get attempts of job %s in queue %s: %w", id, q.name, err)
	}
	if v[3] == nil { // every job hash has a name
		return 0, 0, fmt.Errorf("get attempts of job %s in queue %s: %w", id, q.name, ErrJobNotFound)
	}
	num := func(x any) int {
		s, _ := x.(string)
		n, _ := strconv.Atoi(s)
		return n
	}
	made = num(v[0])
	if v[0] == nil {
		made = num(v[1])
	}
	return made, num(v[2]), nil
}

// GetJobState returns the state of job id, tested in the Node package's
// order: completed, failed, delayed, prioritized, active, waiting (the wait
// list, then the paused list), waiting-children; StateUnknown when the job is
// in none of them (for example when it does not exist). The reads are one
// round trip but not atomic, which is fine for reporting.
func (q *Queue) GetJobState(ctx context.Context, id string) (JobState, error) {
	if err := q.checkOpen("get job state"); err != nil {
		return StateUnknown, err
	}
	k := q.keys
	var (
		zs  []*redis.FloatCmd
		pos []*redis.IntCmd
		wc  *redis.FloatCmd
	)
	_, err := q.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, key := range []string{k.completed, k.failed, k.delayed, k.prioritized} {
			zs = append(zs, p.ZScore(ctx, key, id))
		}
		for _, key := range []string{k.active, k.wait, k.paused} {
			pos = append(pos, p.LPos(ctx, key, id, redis.LPosArgs{}))
		}
		wc = p.ZScore(ctx, k.waitingChildren, id)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return StateUnknown, fmt.Errorf("get state of job %s in queue %s: %w", id, q.name, err)
	}
	zStates := []JobState{StateCompleted, StateFailed, StateDelayed, StatePrioritized}
	for i, c := range zs {
		if c.Err() == nil {
			return zStates[i], nil
		}
	}
	lStates := []JobState{StateActive, StateWaiting, StateWaiting}
	for i, c := range pos {
		if c.Err() == nil {
			return lStates[i], nil
		}
	}
	if wc.Err() == nil {
		return StateWaitingChildren, nil
	}
	return StateUnknown, nil
}

// GetJobCounts returns the number of jobs in each of states (all of
// AllStates when none are given), read in one round trip. As in the Node
// package (v5), while the queue is paused its waiting jobs are counted under
// StatePaused. It fails with ErrInvalidOptions for a state that has no key
// (such as StateUnknown).
func (q *Queue) GetJobCounts(ctx context.Context, states ...JobState) (map[JobState]int64, error) {
	if err := q.checkOpen("get job counts"); err != nil {
		return nil, err
	}
	if len(states) == 0 {
		states = AllStates
	}
	for _, s := range states {
		if q.keys.state(s) == "" {
			return nil, fmt.Errorf("get job counts of queue %s: %w: unknown state %q", q.name, ErrInvalidOptions, s)
		}
	}
	cmds := make([]*redis.IntCmd, len(states))
	_, err := q.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range states {
			key := q.keys.state(s)
			switch s {
			case StateWaiting, StatePaused, StateActive:
				cmds[i] = p.LLen(ctx, key)
			default:
				cmds[i] = p.ZCard(ctx, key)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get job counts of queue %s: %w", q.name, err)
	}
	out := make(map[JobState]int64, len(states))
	for i, s := range states {
		out[s] = cmds[i].Val()
	}
	return out, nil
}

// Count returns the number of jobs that have not run yet: waiting + paused +
// delayed + prioritized + waiting-children, as Node's count().
func (q *Queue) Count(ctx context.Context) (int64, error) {
	m, err := q.GetJobCounts(ctx, StateWaiting, StatePaused, StateDelayed, StatePrioritized, StateWaitingChildren)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, v := range m {
		n += v
	}
	return n, nil
}

// IsPaused reports whether the queue is globally paused (meta "paused"
// exists), the test every BullMQ version uses.
func (q *Queue) IsPaused(ctx context.Context) (bool, error) {
	if err := q.checkOpen("is paused"); err != nil {
		return false, err
	}
	ok, err := q.client.HExists(ctx, q.keys.meta, "paused").Result()
	if err != nil {
		return false, fmt.Errorf("is queue %s paused: %w", q.name, err)
	}
	return ok, nil
}

// Version returns the library version stored in the queue's meta hash by the
// last Queue that started on it (for example "bullmq:5.81.5" or
// "bullmq-go:0.1.0"), or "" when none is stored.
func (q *Queue) Version(ctx context.Context) (string, error) {
	if err := q.checkOpen("get version"); err != nil {
		return "", err
	}
	v, err := q.client.HGet(ctx, q.keys.meta, "version").Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("get version of queue %s: %w", q.name, err)
	}
	return v, nil
}
