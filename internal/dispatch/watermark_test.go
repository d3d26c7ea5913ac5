package dispatch

import (
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
