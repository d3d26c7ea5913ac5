package bullmq

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestKeepJobsShapes(t *testing.T) {
	tests := []struct {
		name   string
		in     *KeepJobs
		json   string
		policy keepPolicy
	}{
		{"remove all", RemoveAll(), `true`, keepPolicy{Count: 0}},
		{"keep all", KeepAll(), `false`, keepPolicy{Count: -1}},
		{"keep last", KeepLast(100), `100`, keepPolicy{Count: 100}},
		{"keep last 0", KeepLast(0), `0`, keepPolicy{Count: 0}},
		{"age+count", KeepFor(time.Hour, 1000), `{"age":3600,"count":1000}`, keepPolicy{Count: 1000, Age: time.Hour}},
		{"age only", KeepFor(90*time.Second, 0), `{"age":90}`, keepPolicy{Count: -1, Age: 90 * time.Second}},
		{"literal object", &KeepJobs{Age: time.Minute, Limit: 10}, `{"age":60,"limit":10}`, keepPolicy{Count: -1, Age: time.Minute, Limit: 10}},
		{"literal count", &KeepJobs{Count: 5}, `5`, keepPolicy{Count: 5}},
		{"literal keep", &KeepJobs{Keep: true}, `false`, keepPolicy{Count: -1}},
		{"fractional age", KeepFor(1500*time.Millisecond, 0), `{"age":1.5}`, keepPolicy{Count: -1, Age: 1500 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.json {
				t.Fatalf("encode = %s, want %s", b, tt.json)
			}
			var back KeepJobs
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			b2, _ := json.Marshal(back)
			if string(b2) != tt.json {
				t.Fatalf("round trip = %s, want %s", b2, tt.json)
			}
			if p := resolveKeep(&back, nil); p != tt.policy {
				t.Fatalf("policy = %+v, want %+v", p, tt.policy)
			}
		})
	}
	// Decoding keeps an explicit zero count in the object shape.
	var k KeepJobs
	if err := json.Unmarshal([]byte(`{"count":0}`), &k); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(k); string(b) != `{"count":0}` {
		t.Fatalf("explicit zero count re-encoded as %s", b)
	}
	if p := resolveKeep(&k, nil); p.Count != 0 {
		t.Fatalf("explicit zero count policy = %+v", p)
	}
	if err := json.Unmarshal([]byte(`"x"`), &k); err == nil {
		t.Fatal("string shape accepted")
	}
	// Job option wins over worker option; none means keep all.
	if p := resolveKeep(nil, KeepLast(3)); p.Count != 3 {
		t.Fatalf("worker fallback = %+v", p)
	}
	if p := resolveKeep(RemoveAll(), KeepLast(3)); p.Count != 0 {
		t.Fatalf("job first = %+v", p)
	}
	if p := resolveKeep(nil, nil); p.Count != -1 {
		t.Fatalf("default = %+v", p)
	}
}

func TestBackoffShapes(t *testing.T) {
	var b Backoff
	if err := json.Unmarshal([]byte(`1500`), &b); err != nil {
		t.Fatal(err)
	}
	if b != (Backoff{Type: "fixed", Delay: 1500 * time.Millisecond}) {
		t.Fatalf("number form = %+v", b)
	}
	if err := json.Unmarshal([]byte(`{"type":"exponential","delay":200,"jitter":0.25}`), &b); err != nil {
		t.Fatal(err)
	}
	if b != (Backoff{Type: "exponential", Delay: 200 * time.Millisecond, Jitter: 0.25}) {
		t.Fatalf("object form = %+v", b)
	}
	out, _ := json.Marshal(b)
	assertJSONEqual(t, string(out), `{"type":"exponential","delay":200,"jitter":0.25}`)
	if err := json.Unmarshal([]byte(`{"type":"custom"}`), &b); err != nil || b.Type != "custom" || b.Delay != 0 {
		t.Fatalf("custom = %+v, %v", b, err)
	}
}

