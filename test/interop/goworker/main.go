// Command goworker runs one bullmq.Worker for the interop suite. It is the Go
// twin of test/node/worker.js: it takes the same JSON config as its only
// argument (without the task mode of the end-to-end tests) and prints the
// same JSON lines (ready, start, done, fail, completed, failed, error, closed)
// on stdout. Durations in the config are in ms, as in Node. It stops
// gracefully on SIGTERM or when stdin closes, and is SIGKILLed by crash tests.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
)

// behave is the per-job behaviour; a job's data.behave overrides the config's.
type behave struct {
	SleepMs       int             `json:"sleepMs,omitempty"`
	Hang          bool            `json:"hang,omitempty"`
	Fail          string          `json:"fail,omitempty"`
	FailAttempts  int             `json:"failAttempts,omitempty"`
	ReturnValue   json.RawMessage `json:"returnValue,omitempty"`
	TrackKey      string          `json:"trackKey,omitempty"`
	Progress      json.RawMessage `json:"progress,omitempty"`
	Log           string          `json:"log,omitempty"`
	Unrecoverable string          `json:"unrecoverable,omitempty"`
}

type limiter struct {
	Max      int `json:"max"`
	Duration int `json:"duration"`
}

type config struct {
	Redis           string   `json:"redis"`
	Queue           string   `json:"queue"`
	Prefix          string   `json:"prefix"`
	Name            string   `json:"name"`
	Concurrency     int      `json:"concurrency"`
	LockDuration    int      `json:"lockDuration"`
	StalledInterval int      `json:"stalledInterval"`
	MaxStalledCount int      `json:"maxStalledCount"`
	DrainDelay      int      `json:"drainDelay"` // seconds, as in Node
	Limiter         *limiter `json:"limiter"`
	Behave          behave   `json:"behave"`
	CloseTimeout    int      `json:"closeTimeoutMs"` // Close deadline on stop, default 5000
}

const trackMax = `local m = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > m then redis.call('SET', KEYS[1], ARGV[1]) end
return m`

// printer writes JSON lines; safe for concurrent use.
type printer struct {
	mu  sync.Mutex
	out io.Writer
}

