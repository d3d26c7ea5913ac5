package bullmq

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// hookQueue runs callbacks on one goroutine, in the order they were queued,
// so that a slow callback never holds up the worker that queued it. The
// queue is unbounded; a panicking callback is logged and skipped.
type hookQueue struct {
	log  *slog.Logger
	mu   sync.Mutex
	q    []func()
	wake chan struct{}
}

func newHookQueue(log *slog.Logger) *hookQueue {
	return &hookQueue{log: log, wake: make(chan struct{}, 1)}
}

// push queues fn; a nil fn is ignored.
func (h *hookQueue) push(fn func()) {
	if fn == nil {
		return
	}
	h.mu.Lock()
	h.q = append(h.q, fn)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// hookCoalesce is how long the hook goroutine lets callbacks gather after a
// busy round before it looks again. While it waits on this timer, push
// wakes nobody, so a busy worker pays one goroutine wake-up per period
// rather than one per job; a callback runs at most this much later.
const hookCoalesce = time.Millisecond

// run calls queued callbacks until stop is closed and the queue is empty.
func (h *hookQueue) run(stop <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		h.mu.Lock()
		batch := h.q
		h.q = nil
		h.mu.Unlock()
		for _, fn := range batch {
			h.call(fn)
		}
		if len(batch) > 0 {
			// Busy: let the next callbacks gather. Drop a wake-up
			// sent meanwhile; the next round takes its callback.
			t.Reset(hookCoalesce)
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
			}
			select {
			case <-h.wake:
			default:
			}
			continue
		}
		select {
		case <-h.wake:
		case <-stop:
			h.mu.Lock()
			empty := len(h.q) == 0
			h.mu.Unlock()
			if empty {
				return
			}
		}
	}
}

func (h *hookQueue) call(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			h.log.Error("bullmq: worker hook panicked", "panic", fmt.Sprint(r))
		}
	}()
	fn()
}
