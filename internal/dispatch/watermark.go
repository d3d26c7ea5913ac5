package dispatch

import "sync"

// watermark tracks events that are applied out of order (by several
// shards) and tells the id of the newest event below which every event
// has been applied: the id that is safe to store as the checkpoint. It is
// safe for concurrent use.
type watermark struct {
	mu      sync.Mutex
	base    uint64 // sequence number of pending[0]
	pending []mark
	applied string // id of the newest event with every earlier event applied
}

type mark struct {
	id   string
	done bool
}

// add records an event that is about to be applied and returns its
// sequence number.
func (w *watermark) add(id string) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, mark{id: id})
	return w.base + uint64(len(w.pending)) - 1
}

// done records that the event with sequence number seq is applied.
func (w *watermark) done(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := seq - w.base
	if seq < w.base || i >= uint64(len(w.pending)) {
		return
	}
	w.pending[i].done = true
	n := 0
	for n < len(w.pending) && w.pending[n].done {
		w.applied = w.pending[n].id
		n++
	}
	if n > 0 {
		w.pending = append(w.pending[:0], w.pending[n:]...)
		w.base += uint64(n)
	}
}

// id returns the checkpoint: every event up to it is applied.
func (w *watermark) id() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.applied
}
