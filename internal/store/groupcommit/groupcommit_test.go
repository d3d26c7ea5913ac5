package groupcommit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/store/groupcommit"
)

var errOdd = errors.New("odd")

// TestOutcomes: every caller gets its own outcome, calls are batched while
// one batch is in flight, and no batch exceeds Max.
func TestOutcomes(t *testing.T) {
	var (
		mu      sync.Mutex
		sizes   []int
		flushed = map[int]int{}
	)
	b := &groupcommit.Batcher[int, string]{Max: 8}
	b.Flush = func(ctx context.Context, in []int, out []groupcommit.Result[string]) {
		mu.Lock()
		sizes = append(sizes, len(in))
		for _, v := range in {
			flushed[v]++
		}
		mu.Unlock()
		time.Sleep(time.Millisecond) // a slow write, so that callers queue up
		for i, v := range in {
			if v%2 == 1 {
				out[i].Err = fmt.Errorf("value %d: %w", v, errOdd)
			} else {
				out[i].Val = fmt.Sprint(v)
			}
		}
	}
	const n = 400
	var wg sync.WaitGroup
	for v := range n {
		wg.Go(func() {
			got, err := b.Do(t.Context(), v)
			if v%2 == 1 && !errors.Is(err, errOdd) || v%2 == 0 && (err != nil || got != fmt.Sprint(v)) {
				t.Errorf("Do(%d) = %q, %v", v, got, err)
			}
		})
	}
	wg.Wait()
	if len(flushed) != n {
		t.Fatalf("%d values flushed, want %d", len(flushed), n)
	}
	for v, k := range flushed {
		if k != 1 {
			t.Fatalf("value %d flushed %d times", v, k)
		}
	}
	largest := 0
	for _, s := range sizes {
		if s > 8 {
			t.Fatalf("batch of %d > Max 8", s)
		}
		largest = max(largest, s)
	}
	if largest < 2 {
		t.Fatalf("no batching: batch sizes %v", sizes)
	}
}

// TestCancel: a caller that gives up while queued is not written and does
// not disturb the batch in flight or the callers after it.
func TestCancel(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	var mu sync.Mutex
	var written []int
	b := &groupcommit.Batcher[int, struct{}]{}
	b.Flush = func(ctx context.Context, in []int, out []groupcommit.Result[struct{}]) {
		started <- struct{}{}
		<-release
		mu.Lock()
		written = append(written, in...)
		mu.Unlock()
	}
	first := make(chan error, 1)
	leaderCtx, cancelLeader := context.WithCancel(t.Context())
	go func() { _, err := b.Do(leaderCtx, 1); first <- err }()
	<-started // batch {1} in flight

	ctx, cancel := context.WithCancel(t.Context())
	queuedErr := make(chan error, 1)
	go func() { _, err := b.Do(ctx, 2); queuedErr <- err }()
	third := make(chan error, 1)
	go func() { _, err := b.Do(t.Context(), 3); third <- err }()
	cancel()
	if err := <-queuedErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled queued call: err = %v, want context.Canceled", err)
	}
	cancelLeader() // the leader's batch is not aborted by its own cancellation
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("leader: %v", err)
	}
	if err := <-third; err != nil {
		t.Fatalf("call after the cancelled one: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, v := range written {
		if v == 2 {
			t.Fatalf("cancelled call was written: %v", written)
		}
	}
	if len(written) != 2 {
		t.Fatalf("written %v, want 1 and 3", written)
	}
}

// TestFlushContext: the batch context ends only when every caller in the
// batch has given up.
func TestFlushContext(t *testing.T) {
	inFlight := make(chan context.Context, 1)
	b := &groupcommit.Batcher[int, struct{}]{}
	b.Flush = func(ctx context.Context, in []int, out []groupcommit.Result[struct{}]) {
		inFlight <- ctx
		<-ctx.Done()
		for i := range out {
			out[i].Err = ctx.Err()
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { _, err := b.Do(ctx, 1); errc <- err }()
	fctx := <-inFlight
	if fctx.Err() != nil {
		t.Fatal("batch context ended before its caller gave up")
	}
	cancel()
	select {
	case <-fctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("batch context did not end after its only caller gave up")
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// TestCancelStress: callers giving up at random moments (queued, designated
// leader, in flight) never block the others, and a call reported done was
// flushed exactly once.
func TestCancelStress(t *testing.T) {
	var mu sync.Mutex
	flushed := map[int]int{}
	b := &groupcommit.Batcher[int, int]{Max: 16}
	b.Flush = func(ctx context.Context, in []int, out []groupcommit.Result[int]) {
		mu.Lock()
		for _, v := range in {
			flushed[v]++
		}
		mu.Unlock()
		time.Sleep(200 * time.Microsecond) // a write in flight
		for i, v := range in {
			out[i].Val = v
		}
	}
	const n = 2000
	results := make([]error, n)
	var wg sync.WaitGroup
	for v := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), time.Duration(v%7)*time.Millisecond)
			defer cancel()
			got, err := b.Do(ctx, v)
			if err == nil && got != v {
				t.Errorf("Do(%d) = %d", v, got)
			}
			results[v] = err
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("callers still blocked after 30s")
	}
	ok := 0
	for v, err := range results {
		switch {
		case err == nil:
			ok++
			if flushed[v] != 1 {
				t.Fatalf("call %d succeeded but was flushed %d times", v, flushed[v])
			}
		case !errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("call %d: err = %v", v, err)
		case flushed[v] > 1:
			t.Fatalf("call %d flushed %d times", v, flushed[v])
		}
	}
	if ok == 0 {
		t.Fatal("no call succeeded")
	}
	t.Logf("%d of %d calls succeeded", ok, n)
}
