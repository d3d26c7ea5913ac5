package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:3000", "http://localhost:3000/", "http://[::1]:3000", "http://127.0.0.2"} {
		if _, err := loopbackURL(u); err != nil {
			t.Errorf("loopbackURL(%q) = %v", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1:3000", "http://example.com", "http://192.168.1.1", "ftp://127.0.0.1", "http://0.0.0.0:3000"} {
		if _, err := loopbackURL(u); err == nil {
			t.Errorf("loopbackURL(%q) accepted", u)
		}
	}
}

func TestRunCountsAndStops(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if n.Add(1)%10 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := run([]string{"-url", srv.URL, "-c", "4", "-n", "100", "-warmup", "0"}, &out); err != nil {
		t.Fatal(err)
	}
	var res result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if res.Requests != 100 || res.Errors != 10 || res.Status["201"] != 90 || res.Status["500"] != 10 || res.LatencyMs.P99 <= 0 {
		t.Errorf("result %+v", res)
	}
	out.Reset()
	start := time.Now()
	if err := run([]string{"-url", srv.URL, "-c", "2", "-duration", "200ms", "-warmup", "0"}, &out); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a 200ms run took %s", d)
	}
	if !strings.Contains(out.String(), `"reqPerSec"`) {
		t.Errorf("output %s", out.String())
	}
}

func TestRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-c", "0"}, {"-n", "-1"}, {"-duration", "11m"}, {"-url", "http://8.8.8.8"}} {
		if err := run(args, io.Discard); err == nil {
			t.Errorf("run(%v) = nil error", args)
		}
	}
}
