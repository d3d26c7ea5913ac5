package dispatch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// flakyLoop fails its first runs, then works until ctx ends.
type flakyLoop struct {
	runs  atomic.Int32
	fails int32
}

func (l *flakyLoop) Run(ctx context.Context) error {
	if l.runs.Add(1) <= l.fails {
		return errors.New("boom")
	}
	<-ctx.Done()
	return nil
}

// TestSuperviseRestartsFailedLoop: a loop that stops with an error is run
// again after RestartDelay, and supervise returns once ctx ends.
func TestSuperviseRestartsFailedLoop(t *testing.T) {
	d := &Dispatcher{o: Options{RestartDelay: time.Millisecond}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	l := &flakyLoop{fails: 3}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.supervise(ctx, "flaky", l); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for l.runs.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := l.runs.Load(); n != 4 {
		t.Fatalf("loop ran %d times, want 3 failures and a 4th run", n)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("supervise did not return after cancel")
	}
}

func TestNewDispatcherValidates(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled: New does no I/O
	defer client.Close()
	for name, o := range map[string]Options{
		"queue name with ':'":    {Names: taskqueue.Names{Queue: "a:b"}},
		"negative restart delay": {RestartDelay: -time.Second},
		"negative attempts":      {Enqueue: EnqueuerOptions{Attempts: -1}},
	} {
		if _, err := New(client, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("nil client accepted")
	}
	d, err := New(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.names.Tasks() != taskqueue.DefaultQueue || d.o.RestartDelay != 5*time.Second || d.Metrics() != nil {
		t.Errorf("defaults: names %+v, restart delay %s", d.names, d.o.RestartDelay)
	}
	if err := d.Run(context.Background(), nil); err == nil {
		t.Error("Run with a nil service accepted")
	}
	if err := errors.Join(d.Close(), d.Close()); err != nil {
		t.Errorf("Close twice: %v", err)
	}
}
