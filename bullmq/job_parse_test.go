package bullmq

import (
	"reflect"
	"testing"
)

// TestParseJobFlatMatchesMap checks that the flat HGETALL form and the map
// form of a job hash parse to the same Job.
func TestParseJobFlatMatchesMap(t *testing.T) {
	hashes := []map[string]string{
		{"name": "x"},
		{"name": "execute-task", "data": `{"i":1}`, "opts": `{"attempts":3,"backoff":{"delay":2000,"type":"exponential"},"kl":5}`,
			"timestamp": "1700000000000", "processedOn": "1700000000001", "finishedOn": "1700000000002", "delay": "10",
			"priority": "2", "atm": "1", "attemptsMade": "9", "ats": "2", "stc": "1", "pb": "w1", "failedReason": "boom",
			"stacktrace": `["a",{"b":1}]`, "returnvalue": "not json", "progress": "50", "parentKey": "bull:p:1",
			"parent": `{"id":"1","queueKey":"bull:p"}`, "rjk": "r", "deid": "d", "defa": "f", "unknown": "u"},
		{"name": "y", "data": "", "attemptsMade": "4", "returnvalue": "", "progress": "", "parent": "", "stacktrace": `["s"]`},
		{"": "", "opts": `{"jobId":"a\"b","attempts":1,"attempts":2}`},
	}
	for _, h := range hashes {
		want, wantErr := parseJob("7", h)
		flat := make([]any, 0, 2*len(h))
		for k, v := range h {
			flat = append(flat, k, v)
		}
		got, err := parseJobFlat("7", flat)
		if (err == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("hash %v:\nflat %#v, %v\nmap  %#v, %v", h, got, err, want, wantErr)
		}
	}
	if _, err := parseJobFlat("7", []any{"name"}); err == nil {
		t.Error("odd flat array with no pair parsed")
	}
	j, err := parseJobFlat("7", []any{"name", 5, "atm", "3"})
	if err != nil || j.Name != "" || j.AttemptsMade != 3 {
		t.Errorf("non-string value: %+v, %v", j, err)
	}
}

// BenchmarkDecodeJobFlat parses a fetched job as a worker does: the flat
// HGETALL array of a job added with the seed options.
func BenchmarkDecodeJobFlat(b *testing.B) {
	opts, err := seedOptions().MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	flat := []any{"name", "execute-task", "data", `{"i":1}`, "opts", string(opts), "timestamp", "1700000000000",
		"delay", "0", "priority", "0", "processedOn", "1700000000001", "ats", "1", "pb", "worker-1"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseJobFlat("1", flat); err != nil {
			b.Fatal(err)
		}
	}
}
