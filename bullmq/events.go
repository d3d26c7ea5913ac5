package bullmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// EventType is the "event" field of an events-stream entry.
type EventType string

// Event types written by BullMQ clients. Any other name (custom events of a
// QueueEventsProducer, for example) is passed through as is. Each constant
// says which Event fields that type sets besides ID, Time, Type and Fields.
const (
	// EventAdded is written when a job is stored (JobID, Name), whatever
	// state it goes to.
	EventAdded EventType = "added"
	// EventWaiting is written when a job becomes runnable (JobID; Prev on a
	// promotion, retry or stall).
	EventWaiting EventType = "waiting"
	// EventActive is written when a worker takes a job (JobID, Prev).
	EventActive EventType = "active"
	// EventProgress is written by a progress update (JobID, Data).
	EventProgress EventType = "progress"
	// EventCompleted is written when a job completes (JobID, ReturnValue,
	// Prev).
	EventCompleted EventType = "completed"
	// EventFailed is written when a job fails for good (JobID,
	// FailedReason, Prev); a failed attempt that will be retried writes none.
	EventFailed EventType = "failed"
	// EventDelayed is written for a delayed add or a retry with backoff
	// (JobID, Delay: the absolute due time).
	EventDelayed EventType = "delayed"
	// EventStalled is written when the stalled checker takes a job back
	// (JobID).
	EventStalled EventType = "stalled"
	// EventRetriesExhausted is written with the final "failed" of a job
	// whose attempts are used up (JobID, AttemptsMade).
	EventRetriesExhausted EventType = "retries-exhausted"
	// EventRemoved is written when a job is removed on request (JobID,
	// Prev: the state it was in); Clean and retention write none.
	EventRemoved EventType = "removed"
	// EventDrained is written after a finish that leaves nothing to run
	// (no field).
	EventDrained EventType = "drained"
	// EventCleaned is written once per clean batch (Count).
	EventCleaned EventType = "cleaned"
	// EventPaused is written by a global pause (no field).
	EventPaused EventType = "paused"
	// EventResumed is written by a global resume (no field).
	EventResumed EventType = "resumed"
	// EventDuplicated is written when an add names a custom job id that
	// already exists (JobID); nothing is added.
	EventDuplicated EventType = "duplicated"
	// EventDeduplicated is written on a deduplication hit (JobID: the job
	// kept, DeduplicationID, DeduplicatedJobID: the job dropped).
	EventDeduplicated EventType = "deduplicated"
	// EventDebounced is BullMQ 5's deprecated twin of EventDeduplicated
	// (JobID, DeduplicationID).
	EventDebounced EventType = "debounced"
	// EventWaitingChildren is written when a flow parent starts waiting
	// for its children (JobID).
	EventWaitingChildren EventType = "waiting-children"
)

// Event is one decoded entry of a queue's events stream. Only the fields the
// event type carries are set; Fields always holds every raw field.
type Event struct {
	// ID is the stream entry id ("<ms>-<seq>"); it can be given back as
	// QueueEventsOptions.LastID to resume after this event.
	ID string
	// Time is the time encoded in ID (when Redis stored the event).
	Time time.Time
	// Type is the event name.
	Type EventType
	// JobID is the job the event is about ("" for drained, paused, …).
	JobID string
	// Name is the job name (added).
	Name string
	// Prev is the previous state (waiting, active, removed, …).
	Prev string
	// ReturnValue is the JSON text of the result (completed); a value that
	// is not JSON is given as a JSON string.
	ReturnValue json.RawMessage
	// FailedReason is the error message (failed).
	FailedReason string
	// AttemptsMade is the attempt count (retries-exhausted).
	AttemptsMade int
	// Delay is when the job is due (delayed); the stream stores an absolute
	// ms time, not the relative delay.
	Delay time.Time
	// Data is the JSON text of the progress (progress).
	Data json.RawMessage
	// Count is the number of jobs removed (cleaned).
	Count int
	// DeduplicationID is the deduplication id (deduplicated, debounced).
	DeduplicationID string
	// DeduplicatedJobID is the id of the job that was dropped (deduplicated).
	DeduplicatedJobID string
	// Fields are the raw fields of the entry, "event" included.
	Fields map[string]string
}

