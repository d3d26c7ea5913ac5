package dispatch

import (
	"strings"
	"testing"
)

func TestWatermark(t *testing.T) {
	var w watermark
	a, b, c := w.add("1-0"), w.add("2-0"), w.add("3-0")
	if got := w.id(); got != "" {
		t.Fatalf("id before any done = %q", got)
	}
	w.done(c)
	if got := w.id(); got != "" {
		t.Errorf("id with 1-0 and 2-0 pending = %q, want none", got)
	}
	w.done(a)
	if got := w.id(); got != "1-0" {
		t.Errorf("id = %q, want 1-0", got)
	}
	w.done(b)
	if got := w.id(); got != "3-0" {
		t.Errorf("id = %q, want 3-0", got)
	}
	d := w.add("4-0")
	w.done(d)
	w.done(d) // twice: ignored
	w.done(a) // old: ignored
	if got := w.id(); got != "4-0" {
		t.Errorf("id = %q, want 4-0", got)
	}
}

func TestParseResult(t *testing.T) {
	const id = "01968b9e-6a3c-7b51-9d2a-2f3e4c5d6e7f"
	tests := []struct {
		name, data, wantErr string
	}{
		{"completed", `{"taskId":"` + id + `","status":"completed","result":{"a":1},"executionTime":5}`, ""},
		{"failed", `{"taskId":"` + id + `","status":"failed","errorMessage":"x"}`, ""},
		{"null result", `{"taskId":"` + id + `","status":"completed","result":null}`, ""},
		{"string", `"hello"`, "must be a JSON object"},
		{"array", `[1]`, "must be a JSON object"},
		{"empty", ``, "must be a JSON object"},
		{"broken", `{"taskId":`, "not a valid result object"},
		{"no task", `{"status":"completed"}`, "no taskId"},
		{"bad task", `{"taskId":"x","status":"completed"}`, "not a task id"},
		{"bad status", `{"taskId":"` + id + `","status":"ok"}`, "status must be"},
		{"negative time", `{"taskId":"` + id + `","status":"completed","executionTime":-1}`, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, uid, err := ParseResult([]byte(tt.data))
			if tt.wantErr == "" {
				if err != nil || uid.String() != id {
					t.Fatalf("ParseResult = %v, %v", uid, err)
				}
				if tt.name == "null result" && r.Result != nil {
					t.Errorf("null result kept as %s", r.Result)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
