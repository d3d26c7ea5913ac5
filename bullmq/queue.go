package bullmq

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Version is the version of this library. Queues write "bullmq-go:"+Version
// into the queue's meta hash, where the Node package writes "bullmq:<ver>".
const Version = "0.1.0"

// libraryName is written before Version in the meta "version" field.
const libraryName = "bullmq-go"

// DefaultMaxLenEvents is the approximate cap of the events stream written to
// meta when a queue is first used, the Node package's default.
const DefaultMaxLenEvents = 10000

// QueueOptions configure a Queue. The zero value is valid.
type QueueOptions struct {
	// Prefix is the key prefix. Defaults to "bull". Put a Redis Cluster hash
	// tag here or in the queue name ("{bull}") to use Cluster; none is added.
	Prefix string
	// Logger receives diagnostics. Defaults to a logger that discards.
	Logger *slog.Logger
	// MaxLenEvents is written to meta "opts.maxLenEvents" on first use.
	// Defaults to DefaultMaxLenEvents.
	MaxLenEvents int
	// SkipMetaUpdate leaves meta "opts.maxLenEvents" and "version" alone
	// (Node's skipMetasUpdate).
	SkipMetaUpdate bool
	// Now is the clock used for job timestamps and Clean cutoffs. Defaults
	// to time.Now.
	Now func() time.Time
}

// Queue adds jobs to one BullMQ queue and inspects and administers it. It
// writes exactly what the official Node package writes, so any BullMQ worker
// processes its jobs. A Queue is safe for concurrent use; it does no I/O
// until a method is called and does not own the client.
type Queue struct {
	client   redis.UniversalClient
	name     string
	keys     *keys
	log      *slog.Logger
	now      func() time.Time
	maxLen   int
	skipMeta bool
	addKeys  []string // KEYS of addJobs

	metaWritten atomic.Bool
	closed      atomic.Bool

	scriptsOnce sync.Once
	sc          *queueScripts

	adds addCombiner
}

// queueScripts are the scripts a Queue runs, loaded on first use.
type queueScripts struct {
	add        *script
	remove     *script
	clean      *script
	pause      *script
	resume     *script
	drain      *script
	obliterate *script
}