func (p *printer) emit(v map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"ev":"error","error":%q}`, err.Error()))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.out.Write(append(b, '\n'))
}

func main() {
	out := &printer{out: os.Stdout}
	if err := run(out); err != nil {
		out.emit(map[string]any{"ev": "fatal", "error": err.Error()})
		os.Exit(1)
	}
}

func run(out *printer) error {
	if len(os.Args) < 2 {
		return errors.New("usage: goworker '<json config>'")
	}
	var cfg config
	if err := json.Unmarshal([]byte(os.Args[1]), &cfg); err != nil {
		return fmt.Errorf("parse config: %w", err)
	}
	if cfg.Redis == "" {
		cfg.Redis = "redis://127.0.0.1:6379"
	}
	opt, err := redis.ParseURL(cfg.Redis)
	if err != nil {
		return fmt.Errorf("parse redis url: %w", err)
	}
	client := redis.NewClient(opt)
	defer client.Close()

	// stop is closed on SIGTERM/SIGINT or when stdin closes (the test is
	// done with us): the worker is then closed gracefully with Close.
	stopCtx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	ctx := context.Background()

	process := func(jctx context.Context, job *bullmq.Job) (any, error) {
		b := cfg.Behave
		var data struct {
			Behave *behave `json:"behave"`
		}
		if json.Unmarshal(job.Data, &data) == nil && data.Behave != nil {
			b = *data.Behave
		}
		out.emit(map[string]any{
			"ev": "start", "id": job.ID, "name": job.Name, "data": job.Data,
			"attemptsMade": job.AttemptsMade, "attemptsStarted": job.AttemptsStarted,
			"token": job.Token, "attempt": job.AttemptsMade + 1, "t": time.Now().UnixMilli(),
		})
		if b.TrackKey != "" {
			n, err := client.Incr(jctx, b.TrackKey).Result()
			if err != nil {
				return nil, fmt.Errorf("track: %w", err)
			}
			defer client.Decr(context.WithoutCancel(jctx), b.TrackKey)
			if err := client.Eval(jctx, trackMax, []string{b.TrackKey + ":max"}, n).Err(); err != nil {
				return nil, fmt.Errorf("track max: %w", err)
			}
		}
		if len(b.Progress) > 0 {
			if err := job.UpdateProgress(jctx, b.Progress); err != nil {
				return nil, fmt.Errorf("progress: %w", err)
			}
		}
		if b.Log != "" {
			if err := job.Log(jctx, b.Log); err != nil {
				return nil, fmt.Errorf("log: %w", err)
			}
		}
		if b.Unrecoverable != "" {
			return nil, bullmq.Unrecoverable(errors.New(b.Unrecoverable))
		}
		if b.Hang {
			<-jctx.Done()
			return nil, jctx.Err()
		}
		if b.SleepMs > 0 {
			select {
			case <-time.After(time.Duration(b.SleepMs) * time.Millisecond):
			case <-jctx.Done():
				return nil, jctx.Err()
			}
		}
		if b.Fail != "" {
			return nil, errors.New(b.Fail)
		}
		if b.FailAttempts > 0 && job.AttemptsMade < b.FailAttempts {
			return nil, fmt.Errorf("attempt %d failed", job.AttemptsMade+1)
		}
		if len(b.ReturnValue) > 0 {
			return b.ReturnValue, nil
		}
		return map[string]any{"ok": true, "id": job.ID}, nil
	}
	// processor runs process and reports its end, as worker.js does.
	processor := func(jctx context.Context, job *bullmq.Job) (any, error) {
		rv, err := process(jctx, job)
		if err != nil {
			out.emit(map[string]any{"ev": "fail", "id": job.ID, "attempt": job.AttemptsMade + 1, "reason": err.Error(), "t": time.Now().UnixMilli()})
		} else {
			out.emit(map[string]any{"ev": "done", "id": job.ID, "attempt": job.AttemptsMade + 1, "t": time.Now().UnixMilli()})
		}
		return rv, err
	}

	wo := &bullmq.WorkerOptions{
		Prefix:          cfg.Prefix,
		Name:            cfg.Name,
		Concurrency:     cfg.Concurrency,
		LockDuration:    time.Duration(cfg.LockDuration) * time.Millisecond,
		StalledInterval: time.Duration(cfg.StalledInterval) * time.Millisecond,
		MaxStalledCount: cfg.MaxStalledCount,
		DrainDelay:      time.Duration(cfg.DrainDelay) * time.Second,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnCompleted: func(job *bullmq.Job, result json.RawMessage) {
			out.emit(map[string]any{"ev": "completed", "id": job.ID, "returnvalue": result, "t": time.Now().UnixMilli()})
		},
		OnFailed: func(job *bullmq.Job, err error) {
			out.emit(map[string]any{"ev": "failed", "id": job.ID, "reason": err.Error(), "attemptsMade": job.AttemptsMade, "t": time.Now().UnixMilli()})
		},
		OnError: func(err error) {
			out.emit(map[string]any{"ev": "error", "error": err.Error()})
		},
	}
	if cfg.Limiter != nil {
		wo.Limiter = &bullmq.Limiter{Max: cfg.Limiter.Max, Duration: time.Duration(cfg.Limiter.Duration) * time.Millisecond}
	}
	w, err := bullmq.NewWorker(client, cfg.Queue, processor, wo)
	if err != nil {
		return fmt.Errorf("new worker: %w", err)
	}
	out.emit(map[string]any{"ev": "ready", "t": time.Now().UnixMilli()})
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(ctx) }()
	select {
	case err := <-runErr:
		return fmt.Errorf("run stopped by itself: %w", err)
	case <-stopCtx.Done():
	}
	closeTimeout := 5 * time.Second
	if cfg.CloseTimeout > 0 {
		closeTimeout = time.Duration(cfg.CloseTimeout) * time.Millisecond
	}
	closeCtx, closeCancel := context.WithTimeout(context.Background(), closeTimeout)
	defer closeCancel()
	if err := w.Close(closeCtx); err != nil {
		out.emit(map[string]any{"ev": "error", "error": "close: " + err.Error()})
	}
	if err := <-runErr; err != nil && !errors.Is(err, bullmq.ErrClosed) {
		return fmt.Errorf("run: %w", err)
	}
	out.emit(map[string]any{"ev": "closed"})
	return nil
}
