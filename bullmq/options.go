package bullmq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxPriority is the highest job priority the Node package accepts
// (2^21 - 1). Priority 1 is the most urgent; 0 means "no priority".
const MaxPriority = 1<<21 - 1

// keepShape records which of the three JSON shapes a KeepJobs value has.
type keepShape uint8

const (
	keepInferred keepShape = iota // set by a struct literal: inferred at encode
	keepBool                      // true / false
	keepNumber                    // 100
	keepObject                    // {"age":3600,"count":100,"limit":1000}
)

// KeepJobs is a retention policy for finished jobs: the removeOnComplete and
// removeOnFail options. The Node package accepts three JSON shapes and a
// KeepJobs remembers which one it was built or decoded from, so it encodes
// back to the same shape:
//
//   - bool: true removes the job as soon as it finishes (Keep false);
//     false keeps every job (Keep true). Build with RemoveAll or KeepAll.
//   - number: keep the newest Count jobs. Build with KeepLast.
//   - object: {age, count, limit}: remove jobs older than Age (stored in
//     seconds), keep at most Count (0 = no count cap), and remove at most
//     Limit jobs by age per finish (0 = the Node default of 1000). Build
//     with KeepFor.
//
// A struct literal has its shape inferred when encoded: the object shape if
// Age or Limit is set, false if Keep is set, otherwise the number Count.
type KeepJobs struct {
	// Keep, in the bool shape, keeps every job (JSON false).
	Keep bool
	// Count is the number of newest jobs to keep.
	Count int
	// Age removes jobs that finished longer ago than Age (object shape).
	Age time.Duration
	// Limit caps how many jobs one finish removes by age (object shape).
	Limit int

	shape    keepShape
	countSet bool // object shape: "count" present even when 0
}

// KeepAll returns the policy that keeps every finished job (JSON false).
func KeepAll() *KeepJobs { return &KeepJobs{Keep: true, shape: keepBool} }

// RemoveAll returns the policy that removes a job as soon as it finishes
// (JSON true).
func RemoveAll() *KeepJobs { return &KeepJobs{shape: keepBool} }

// KeepLast returns the policy that keeps the newest n finished jobs (JSON n).
func KeepLast(n int) *KeepJobs { return &KeepJobs{Count: n, shape: keepNumber} }

// KeepFor returns the policy that removes jobs older than age and keeps at
// most count of them (count 0 means no count cap): JSON {"age":s,"count":n}.
func KeepFor(age time.Duration, count int) *KeepJobs {
	return &KeepJobs{Age: age, Count: count, shape: keepObject, countSet: count != 0}
}

func (k *KeepJobs) effectiveShape() keepShape {
	if k.shape != keepInferred {
		return k.shape
	}
	switch {
	case k.Age != 0 || k.Limit != 0:
		return keepObject
	case k.Keep:
		return keepBool
	default:
		return keepNumber
	}
}