// decodeEvent turns a stream entry into an Event.
func decodeEvent(msg redis.XMessage) Event {
	f := make(map[string]string, len(msg.Values))
	for k, v := range msg.Values {
		switch s := v.(type) {
		case string:
			f[k] = s
		default:
			f[k] = fmt.Sprint(v)
		}
	}
	ev := Event{
		ID:     msg.ID,
		Type:   EventType(f["event"]),
		JobID:  f["jobId"],
		Name:   f["name"],
		Prev:   f["prev"],
		Fields: f,
	}
	if ms, _, ok := strings.Cut(msg.ID, "-"); ok {
		if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
			ev.Time = time.UnixMilli(n)
		}
	}
	if v, ok := f["returnvalue"]; ok {
		ev.ReturnValue = jsonOrString(v)
	}
	if v, ok := f["data"]; ok {
		ev.Data = jsonOrString(v)
	}
	ev.FailedReason = f["failedReason"]
	if v, ok := f["attemptsMade"]; ok {
		ev.AttemptsMade = int(intField(v))
	}
	if v, ok := f["delay"]; ok {
		if n := intField(v); n > 0 {
			ev.Delay = time.UnixMilli(n)
		}
	}
	if v, ok := f["count"]; ok {
		ev.Count = int(intField(v))
	}
	ev.DeduplicationID = f["deduplicationId"]
	if ev.DeduplicationID == "" {
		ev.DeduplicationID = f["debounceId"]
	}
	ev.DeduplicatedJobID = f["deduplicatedJobId"]
	return ev
}

// QueueEventsOptions configure QueueEvents. The zero value is valid.
type QueueEventsOptions struct {
	// Prefix is the key prefix. Defaults to "bull".
	Prefix string
	// LastID is the stream id to read after: "$" (the default) reads only
	// events added after Run starts; "0" reads the whole stream; the ID of
	// an Event resumes right after it.
	LastID string
	// BlockTimeout is how long one XREAD blocks. Defaults to 5s. With a
	// client type that has no dedicated connection (see NewQueueEvents) it
	// also bounds how long Run takes to stop.
	BlockTimeout time.Duration
	// BatchSize is how many events one XREAD returns at most. Defaults to 100.
	BatchSize int
	// RetryDelay is the first wait after a Redis error or an error from the
	// handler; it doubles up to MaxRetryDelay. Defaults to 100ms.
	RetryDelay time.Duration
	// MaxRetryDelay caps RetryDelay's doubling. Defaults to 5s, or to
	// RetryDelay when that is longer. A MaxRetryDelay set below RetryDelay
	// is refused with ErrInvalidOptions.
	MaxRetryDelay time.Duration
	// Logger receives reconnect and handler-error diagnostics. Defaults to a
	// logger that discards.
	Logger *slog.Logger
}

// QueueEvents reads a queue's events stream ("P:Q:events") with blocking
// XREAD, like the official QueueEvents, and hands each event to a function.
// It reads on its own connection: for a *redis.Client (single node or
// Sentinel) or a *redis.ClusterClient it opens a dedicated client with the
// options the client had when NewQueueEvents was called (copied then, so
// that the live client is never read concurrently) and a pool of one, named
// "P:<base64(Q)>:qe" as Node names it, so blocking reads never take
// connections from the shared pool; for other
// client types it reads through the given client. Missed events are never
// skipped while Run runs: it resumes from the last accepted id after
// reconnecting, and a gap left by stream trimming is simply passed over.
type QueueEvents struct {
	client redis.UniversalClient
	keys   *keys
	opts   QueueEventsOptions
	log    *slog.Logger
	// single and cluster are the options of the dedicated reader client,
	// copied from client's at construction (at most one is set).
	single  *redis.Options
	cluster *redis.ClusterOptions

	running atomic.Bool
	mu      sync.Mutex
	lastID  string
}

