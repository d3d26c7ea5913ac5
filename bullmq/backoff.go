package bullmq

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"time"
)

// ErrUnrecoverable marks a processor error that must fail the job at once,
// without the retries its attempts option would allow. Wrap an error with
// Unrecoverable to get it.
var ErrUnrecoverable = errors.New("bullmq: unrecoverable error")

// unrecoverableError keeps the message of the wrapped error (it becomes the
// job's failedReason) and matches both the wrapped error and
// ErrUnrecoverable with errors.Is.
type unrecoverableError struct{ err error }

func (e *unrecoverableError) Error() string   { return e.err.Error() }
func (e *unrecoverableError) Unwrap() []error { return []error{e.err, ErrUnrecoverable} }

// Unrecoverable wraps err so that a Worker fails the job at once, skipping
// any retries left: errors.Is(Unrecoverable(err), ErrUnrecoverable) is true,
// and the job's failedReason is err's message unchanged. A nil err gives an
// error with the message "unrecoverable error".
func Unrecoverable(err error) error {
	if err == nil {
		err = errors.New("unrecoverable error")
	}
	return &unrecoverableError{err: err}
}

// shouldRetry applies the Node worker's rule: retry while attemptsMade+1 <
// opts.attempts (attemptsMade counted before this failure), unless err is
// unrecoverable.
func shouldRetry(job *Job, err error) bool {
	return !errors.Is(err, ErrUnrecoverable) && job.AttemptsMade+1 < job.Opts.Attempts
}

// retryDelay returns the backoff before the next attempt of job, which just
// failed its attempt number n = AttemptsMade+1, as the Node package computes
// it: fixed = delay, exponential = round(delay * 2^(n-1)); with jitter j the
// delay is uniform in [d*(1-j), d]. A custom type goes to strategy (nil:
// retry at once). A negative result means "do not retry".
func retryDelay(job *Job, err error, strategy BackoffFunc, rnd func() float64) time.Duration {
	b := job.Opts.Backoff
	if b == nil {
		return 0
	}
	n := job.AttemptsMade + 1
	var d float64 // ms
	delayMs := float64(b.Delay) / float64(time.Millisecond)
	switch b.Type {
	case "fixed":
		d = delayMs
	case "exponential":
		d = math.Round(delayMs * math.Pow(2, float64(n-1)))
	default:
		if strategy == nil {
			return 0
		}
		return strategy(n, b.Type, err, job)
	}
	if b.Jitter > 0 {
		j := math.Min(b.Jitter, 1)
		d = math.Floor(d*(1-j) + rnd()*d*j)
	}
	return time.Duration(d) * time.Millisecond
}

// defaultRand is the jitter source: uniform in [0, 1).
func defaultRand() float64 { return rand.Float64() }

// stackTraceLimit returns the job's opts.stackTraceLimit, or 0 (no cap).
func stackTraceLimit(job *Job) int {
	raw, ok := job.Opts.Extra["stackTraceLimit"]
	if !ok {
		return 0
	}
	f, err := jsonNumber(raw)
	if err != nil || f < 0 {
		return 0
	}
	return int(f)
}

// appendStack returns the JSON text of job's stack traces with entry added,
// capped to the job's stackTraceLimit (newest kept), as Node does.
func appendStack(job *Job, entry string) string {
	st := append(append([]string(nil), job.Stacktrace...), entry)
	if limit := stackTraceLimit(job); limit > 0 && len(st) > limit {
		st = st[len(st)-limit:]
	}
	b, err := marshalNoEscape(st)
	if err != nil {
		return "[]"
	}
	return string(b)
}

// marshalResult encodes a processor's return value as the JSON text stored
// in "returnvalue": a json.RawMessage as is (it must be valid JSON),
// nil as "null".
func marshalResult(v any) (json.RawMessage, error) {
	switch r := v.(type) {
	case nil:
		return json.RawMessage("null"), nil
	case json.RawMessage:
		if len(r) == 0 {
			return json.RawMessage("null"), nil
		}
		if !json.Valid(r) {
			return nil, errors.New("return value is not valid JSON")
		}
		return r, nil
	}
	b, err := marshalNoEscape(v)
	if err != nil {
		return nil, err
	}
	return b, nil
}
