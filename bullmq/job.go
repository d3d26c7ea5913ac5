package bullmq

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// JobState is the state of a job, named as the Node package names it.
type JobState string

// Job states.
const (
	// StateWaiting is a job in the wait list, ready for a worker (or, while
	// the queue is paused, in the paused list).
	StateWaiting JobState = "waiting"
	// StateActive is a job a worker has taken and holds a lock on.
	StateActive JobState = "active"
	// StateCompleted is a job that finished successfully and is kept.
	StateCompleted JobState = "completed"
	// StateFailed is a job that failed for good and is kept.
	StateFailed JobState = "failed"
	// StateDelayed is a job waiting for its due time (a delayed add or a
	// retry with backoff).
	StateDelayed JobState = "delayed"
	// StatePrioritized is a job with a priority, ready for a worker.
	StatePrioritized JobState = "prioritized"
	// StatePaused counts the jobs of the paused list; GetJobState reports
	// such a job as StateWaiting, as the Node package does.
	StatePaused JobState = "paused"
	// StateWaitingChildren is a flow parent waiting for its children.
	StateWaitingChildren JobState = "waiting-children"
	// StateUnknown is the state of a job found in no state key, for
	// example one that does not exist.
	StateUnknown JobState = "unknown"
)

// AllStates lists the states GetJobCounts reports when given none, the same
// list as the Node package's getJobCounts() in v5.
var AllStates = []JobState{StateActive, StateCompleted, StateDelayed, StateFailed, StatePaused, StatePrioritized, StateWaiting, StateWaitingChildren}

// Job is one job as stored in its Redis hash "P:Q:<id>". Every field the
// Node package writes is parsed; times are zero and counters 0 when the hash
// does not have them. A Job is a snapshot: it does not change when Redis
// does.
type Job struct {
	// ID is the job id.
	ID string
	// Name is the job name.
	Name string
	// Data is the payload as JSON text ("{}" when Node had none).
	Data json.RawMessage
	// Opts are the job options, decoded whatever shape each one has.
	Opts JobOptions
	// Timestamp is the creation time.
	Timestamp time.Time
	// Delay is the delay the job was added with, or the backoff of its last
	// delayed retry (0 once promoted).
	Delay time.Duration
	// Priority is the job priority (0 = none).
	Priority int
	// AttemptsMade counts finished attempts ("atm", or legacy "attemptsMade").
	AttemptsMade int
	// AttemptsStarted counts started attempts ("ats").
	AttemptsStarted int
	// StalledCount counts how often the job stalled ("stc").
	StalledCount int
	// ProcessedOn is when the latest attempt started.
	ProcessedOn time.Time
	// FinishedOn is when the job completed or failed for good.
	FinishedOn time.Time
	// ProcessedBy is the name of the worker that took it last ("pb").
	ProcessedBy string
	// ReturnValue is the JSON text of the result of a completed job.
	ReturnValue json.RawMessage
	// FailedReason is the plain-text error of the last failure.
	FailedReason string
	// Stacktrace holds the stack traces of failures, newest last.
	Stacktrace []string
	// Progress is the JSON text of the last progress update.
	Progress json.RawMessage
	// ParentKey is the full key of the flow parent, if any.
	ParentKey string
	// Parent is the raw JSON of the "parent" field ({"id","queueKey",…}).
	Parent json.RawMessage
	// RepeatJobKey is the job scheduler id ("rjk") that created the job.
	RepeatJobKey string
	// DeduplicationID is the deduplication id ("deid").
	DeduplicationID string
	// DeferredFailure is the reason the job must fail, without running, the
	// next time a worker takes it ("defa").
	DeferredFailure string
	// Token is the lock token while a Worker processes the job.
	Token string

	// client and keys let a Worker's job act on Redis (progress, logs);
	// nil for jobs read by a Queue.
	client redis.UniversalClient
	keys   *keys
	// decodeErr is set by a Worker for a fetched job whose hash could not
	// be decoded; the worker fails such a job without running it.
	decodeErr error
}

// jobHash holds the fields of a job hash that parseJob reads, with whether
// the ones whose absence matters were present.
type jobHash struct {
	name, data, opts, pb, failedReason, parentKey, rjk, deid, defa    string
	timestamp, processedOn, finishedOn, delay, priority               string
	atm, attemptsMade, ats, stc, returnValue, progress, parent, trace string

	hasData, hasAtm, hasReturnValue, hasProgress, hasParent bool
}