// NewQueueEvents returns a QueueEvents for queue name. It does no I/O; Run
// starts reading. It fails with ErrInvalidOptions for an empty name, a nil
// client or negative durations.
func NewQueueEvents(client redis.UniversalClient, name string, opts *QueueEventsOptions) (*QueueEvents, error) {
	if client == nil {
		return nil, fmt.Errorf("new queue events %q: %w: nil client", name, ErrInvalidOptions)
	}
	if name == "" {
		return nil, fmt.Errorf("new queue events: %w: empty queue name", ErrInvalidOptions)
	}
	var o QueueEventsOptions
	if opts != nil {
		o = *opts
	}
	if o.BlockTimeout < 0 || o.RetryDelay < 0 || o.MaxRetryDelay < 0 || o.BatchSize < 0 {
		return nil, fmt.Errorf("new queue events %q: %w: negative option", name, ErrInvalidOptions)
	}
	if o.MaxRetryDelay != 0 && o.MaxRetryDelay < o.RetryDelay {
		return nil, fmt.Errorf("new queue events %q: %w: MaxRetryDelay %s is below RetryDelay %s",
			name, ErrInvalidOptions, o.MaxRetryDelay, o.RetryDelay)
	}
	if o.LastID == "" {
		o.LastID = "$"
	}
	if o.BlockTimeout == 0 {
		o.BlockTimeout = 5 * time.Second
	}
	if o.BatchSize == 0 {
		o.BatchSize = 100
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = 100 * time.Millisecond
	}
	if o.MaxRetryDelay == 0 {
		o.MaxRetryDelay = max(5*time.Second, o.RetryDelay)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e := &QueueEvents{
		client: client,
		keys:   newKeys(o.Prefix, name),
		opts:   o,
		log:    o.Logger.With("queue", name, "component", "queue-events"),
		lastID: o.LastID,
	}
	connName := e.keys.connName(":qe")
	switch c := client.(type) {
	case *redis.Client:
		e.single = dedicatedOptions(c.Options(), connName)
	case *redis.ClusterClient:
		e.cluster = dedicatedClusterOptions(c.Options(), connName)
	}
	return e, nil
}

// LastID returns the stream id of the last event the handler accepted, or
// the starting id (LastID option, "$" by default) before the first one. It
// is safe to call while Run runs.
func (e *QueueEvents) LastID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastID
}

func (e *QueueEvents) setLastID(id string) {
	e.mu.Lock()
	e.lastID = id
	e.mu.Unlock()
}

// streamReader is the connection Run blocks on.
type streamReader interface {
	XRead(ctx context.Context, a *redis.XReadArgs) *redis.XStreamSliceCmd
	XRevRangeN(ctx context.Context, stream, start, stop string, count int64) *redis.XMessageSliceCmd
}

// openReader returns the reader Run uses and a function that closes it
// (which also interrupts a blocked XREAD).
func (e *QueueEvents) openReader() (streamReader, func()) {
	switch {
	case e.single != nil:
		d := redis.NewClient(e.single)
		return d, func() { _ = d.Close() }
	case e.cluster != nil:
		d := redis.NewClusterClient(e.cluster)
		return d, func() { _ = d.Close() }
	}
	return e.client, func() {}
}

// dedicatedOptions returns a copy of a client's options made into those of
// a one-connection client named name, for blocking reads. The copy shares no
// pointer that go-redis writes while the original client runs: in
// particular it gets its own maintenance-notifications config, disabled (a
// blocking reader needs no hitless upgrades), so the dedicated client never
// reads the live client's config, which go-redis updates on its first
// connection.
func dedicatedOptions(src *redis.Options, name string) *redis.Options {
	o := *src
	o.ClientName = name
	o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns, o.MaxConcurrentDials = 1, 0, 1, 0, 1
	o.ClientSideCache = nil
	o.ClientSideCacheConfig = nil
	o.PushNotificationProcessor = nil
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return &o
}