// NewQueue returns a Queue for queue name on client. It does no I/O. It
// fails with ErrInvalidOptions for an empty name or a negative MaxLenEvents.
func NewQueue(client redis.UniversalClient, name string, opts *QueueOptions) (*Queue, error) {
	if client == nil {
		return nil, fmt.Errorf("new queue %q: %w: nil client", name, ErrInvalidOptions)
	}
	if name == "" {
		return nil, fmt.Errorf("new queue: %w: empty queue name", ErrInvalidOptions)
	}
	var o QueueOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxLenEvents < 0 {
		return nil, fmt.Errorf("new queue %q: %w: MaxLenEvents %d is negative", name, ErrInvalidOptions, o.MaxLenEvents)
	}
	if o.MaxLenEvents == 0 {
		o.MaxLenEvents = DefaultMaxLenEvents
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	k := newKeys(o.Prefix, name)
	return &Queue{
		client:   client,
		name:     name,
		keys:     k,
		log:      o.Logger.With("queue", name),
		now:      o.Now,
		maxLen:   o.MaxLenEvents,
		skipMeta: o.SkipMetaUpdate,
		addKeys:  []string{k.wait, k.paused, k.meta, k.id, k.delayed, k.prioritized, k.pc, k.active, k.events, k.marker},
	}, nil
}

// Name returns the queue name.
func (q *Queue) Name() string { return q.name }

// Prefix returns the key prefix.
func (q *Queue) Prefix() string { return q.keys.prefix }

// Close marks the queue closed; later calls fail with ErrClosed. It does not
// close the client. It is safe to call twice.
func (q *Queue) Close() error {
	q.closed.Store(true)
	return nil
}

func (q *Queue) scripts() *queueScripts {
	q.scriptsOnce.Do(func() {
		q.sc = &queueScripts{
			add:        loadScript("addJobs"),
			remove:     loadScript("removeJob", "admin"),
			clean:      loadScript("cleanJobs", "admin"),
			pause:      loadScript("pause"),
			resume:     loadScript("resume"),
			drain:      loadScript("drain", "admin"),
			obliterate: loadScript("obliterate", "admin"),
		}
	})
	return q.sc
}

func (q *Queue) checkOpen(op string) error {
	if q.closed.Load() {
		return fmt.Errorf("%s on queue %s: %w", op, q.name, ErrClosed)
	}
	return nil
}

// BulkJob is one job of an AddBulk call.
type BulkJob struct {
	// Name is the job name.
	Name string
	// Data is the payload: any JSON-marshalable value, json.RawMessage or
	// []byte (JSON text, kept as is). nil is stored as "{}" as Node does.
	Data any
	// Opts are the job options; nil means defaults.
	Opts *JobOptions
}

// Add adds one job, the way the official Queue.add does: delayed if
// opts.Delay > 0, else prioritized if opts.Priority > 0, else to the wait
// list (the head of it with LIFO). When opts.JobID names a job that already
// exists, nothing is added, a "duplicated" event is written, and the
// returned Job carries the given options and that id. Options are validated
// first (ErrInvalidOptions, ErrInvalidJobID).
//
// Adds of concurrent goroutines are combined: while two script calls of this
// Queue are in flight, the Adds that arrive wait and then go together in the
// next call (one atomic addJobs script, up to 500 jobs, in arrival order),
// which cuts the CPU per job of both Redis and the caller several times
// over. An Add that finds fewer calls in flight is sent at once, under ctx. An Add still waiting for its turn when
// ctx ends withdraws, and its job is not added; a combined call, which
// carries other callers' jobs, is bounded by the client's read and write
// timeouts rather than by the ctx of the Add that sends it.
func (q *Queue) Add(ctx context.Context, name string, data any, opts *JobOptions) (*Job, error) {
	if err := q.checkOpen("add"); err != nil {
		return nil, err
	}
	var oc optsCache
	j, a, err := q.prepareJob(BulkJob{Name: name, Data: data, Opts: opts}, q.now(), &oc)
	if err != nil {
		return nil, fmt.Errorf("add job %q to queue %s: %w", name, q.name, err)
	}
	id, err := q.combinedAdd(ctx, a)
	if err != nil {
		return nil, err
	}
	j.ID = id
	return j, nil
}

// addBatch is how many jobs AddBulk sends in one script call; the calls of
// one AddBulk go in one pipeline, so the whole bulk is one round trip while
// no single script blocks Redis for long.
const addBatch = 500

// AddBulk adds many jobs in one round trip, each as Add would. Jobs are added
// in order; each batch of up to 500 jobs is atomic (the Node package sends
// its bulk as one MULTI). It returns the jobs in the order given. On a
// validation error nothing is sent; on a Redis error, batches before the
// failing one may have been added.
func (q *Queue) AddBulk(ctx context.Context, jobs []BulkJob) ([]*Job, error) {
	if err := q.checkOpen("add"); err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	now := q.now()
	out := make([]*Job, len(jobs))
	args := make([][]any, 0, (len(jobs)+addBatch-1)/addBatch)
	var cur []any
	var oc optsCache
	for i, bj := range jobs {
		j, a, err := q.prepareJob(bj, now, &oc)
		if err != nil {
			return nil, fmt.Errorf("add job %d (%q) to queue %s: %w", i, bj.Name, q.name, err)
		}
		out[i] = j
		if cur == nil {
			cur = make([]any, 4, 4+8*min(addBatch, len(jobs)-i))
		}
		cur = append(cur, a[:]...)
		if (len(cur)-4)/8 == addBatch {
			args = append(args, cur)
			cur = nil
		}
	}
	if cur != nil {
		args = append(args, cur)
	}
	version := q.metaVersion()
	calls := make([]*scriptCall, len(args))
	for i, a := range args {
		calls[i] = q.addCall(a, version)
	}
	if len(calls) == 1 {
		calls[0].cmd = calls[0].s.run(ctx, q.client, calls[0].keys, calls[0].args...)
	} else if err := runScripts(ctx, q.client, calls); err != nil {
		return nil, fmt.Errorf("add %d jobs to queue %s: %w", len(jobs), q.name, err)
	}
	idx := 0
	for _, c := range calls {
		ids, err := q.addResult(c, version)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			out[idx].ID = id
			idx++
		}
	}
	return out, nil
}

