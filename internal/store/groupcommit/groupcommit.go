// Package groupcommit gathers concurrent calls into batches, so that a
// store writes many rows in one transaction (one WAL flush) instead of one
// transaction per call.
//
// It starts no goroutine: the first caller that finds no batch in flight
// becomes the leader and runs the batch in its own goroutine; the callers
// that arrive meanwhile queue up, and when the batch returns the leader
// hands over to the oldest of them, which runs the next batch with
// everything queued by then. There is no artificial delay: a lone caller
// runs its batch of one at once.
package groupcommit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
)

// DefaultMax is the batch size cap when Batcher.Max is 0.
const DefaultMax = 256

// Result is the outcome of one call in a batch.
type Result[R any] struct {
	Val R
	Err error
}

// Batcher gathers concurrent Do calls into batches run by Flush. Its zero
// value with Flush set is ready to use; it must not be copied after first
// use. It is safe for concurrent use.
type Batcher[T, R any] struct {
	// Max caps the number of calls in one batch. Defaults to DefaultMax.
	Max int
	// Flush runs one batch: it sets out[i] to the outcome of in[i]; len(in)
	// is at least 1. ctx carries the values of the leader's context and is
	// cancelled only once every caller in the batch has given up. Flush must
	// give each call its own outcome: one call's failure (a duplicate key)
	// must not fail the others.
	Flush func(ctx context.Context, in []T, out []Result[R])

	mu      sync.Mutex
	queue   []*call[T, R] // waiting calls, oldest first; queue[0] may be the designated leader
	leading bool          // a leader exists (running a batch or designated); false ⇒ queue is empty
}

type state uint8

const (
	queued state = iota // in b.queue, waiting
	leader              // in b.queue, told to run the next batch
	taken               // in a batch in flight
	done                // out is set
)

type call[T, R any] struct {
	ctx   context.Context
	in    T
	out   Result[R]
	state state         // guarded by Batcher.mu
	wake  chan struct{} // buffered 1: sent once, when state becomes leader or done
}

// Do adds in to the next batch and returns its outcome. When ctx ends
// before the batch that holds in starts, Do returns ctx.Err() and in is not
// written; when it ends while that batch is in flight, Do returns ctx.Err()
// at once and the write may or may not happen, as with any cancelled
// database call. A caller that leads a batch returns when that batch does.
func (b *Batcher[T, R]) Do(ctx context.Context, in T) (R, error) {
	if err := ctx.Err(); err != nil {
		var zero R
		return zero, err
	}
	c := &call[T, R]{ctx: ctx, in: in, wake: make(chan struct{}, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	if !b.leading {
		b.leading = true
		c.state = leader
		b.mu.Unlock()
		b.lead()
		return c.out.Val, c.out.Err
	}
	b.mu.Unlock()

	select {
	case <-c.wake:
	case <-ctx.Done():
		b.mu.Lock()
		switch c.state {
		case queued:
			b.remove(c)
			b.mu.Unlock()
			var zero R
			return zero, ctx.Err()
		case leader:
			b.remove(c)
			b.handOff()
			b.mu.Unlock()
			var zero R
			return zero, ctx.Err()
		case taken:
			b.mu.Unlock()
			var zero R
			return zero, ctx.Err()
		}
		b.mu.Unlock() // done: the outcome is known, report it
		<-c.wake
	}
	b.mu.Lock()
	st := c.state
	b.mu.Unlock()
	if st == leader {
		b.lead()
	}
	return c.out.Val, c.out.Err
}

// lead runs one batch: the oldest queued calls, up to Max, the caller's own
// call (queue[0]) among them; then it hands over to the next waiting call.
func (b *Batcher[T, R]) lead() {
	limit := b.Max
	if limit <= 0 {
		limit = DefaultMax
	}
	b.mu.Lock()
	n := min(len(b.queue), limit)
	batch := make([]*call[T, R], 0, n)
	for _, c := range b.queue[:n] {
		if c.ctx.Err() != nil { // gave up before its batch started: not written
			c.out.Err = c.ctx.Err()
			c.state = done
			c.wake <- struct{}{}
			continue
		}
		c.state = taken
		batch = append(batch, c)
	}
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	b.mu.Unlock()

	flushed := false
	defer func() {
		b.mu.Lock()
		for _, c := range batch {
			if !flushed { // Flush panicked: fail the batch, let the others go on
				c.out = Result[R]{Err: errFlushPanicked}
			}
			c.state = done
			c.wake <- struct{}{}
		}
		b.handOff()
		b.mu.Unlock()
	}()
	if len(batch) > 0 {
		b.flush(batch)
	}
	flushed = true
}

var errFlushPanicked = errors.New("groupcommit: the batch's Flush panicked")

// flush runs Flush on batch with a context that ends when every caller in
// the batch has given up.
func (b *Batcher[T, R]) flush(batch []*call[T, R]) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(batch[0].ctx))
	defer cancel()
	var live atomic.Int64
	live.Store(int64(len(batch)))
	in := make([]T, len(batch))
	out := make([]Result[R], len(batch))
	stops := make([]func() bool, len(batch))
	for i, c := range batch {
		in[i] = c.in
		stops[i] = context.AfterFunc(c.ctx, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		})
	}
	b.Flush(ctx, in, out)
	for i, c := range batch {
		stops[i]()
		c.out = out[i]
	}
}

// handOff makes the oldest waiting call the leader, or records that there
// is none. b.mu must be held.
func (b *Batcher[T, R]) handOff() {
	if len(b.queue) == 0 {
		b.leading = false
		return
	}
	next := b.queue[0]
	next.state = leader
	next.wake <- struct{}{}
}

// remove deletes c from the queue. b.mu must be held.
func (b *Batcher[T, R]) remove(c *call[T, R]) {
	for i, q := range b.queue {
		if q == c {
			b.queue = slices.Delete(b.queue, i, i+1)
			return
		}
	}
}