func TestJobOptionsEncode(t *testing.T) {
	tests := []struct {
		name string
		in   JobOptions
		want string
	}{
		{"zero", JobOptions{}, `{"attempts":0}`},
		{"seed", JobOptions{Attempts: 3, Backoff: &Backoff{Type: "exponential", Delay: 2 * time.Second},
			RemoveOnComplete: KeepFor(time.Hour, 1000)},
			`{"attempts":3,"backoff":{"delay":2000,"type":"exponential"},"removeOnComplete":{"age":3600,"count":1000}}`},
		{"all", JobOptions{JobID: "a/b<c>", Attempts: 2, Delay: 1500 * time.Millisecond, Priority: 7, LIFO: true,
			RemoveOnComplete: RemoveAll(), RemoveOnFail: KeepAll(), Timestamp: time.UnixMilli(1700000000000),
			Extra: map[string]json.RawMessage{"kl": []byte("5"), "de": []byte(`{"id":"x"}`)}},
			`{"attempts":2,"de":{"id":"x"},"delay":1500,"jobId":"a/b<c>","kl":5,"lifo":true,"priority":7,` +
				`"removeOnComplete":true,"removeOnFail":false,"timestamp":1700000000000}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// MarshalJSON directly: json.Marshal would HTML-escape "<".
			b, err := tt.in.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Fatalf("got  %s\nwant %s", b, tt.want)
			}
			var back JobOptions
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			b2, _ := back.MarshalJSON()
			if string(b2) != tt.want {
				t.Fatalf("round trip %s", b2)
			}
		})
	}
}

func TestJobOptionsDecodeAnyShape(t *testing.T) {
	in := `{"attempts":"3","backoff":2000,"delay":100,"lifo":false,"removeOnComplete":{"age":10},` +
		`"removeOnFail":7,"priority":3,"fpof":true,"repeat":{"every":1000},"weird":null}`
	var o JobOptions
	if err := json.Unmarshal([]byte(in), &o); err != nil {
		t.Fatal(err)
	}
	if o.Attempts != 3 || o.Backoff.Delay != 2*time.Second || o.Delay != 100*time.Millisecond || o.Priority != 3 ||
		o.RemoveOnComplete.Age != 10*time.Second || o.RemoveOnFail.Count != 7 {
		t.Fatalf("decoded %+v", o)
	}
	for _, k := range []string{"fpof", "repeat", "weird", "lifo"} {
		if _, ok := o.Extra[k]; !ok {
			t.Errorf("extra key %q lost", k)
		}
	}
	// A known key with an unusable shape is kept raw rather than failing.
	var o2 JobOptions
	if err := json.Unmarshal([]byte(`{"attempts":[1],"backoff":"soon"}`), &o2); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(o2)
	assertJSONEqual(t, string(b), `{"attempts":[1],"backoff":"soon"}`)
}

func TestValidateJobID(t *testing.T) {
	ok := []string{"", "task-1", "abc", "a:b:c", "1a", "01", "-"}
	bad := []string{"0", "0:x", "123", "-5", "a:b", "a:b:c:d"}
	for _, id := range ok {
		if err := validateJobID(id); err != nil {
			t.Errorf("%q refused: %v", id, err)
		}
	}
	for _, id := range bad {
		if err := validateJobID(id); !errors.Is(err, ErrInvalidJobID) {
			t.Errorf("%q accepted: %v", id, err)
		}
	}
	for _, o := range []JobOptions{{Attempts: -1}, {Delay: -time.Second}, {Priority: -1}, {Priority: MaxPriority + 1},
		{Backoff: &Backoff{}}, {Backoff: &Backoff{Type: "fixed", Jitter: 2}}, {Extra: map[string]json.RawMessage{"x": []byte("{")}}} {
		if err := o.validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%+v accepted: %v", o, err)
		}
	}
}

func TestKeys(t *testing.T) {
	k := newKeys("", "claude-tasks")
	want := map[string]string{
		k.base: "bull:claude-tasks:", k.wait: "bull:claude-tasks:wait", k.meta: "bull:claude-tasks:meta",
		k.waitingChildren: "bull:claude-tasks:waiting-children", k.stalledCheck: "bull:claude-tasks:stalled-check",
		k.job("42"): "bull:claude-tasks:42", k.lock("42"): "bull:claude-tasks:42:lock", k.logs("42"): "bull:claude-tasks:42:logs",
		k.dedup("d"): "bull:claude-tasks:de:d", k.queueKey(): "bull:claude-tasks", k.metricsCompData: "bull:claude-tasks:metrics:completed:data",
		k.state(StateWaiting): "bull:claude-tasks:wait", k.state(StateUnknown): "",
	}
	for got, w := range want {
		if got != w {
			t.Errorf("key %q, want %q", got, w)
		}
	}
	// Hash tags only as the user writes them.
	if got := newKeys("{bull}", "q").job("1"); got != "{bull}:q:1" {
		t.Errorf("tagged prefix: %q", got)
	}
	if got := newKeys("p", "{q}").events; got != "p:{q}:events" {
		t.Errorf("tagged name: %q", got)
	}
	if got := k.connName(":qe"); got != "bull:Y2xhdWRlLXRhc2tz:qe" {
		t.Errorf("conn name %q", got)
	}
}

func TestScriptErrorMapping(t *testing.T) {
	want := map[int64]error{-1: ErrJobNotFound, -2: ErrMissingLock, -3: ErrJobNotActive, -4: ErrPendingChildren,
		-5: ErrParentMissing, -6: ErrLockMismatch, -7: ErrParentCannotBeReplaced, -8: ErrJobBelongsToScheduler,
		-9: ErrFailedChildren, -10: ErrSchedulerJobIDCollision, -11: ErrSchedulerSlotsBusy, -20: ErrJobLocked, -21: ErrActiveJobs}
	for code, sentinel := range want {
		err := scriptError("finish", "7", code)
		if !errors.Is(err, sentinel) {
			t.Errorf("code %d -> %v, want %v", code, err, sentinel)
		}
		if got := err.Error(); got != fmt.Sprintf("finish job 7: %v", sentinel) {
			t.Errorf("message %q", got)
		}
	}
	if scriptError("x", "", 0) != nil || scriptError("x", "", 1) != nil {
		t.Error("non-negative code is an error")
	}
	err := scriptError("x", "", -99)
	if err == nil {
		t.Fatal("unknown code not an error")
	}
	for _, s := range want {
		if errors.Is(err, s) {
			t.Fatalf("unknown code matches %v", s)
		}
	}
}

func TestParseJobDefaults(t *testing.T) {
	j, err := parseJob("1", map[string]string{"name": "x"})
	if err != nil {
		t.Fatal(err)
	}
	want := &Job{ID: "1", Name: "x", Data: json.RawMessage("{}")}
	if !reflect.DeepEqual(j, want) {
		t.Fatalf("got %+v", j)
	}
	if _, err := parseJob("1", nil); !errors.Is(err, ErrJobNotFound) {
		t.Fatal(err)
	}
	if _, err := parseJobFlat("2", []any{"name", "y", "atm", "1"}); err != nil {
		t.Fatal(err)
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "exponential", "job-1", `a"b`, `a\b`, "tab\there", "ünï", "<&>", "\u2028", "\x7f", "\xff"} {
		want, err := marshalNoEscape(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSONString([]byte("x"), s)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "x"+string(want) {
			t.Errorf("appendJSONString(%q) = %s, want x%s", s, got, want)
		}
	}
}