// metaVersion is the version argument of addJobs: the library version while
// this Queue has not yet written meta, "" after (or with SkipMetaUpdate).
func (q *Queue) metaVersion() string {
	if q.skipMeta || q.metaWritten.Load() {
		return ""
	}
	return libraryName + ":" + Version
}

// addCall makes the addJobs call for args, whose first 4 slots are free for
// the header and which then holds 8 arguments per job.
func (q *Queue) addCall(args []any, version string) *scriptCall {
	args[0], args[1], args[2], args[3] = q.keys.base, q.maxLen, version, (len(args)-4)/8
	return &scriptCall{s: q.scripts().add, keys: q.addKeys, args: args}
}

// addResult returns the job ids of a finished addJobs call, in the order of
// its jobs, and records that meta was written.
func (q *Queue) addResult(c *scriptCall, version string) ([]string, error) {
	res, err := c.cmd.Slice()
	if err != nil {
		return nil, fmt.Errorf("add jobs to queue %s: %w", q.name, err)
	}
	ids := make([]string, 0, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		id, _ := res[i].(string)
		ids = append(ids, id)
	}
	if len(ids) != c.args[3].(int) {
		return nil, fmt.Errorf("add jobs to queue %s: script returned %d ids for %d jobs", q.name, len(ids), c.args[3])
	}
	if version != "" {
		q.metaWritten.Store(true)
	}
	return ids, nil
}

// optsCache remembers the last options validated and encoded by one AddBulk
// call, so that jobs sharing one *JobOptions (the usual bulk) are validated
// and encoded once.
type optsCache struct {
	src  *JobOptions
	json string
}

// prepareJob validates one job and returns it with its 8 script arguments.
func (q *Queue) prepareJob(bj BulkJob, now time.Time, oc *optsCache) (*Job, [8]any, error) {
	var a [8]any
	var o JobOptions
	if bj.Opts != nil {
		o = *bj.Opts
	}
	optsJSON := oc.json
	if bj.Opts == nil || bj.Opts != oc.src {
		if err := o.validate(); err != nil {
			return nil, a, err
		}
		b, err := o.MarshalJSON()
		if err != nil {
			return nil, a, fmt.Errorf("encode opts: %w", err)
		}
		optsJSON = string(b)
		if bj.Opts != nil {
			oc.src, oc.json = bj.Opts, optsJSON
		}
	}
	data, err := encodeData(bj.Data)
	if err != nil {
		return nil, a, err
	}
	ts := now
	if !o.Timestamp.IsZero() {
		ts = o.Timestamp
	}
	lifo := ""
	if o.LIFO {
		lifo = "1"
	}
	delayMs := o.Delay.Milliseconds()
	a = [8]any{o.JobID, bj.Name, string(data), optsJSON, ts.UnixMilli(), delayMs, o.Priority, lifo}
	j := &Job{
		ID:        o.JobID,
		Name:      bj.Name,
		Data:      data,
		Opts:      o,
		Timestamp: time.UnixMilli(ts.UnixMilli()),
		Delay:     time.Duration(delayMs) * time.Millisecond,
		Priority:  o.Priority,
		client:    q.client,
		keys:      q.keys,
	}
	return j, a, nil
}

// encodeData turns a job payload into the JSON text Node would store.
func encodeData(v any) (json.RawMessage, error) {
	switch d := v.(type) {
	case nil:
		return json.RawMessage("{}"), nil
	case json.RawMessage:
		if len(d) == 0 {
			return json.RawMessage("{}"), nil
		}
		if !json.Valid(d) {
			return nil, fmt.Errorf("%w: data is not valid JSON", ErrInvalidOptions)
		}
		return d, nil
	case []byte:
		if !json.Valid(d) {
			return nil, fmt.Errorf("%w: data is not valid JSON", ErrInvalidOptions)
		}
		return json.RawMessage(d), nil
	}
	b, err := marshalNoEscape(v)
	if err != nil {
		return nil, fmt.Errorf("encode data: %w", err)
	}
	return b, nil
}
