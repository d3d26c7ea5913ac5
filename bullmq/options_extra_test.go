package bullmq

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestAddRefusesUnimplementedExtraOptions: keys of JobOptions.Extra the
// library does not implement (deduplication, repeat, flows, anything
// unknown) fail the add with ErrInvalidOptions and add nothing; the keys
// it implements are accepted.
func TestAddRefusesUnimplementedExtraOptions(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "extra-opts")
	ctx := context.Background()
	for _, key := range []string{"de", "repeat", "parent", "rjk", "prevMillis", "fpof", "sizeLimit", "telemetry", "whatever"} {
		opts := &JobOptions{JobID: "job-" + key, Extra: map[string]json.RawMessage{key: json.RawMessage(`{"id":"x"}`)}}
		_, err := e.q.Add(ctx, "a", nil, opts)
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), `"`+key+`"`) {
			t.Errorf("Add with extra option %q: %v, want ErrInvalidOptions naming it", key, err)
		}
		if _, err := e.q.GetJob(ctx, opts.JobID); !errors.Is(err, ErrJobNotFound) {
			t.Errorf("Add with extra option %q stored a job: %v", key, err)
		}
		if _, err := e.q.AddBulk(ctx, []BulkJob{{Name: "a", Opts: opts}}); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("AddBulk with extra option %q: %v, want ErrInvalidOptions", key, err)
		}
	}
	ok := &JobOptions{Extra: map[string]json.RawMessage{"kl": json.RawMessage("3"), "stackTraceLimit": json.RawMessage("2"),
		"attempts": json.RawMessage("4")}}
	j := e.add("ok", nil, ok)
	got := e.job(j.ID)
	if string(got.Opts.Extra["kl"]) != "3" || string(got.Opts.Extra["stackTraceLimit"]) != "2" || got.Opts.Attempts != 4 {
		t.Errorf("supported extra options stored as %+v", got.Opts)
	}
}