// dedicatedClusterOptions is dedicatedOptions for a cluster client: one
// connection per node, named name.
func dedicatedClusterOptions(src *redis.ClusterOptions, name string) *redis.ClusterOptions {
	o := *src
	o.ClientName = name
	o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = 1, 0, 1, 0
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return &o
}

// Run reads events until ctx ends, calling fn for each, in stream order, one
// at a time, with ctx. If fn returns an error, Run logs it, waits (RetryDelay,
// doubling up to MaxRetryDelay) and calls fn again with the same event: no
// event is skipped. Redis errors are logged and retried the same way on a new
// connection. Run returns nil when ctx is cancelled, and an error if it is
// already running. After Run returns it may be called again; it resumes
// after LastID.
func (e *QueueEvents) Run(ctx context.Context, fn func(ctx context.Context, ev Event) error) error {
	if fn == nil {
		return fmt.Errorf("queue events %s: %w: nil handler", e.keys.queue, ErrInvalidOptions)
	}
	if !e.running.CompareAndSwap(false, true) {
		return fmt.Errorf("queue events %s: Run already running", e.keys.queue)
	}
	defer e.running.Store(false)

	var (
		reader  streamReader
		closeFn func()
		stop    func() bool
	)
	closeReader := func() {
		if stop != nil {
			stop()
		}
		if closeFn != nil {
			closeFn()
		}
		reader, closeFn, stop = nil, nil, nil
	}
	defer closeReader()

	delay := e.opts.RetryDelay
	backoff := func() bool {
		if !sleepCtx(ctx, delay) {
			return false
		}
		delay = min(delay*2, e.opts.MaxRetryDelay)
		return true
	}

	for ctx.Err() == nil {
		if reader == nil {
			reader, closeFn = e.openReader()
			stop = context.AfterFunc(ctx, closeFn)
		}
		last := e.LastID()
		if last == "$" {
			// Pin "$" to a real id, so that a reconnect before the first
			// event still misses nothing.
			msgs, err := reader.XRevRangeN(ctx, e.keys.events, "+", "-", 1).Result()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				e.log.Warn("read last event id failed; retrying", "err", err, "retry_in", delay)
				closeReader()
				if !backoff() {
					return nil
				}
				continue
			}
			last = "0-0"
			if len(msgs) > 0 {
				last = msgs[0].ID
			}
			e.setLastID(last)
		}
		streams, err := reader.XRead(ctx, &redis.XReadArgs{
			Streams: []string{e.keys.events, last},
			Count:   int64(e.opts.BatchSize),
			Block:   e.opts.BlockTimeout,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.log.Warn("read events failed; reconnecting", "err", err, "retry_in", delay)
			closeReader()
			if !backoff() {
				return nil
			}
			continue
		}
		delay = e.opts.RetryDelay
		for _, s := range streams {
			for _, msg := range s.Messages {
				if !e.deliver(ctx, fn, decodeEvent(msg)) {
					return nil
				}
				e.setLastID(msg.ID)
			}
		}
	}
	return nil
}

// deliver calls fn until it accepts ev; it returns false if ctx ended first.
func (e *QueueEvents) deliver(ctx context.Context, fn func(context.Context, Event) error, ev Event) bool {
	delay := e.opts.RetryDelay
	for {
		err := fn(ctx, ev)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		e.log.Warn("event handler failed; retrying the same event", "event", ev.Type, "id", ev.ID, "job", ev.JobID, "err", err, "retry_in", delay)
		if !sleepCtx(ctx, delay) {
			return false
		}
		delay = min(delay*2, e.opts.MaxRetryDelay)
	}
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