// set records field k of the hash; unknown fields are ignored.
func (h *jobHash) set(k, v string) {
	switch k {
	case "name":
		h.name = v
	case "data":
		h.data, h.hasData = v, true
	case "opts":
		h.opts = v
	case "pb":
		h.pb = v
	case "failedReason":
		h.failedReason = v
	case "parentKey":
		h.parentKey = v
	case "rjk":
		h.rjk = v
	case "deid":
		h.deid = v
	case "defa":
		h.defa = v
	case "timestamp":
		h.timestamp = v
	case "processedOn":
		h.processedOn = v
	case "finishedOn":
		h.finishedOn = v
	case "delay":
		h.delay = v
	case "priority":
		h.priority = v
	case "atm":
		h.atm, h.hasAtm = v, true
	case "attemptsMade":
		h.attemptsMade = v
	case "ats":
		h.ats = v
	case "stc":
		h.stc = v
	case "returnvalue":
		h.returnValue, h.hasReturnValue = v, true
	case "progress":
		h.progress, h.hasProgress = v, true
	case "parent":
		h.parent, h.hasParent = v, true
	case "stacktrace":
		h.trace = v
	}
}

// parseJob builds a Job from the fields of its hash, with Node's parsing
// rules (protocol 5.12). An empty map means the job does not exist: it
// returns ErrJobNotFound.
func parseJob(id string, h map[string]string) (*Job, error) {
	if len(h) == 0 {
		return nil, fmt.Errorf("parse job %s: %w", id, ErrJobNotFound)
	}
	var jh jobHash
	for k, v := range h {
		jh.set(k, v)
	}
	return jh.job(id)
}

// parseJobFlat is parseJob for the flat [field, value, …] array HGETALL
// returns inside a script. Non-string entries read as "".
func parseJobFlat(id string, flat []any) (*Job, error) {
	if len(flat) < 2 {
		return nil, fmt.Errorf("parse job %s: %w", id, ErrJobNotFound)
	}
	var jh jobHash
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		jh.set(k, v)
	}
	return jh.job(id)
}

// job builds the Job of id from its hash fields.
func (h *jobHash) job(id string) (*Job, error) {
	j := &Job{
		ID:              id,
		Name:            h.name,
		Data:            json.RawMessage("{}"),
		ProcessedBy:     h.pb,
		FailedReason:    h.failedReason,
		ParentKey:       h.parentKey,
		RepeatJobKey:    h.rjk,
		DeduplicationID: h.deid,
		DeferredFailure: h.defa,
	}
	if h.hasData && h.data != "" {
		j.Data = json.RawMessage(h.data)
	}
	if h.opts != "" {
		if err := j.Opts.UnmarshalJSON([]byte(h.opts)); err != nil {
			return nil, fmt.Errorf("parse job %s: %w", id, err)
		}
	}
	j.Timestamp = msField(h.timestamp)
	j.ProcessedOn = msField(h.processedOn)
	j.FinishedOn = msField(h.finishedOn)
	j.Delay = time.Duration(intField(h.delay)) * time.Millisecond
	j.Priority = int(intField(h.priority))
	if h.hasAtm {
		j.AttemptsMade = int(intField(h.atm))
	} else {
		j.AttemptsMade = int(intField(h.attemptsMade))
	}
	j.AttemptsStarted = int(intField(h.ats))
	j.StalledCount = int(intField(h.stc))
	if h.hasReturnValue {
		j.ReturnValue = jsonOrString(h.returnValue)
	}
	if h.hasProgress && h.progress != "" {
		j.Progress = jsonOrString(h.progress)
	}
	if h.hasParent && h.parent != "" {
		j.Parent = jsonOrString(h.parent)
	}
	if v := h.trace; v != "" {
		var st []string
		if err := json.Unmarshal([]byte(v), &st); err == nil {
			j.Stacktrace = st
		} else {
			// Some clients store non-string entries; keep their JSON text.
			var raw []json.RawMessage
			if json.Unmarshal([]byte(v), &raw) == nil {
				for _, r := range raw {
					j.Stacktrace = append(j.Stacktrace, string(r))
				}
			}
		}
	}
	return j, nil
}

// msField parses a decimal ms timestamp; "" or garbage gives the zero time.
func msField(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	n := intField(s)
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// intField parses a decimal integer as Node's parseInt would, accepting a
// fractional or exponent form too; "" or garbage gives 0.
func intField(s string) int64 {
	if s == "" {
		return 0
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return int64(f)
	}
	return 0
}

// jsonOrString returns s as raw JSON when it is valid JSON, otherwise the
// JSON encoding of the string s (Node keeps unparsable values as strings).
func jsonOrString(s string) json.RawMessage {
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := marshalNoEscape(s)
	return b
}