// MarshalJSON encodes k in the shape it was built or decoded with.
func (k KeepJobs) MarshalJSON() ([]byte, error) {
	switch k.effectiveShape() {
	case keepBool:
		if k.Keep {
			return []byte("false"), nil
		}
		return []byte("true"), nil
	case keepNumber:
		return []byte(strconv.Itoa(k.Count)), nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	sep := ""
	if k.Age != 0 {
		b.WriteString(`"age":`)
		b.WriteString(formatSeconds(k.Age))
		sep = ","
	}
	if k.Count != 0 || k.countSet {
		b.WriteString(sep + `"count":` + strconv.Itoa(k.Count))
		sep = ","
	}
	if k.Limit != 0 {
		b.WriteString(sep + `"limit":` + strconv.Itoa(k.Limit))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON decodes any of the three shapes (bool, number, object).
func (k *KeepJobs) UnmarshalJSON(b []byte) error {
	*k = KeepJobs{}
	t := bytes.TrimSpace(b)
	switch {
	case bytes.Equal(t, []byte("true")):
		k.shape = keepBool
	case bytes.Equal(t, []byte("false")):
		k.Keep, k.shape = true, keepBool
	case len(t) > 0 && t[0] == '{':
		var o map[string]json.RawMessage
		if err := json.Unmarshal(t, &o); err != nil {
			return fmt.Errorf("decode keep-jobs object: %w", err)
		}
		k.shape = keepObject
		if r, ok := o["age"]; ok && !isNull(r) {
			f, err := jsonNumber(r)
			if err != nil {
				return fmt.Errorf("decode keep-jobs age: %w", err)
			}
			k.Age = time.Duration(f * float64(time.Second))
		}
		if r, ok := o["count"]; ok && !isNull(r) {
			f, err := jsonNumber(r)
			if err != nil {
				return fmt.Errorf("decode keep-jobs count: %w", err)
			}
			k.Count, k.countSet = int(f), true
		}
		if r, ok := o["limit"]; ok && !isNull(r) {
			f, err := jsonNumber(r)
			if err != nil {
				return fmt.Errorf("decode keep-jobs limit: %w", err)
			}
			k.Limit = int(f)
		}
	default:
		f, err := jsonNumber(t)
		if err != nil {
			return fmt.Errorf("decode keep-jobs %s: %w", t, err)
		}
		k.Count, k.shape = int(f), keepNumber
	}
	return nil
}

// keepPolicy is a KeepJobs resolved into the form a finishing script needs.
// Count -1 means unlimited, 0 means remove at once. Age 0 means no age rule.
// Limit 0 means the default (1000).
type keepPolicy struct {
	Count int
	Age   time.Duration
	Limit int
}

// resolveKeep picks the job's own policy first, then the worker's, and
// returns what the Node package's moveToFinished would use: undefined ->
// keep all; true -> remove at once; false -> keep all; n -> keep n; object
// as given (a missing count means unlimited).
func resolveKeep(job, worker *KeepJobs) keepPolicy {
	k := job
	if k == nil {
		k = worker
	}
	if k == nil {
		return keepPolicy{Count: -1}
	}
	switch k.effectiveShape() {
	case keepBool:
		if k.Keep {
			return keepPolicy{Count: -1}
		}
		return keepPolicy{Count: 0}
	case keepNumber:
		return keepPolicy{Count: k.Count}
	}
	p := keepPolicy{Count: -1, Age: k.Age, Limit: k.Limit}
	if k.Count != 0 || k.countSet {
		p.Count = k.Count
	}
	return p
}

// Backoff is the retry delay policy of a job (the "backoff" option). The
// Node package stores a bare number n as {"type":"fixed","delay":n}; Backoff
// always encodes as that object and decodes both forms.
type Backoff struct {
	// Type is "fixed", "exponential", or a custom name handled by the worker.
	Type string
	// Delay is the base delay (stored in ms).
	Delay time.Duration
	// Jitter, between 0 and 1, randomises the delay down by up to that
	// fraction. 0 means no jitter (and is not stored).
	Jitter float64
}

// MarshalJSON encodes b as {"type":…,"delay":ms[,"jitter":j]}.
func (b Backoff) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"delay":`)
	buf.WriteString(strconv.FormatInt(b.Delay.Milliseconds(), 10))
	if b.Jitter != 0 {
		buf.WriteString(`,"jitter":`)
		buf.WriteString(formatFloat(b.Jitter))
	}
	buf.WriteString(`,"type":`)
	t, err := appendJSONString(buf.AvailableBuffer(), b.Type)
	if err != nil {
		return nil, err
	}
	buf.Write(t)
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON decodes a number (fixed delay in ms) or an object
// {type, delay?, jitter?}.
func (b *Backoff) UnmarshalJSON(data []byte) error {
	*b = Backoff{}
	t := bytes.TrimSpace(data)
	if len(t) > 0 && t[0] != '{' {
		f, err := jsonNumber(t)
		if err != nil {
			return fmt.Errorf("decode backoff %s: %w", t, err)
		}
		b.Type, b.Delay = "fixed", msDuration(f)
		return nil
	}
	var o struct {
		Type   string          `json:"type"`
		Delay  json.RawMessage `json:"delay"`
		Jitter json.RawMessage `json:"jitter"`
	}
	if err := json.Unmarshal(t, &o); err != nil {
		return fmt.Errorf("decode backoff: %w", err)
	}
	b.Type = o.Type
	if len(o.Delay) > 0 && !isNull(o.Delay) {
		f, err := jsonNumber(o.Delay)
		if err != nil {
			return fmt.Errorf("decode backoff delay: %w", err)
		}
		b.Delay = msDuration(f)
	}
	if len(o.Jitter) > 0 && !isNull(o.Jitter) {
		f, err := jsonNumber(o.Jitter)
		if err != nil {
			return fmt.Errorf("decode backoff jitter: %w", err)
		}
		b.Jitter = f
	}
	return nil
}

// JobOptions are the options of one job, stored as the job's "opts" JSON
// exactly as the official Node package stores them: "attempts" is always
// present, the other keys only when set. The zero value is a plain job that
// runs once.
type JobOptions struct {
	// JobID is a custom job id ("jobId"). Empty means an automatic id from
	// the queue's counter. Adding a job whose id already exists adds nothing
	// and emits a "duplicated" event.
	JobID string
	// Attempts is the total number of tries (0 and 1 both mean one try).
	Attempts int
	// Backoff is the delay policy between tries; nil means retry at once.
	Backoff *Backoff
	// Delay postpones the first run (stored in ms; 0 = run now).
	Delay time.Duration
	// Priority, 1 (most urgent) … MaxPriority, puts the job in the
	// prioritized set; 0 means no priority.
	Priority int
	// LIFO puts the job at the head of the wait list.
	LIFO bool
	// RemoveOnComplete is the retention of completed jobs; nil falls back to
	// the worker's option, then keeps all.
	RemoveOnComplete *KeepJobs
	// RemoveOnFail is the retention of failed jobs; nil as above.
	RemoveOnFail *KeepJobs
	// Timestamp overrides the creation time; zero means now.
	Timestamp time.Time
	// Extra holds every other "opts" key as raw JSON. It is kept on decode
	// (a job written by another client may carry any key: "de", "repeat",
	// "parent", …) and written back on encode; a key here that is also a
	// field above overrides the field. On add, only the keys this library
	// implements are accepted: "kl" (keepLogs, applied by Job.Log) and
	// "stackTraceLimit" (applied when a failure's stack trace is stored),
	// besides the keys of the fields above; any other key
	// fails the add with ErrInvalidOptions, because a worker of this
	// library, or of the Node package, would otherwise act on a feature
	// (deduplication, repeat, flows) that the add did not set up.
	Extra map[string]json.RawMessage
}

// supportedExtra are the keys JobOptions.Extra accepts on add besides the
// keys of its fields. Deduplication ("de"), repeatable jobs ("repeat",
// "rjk", "prevMillis"), flows ("parent", "fpof", "cpof", "idof", "rdof"),
// "sizeLimit", "telemetry" and any unknown key are refused until they are
// implemented.
var supportedExtra = [...]string{"kl", "stackTraceLimit"}

// knownOptKeys are the "opts" keys that have a JobOptions field.
var knownOptKeys = [...]string{"attempts", "backoff", "delay", "jobId", "lifo", "priority", "removeOnComplete", "removeOnFail", "timestamp"}

func isKnownOptKey(k string) bool {
	for _, x := range knownOptKeys {
		if x == k {
			return true
		}
	}
	return false
}

// MarshalJSON encodes o as the "opts" JSON the Node package stores. Keys are
// sorted, which Node does not guarantee either (it stores a Lua table).
func (o JobOptions) MarshalJSON() ([]byte, error) {
	buf := make([]byte, 0, 128)
	buf = append(buf, '{')
	n := 0
	field := func(k string, v []byte) {
		if _, ok := o.Extra[k]; ok && len(o.Extra[k]) > 0 {
			return // Extra overrides the field; written below
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = append(buf, k...)
		buf = append(buf, '"', ':')
		buf = append(buf, v...)
		n++
	}
	// Known keys, in sorted order.
	field("attempts", strconv.AppendInt(nil, int64(o.Attempts), 10))
	if o.Backoff != nil {
		b, err := o.Backoff.MarshalJSON()
		if err != nil {
			return nil, err
		}
		field("backoff", b)
	}
	if o.Delay != 0 {
		field("delay", strconv.AppendInt(nil, o.Delay.Milliseconds(), 10))
	}
	if o.JobID != "" {
		b, err := appendJSONString(nil, o.JobID)
		if err != nil {
			return nil, err
		}
		field("jobId", b)
	}
	if o.LIFO {
		field("lifo", []byte("true"))
	}
	if o.Priority != 0 {
		field("priority", strconv.AppendInt(nil, int64(o.Priority), 10))
	}
	if o.RemoveOnComplete != nil {
		b, _ := o.RemoveOnComplete.MarshalJSON()
		field("removeOnComplete", b)
	}
	if o.RemoveOnFail != nil {
		b, _ := o.RemoveOnFail.MarshalJSON()
		field("removeOnFail", b)
	}
	if !o.Timestamp.IsZero() {
		field("timestamp", strconv.AppendInt(nil, o.Timestamp.UnixMilli(), 10))
	}
	if len(o.Extra) == 0 {
		return append(buf, '}'), nil
	}
	// Extra keys (and overridden known ones): re-sort the whole object.
	fields := make(map[string]json.RawMessage, n+len(o.Extra))
	if err := json.Unmarshal(append(buf, '}'), &fields); err != nil {
		return nil, err
	}
	for k, v := range o.Extra {
		if len(v) > 0 {
			fields[k] = v
		}
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]byte, 0, len(buf)+64*len(o.Extra))
	out = append(out, '{')
	var err error
	for i, k := range names {
		if i > 0 {
			out = append(out, ',')
		}
		out, err = appendJSONString(out, k)
		if err != nil {
			return nil, err
		}
		out = append(out, ':')
		out = append(out, fields[k]...)
	}
	return append(out, '}'), nil
}

// UnmarshalJSON decodes any "opts" JSON written by any BullMQ client. Known
// keys with an unexpected shape (for example a string "attempts") are kept
// raw in Extra instead of failing the whole decode, and so are unknown keys.
func (o *JobOptions) UnmarshalJSON(b []byte) error {
	if o.decodeFast(b) {
		return nil
	}
	return o.decodeGeneric(b)
}

// decodeGeneric is the general path of UnmarshalJSON, for any valid input;
// decodeFast (options_decode.go) handles the common shapes faster and must
// give the same result.
func (o *JobOptions) decodeGeneric(b []byte) error {
	*o = JobOptions{}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("decode job opts: %w", err)
	}
	for k, v := range m {
		if isNull(v) && isKnownOptKey(k) {
			continue
		}
		if !isKnownOptKey(k) || o.decodeKnown(k, v) != nil {
			if o.Extra == nil {
				o.Extra = make(map[string]json.RawMessage)
			}
			o.Extra[k] = v
		}
	}
	return nil
}

// errKeepRaw tells UnmarshalJSON to keep a known key raw in Extra.
var errKeepRaw = errors.New("keep raw")

// decodeKnown decodes known key k into its field; an error keeps the value
// raw in Extra instead.
func (o *JobOptions) decodeKnown(k string, v json.RawMessage) error {
	switch k {
	case "attempts":
		f, err := jsonNumber(v)
		if err != nil {
			return err
		}
		o.Attempts = int(f)
	case "backoff":
		var bo Backoff
		if err := bo.UnmarshalJSON(v); err != nil {
			return err
		}
		o.Backoff = &bo
	case "delay":
		f, err := jsonNumber(v)
		if err != nil {
			return err
		}
		o.Delay = msDuration(f)
	case "jobId":
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		o.JobID = s
	case "lifo":
		var x bool
		if err := json.Unmarshal(v, &x); err != nil {
			return err
		}
		if !x {
			// An explicit false has no field value of its own: keep it raw
			// in Extra so it re-encodes as stored.
			return errKeepRaw
		}
		o.LIFO = x
	case "priority":
		f, err := jsonNumber(v)
		if err != nil {
			return err
		}
		o.Priority = int(f)
	case "removeOnComplete", "removeOnFail":
		var kj KeepJobs
		if err := kj.UnmarshalJSON(v); err != nil {
			return err
		}
		if k == "removeOnComplete" {
			o.RemoveOnComplete = &kj
		} else {
			o.RemoveOnFail = &kj
		}
	case "timestamp":
		f, err := jsonNumber(v)
		if err != nil {
			return err
		}
		o.Timestamp = time.UnixMilli(int64(f))
	}
	return nil
}

// validate checks o the way the Node package checks options before adding.
func (o *JobOptions) validate() error {
	if err := validateJobID(o.JobID); err != nil {
		return err
	}
	if o.Attempts < 0 {
		return fmt.Errorf("%w: attempts %d is negative", ErrInvalidOptions, o.Attempts)
	}
	if o.Delay < 0 {
		return fmt.Errorf("%w: delay %s is negative", ErrInvalidOptions, o.Delay)
	}
	if o.Priority < 0 || o.Priority > MaxPriority {
		return fmt.Errorf("%w: priority %d is outside 0…%d", ErrInvalidOptions, o.Priority, MaxPriority)
	}
	if o.Backoff != nil {
		if o.Backoff.Type == "" {
			return fmt.Errorf("%w: backoff has no type", ErrInvalidOptions)
		}
		if o.Backoff.Delay < 0 {
			return fmt.Errorf("%w: backoff delay %s is negative", ErrInvalidOptions, o.Backoff.Delay)
		}
		if o.Backoff.Jitter < 0 || o.Backoff.Jitter > 1 || math.IsNaN(o.Backoff.Jitter) {
			return fmt.Errorf("%w: backoff jitter %v is outside 0…1", ErrInvalidOptions, o.Backoff.Jitter)
		}
	}
	for k, v := range o.Extra {
		if !isKnownOptKey(k) && !slices.Contains(supportedExtra[:], k) {
			return fmt.Errorf("%w: option %q is not implemented by this library (extra options it implements: %s)",
				ErrInvalidOptions, k, strings.Join(supportedExtra[:], ", "))
		}
		if len(v) > 0 && !json.Valid(v) {
			return fmt.Errorf("%w: extra option %q is not valid JSON", ErrInvalidOptions, k)
		}
	}
	return nil
}

// validateJobID applies the Node package's custom id rules: not "0", not
// starting with "0:", not the decimal form of an integer (it could clash
// with automatic ids), and no ":" except the legacy three-part form.
func validateJobID(id string) error {
	if id == "" {
		return nil
	}
	if id == "0" || strings.HasPrefix(id, "0:") {
		return fmt.Errorf("%w: %q: cannot be \"0\" or start with \"0:\"", ErrInvalidJobID, id)
	}
	if n, err := strconv.ParseInt(id, 10, 64); err == nil && strconv.FormatInt(n, 10) == id {
		return fmt.Errorf("%w: %q: cannot be an integer", ErrInvalidJobID, id)
	}
	if c := strings.Count(id, ":"); c != 0 && c != 2 {
		return fmt.Errorf("%w: %q: cannot contain \":\"", ErrInvalidJobID, id)
	}
	return nil
}

// jsonNumber parses a JSON number (or a JSON string holding one).
func jsonNumber(b []byte) (float64, error) {
	t := bytes.TrimSpace(b)
	if len(t) > 0 && t[0] == '"' {
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return 0, err
		}
		t = []byte(s)
	}
	f, err := strconv.ParseFloat(string(t), 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %s", b)
	}
	return f, nil
}

func isNull(b []byte) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }

// msDuration converts a (possibly fractional) number of ms to a Duration.
func msDuration(ms float64) time.Duration {
	return time.Duration(ms * float64(time.Millisecond))
}

// formatSeconds writes d in seconds, as an integer when it is whole.
func formatSeconds(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10)
	}
	return formatFloat(d.Seconds())
}

// formatFloat writes f the way JavaScript's JSON.stringify would for usual
// values: shortest representation, integers without a fraction.
func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// appendJSONString appends s as a JSON string, as JSON.stringify writes it.
// Plain printable ASCII without quotes or backslashes (ids, names, types:
// the usual case) is copied as is; anything else goes through
// marshalNoEscape.
func appendJSONString(dst []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b, err := marshalNoEscape(s)
			if err != nil {
				return nil, err
			}
			return append(dst, b...), nil
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), nil
}

// marshalNoEscape is json.Marshal without HTML escaping, like JSON.stringify.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
