package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/httpapi"
	"github.com/agentorch/orchestrator/internal/store/postgres"
	"github.com/agentorch/orchestrator/internal/store/sqlite"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// storeKinds names the real stores every end-to-end test runs against.
var storeKinds = []string{"sqlite", "postgres"}

// openStore opens a fresh store of the kind, closed at cleanup.
func openStore(tb testing.TB, kind string) task.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		s   task.Store
		err error
	)
	switch kind {
	case "sqlite":
		s, err = sqlite.Open(ctx, testenv.SQLitePath(tb), discardLogger())
	case "postgres":
		s, err = postgres.Open(ctx, testenv.PostgresURL(tb), discardLogger())
	default:
		tb.Fatalf("unknown store kind %q", kind)
	}
	if err != nil {
		tb.Fatalf("open %s store: %v", kind, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// client talks to an API served on a real loopback listener.
type client struct {
	tb   testing.TB
	base string
	key  string // sent as a bearer key when not empty
	http *http.Client
}

// serve starts the API built from opts (Service over store when unset) on
// httptest.NewServer and returns a client for it.
func serve(tb testing.TB, store task.Store, opts httpapi.Options) *client {
	tb.Helper()
	if opts.Service == nil {
		opts.Service = task.NewService(store, task.ServiceOptions{Logger: discardLogger()})
	}
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	api, err := httpapi.New(opts)
	if err != nil {
		tb.Fatalf("httpapi.New: %v", err)
	}
	srv := httptest.NewServer(api)
	tb.Cleanup(srv.Close)
	return &client{tb: tb, base: srv.URL, http: srv.Client()}
}

// response is a read response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; body is sent as is when it is a string or []byte,
// JSON-encoded otherwise (nil: no body).
func (c *client) do(method, path string, body any, header ...string) response {
	c.tb.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	case io.Reader:
		r = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.tb.Fatalf("encode body: %v", err)
		}
		r = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		c.tb.Fatalf("new request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// decode decodes the JSON body into v, failing on an unexpected status.
func (r response) decode(tb testing.TB, status int, v any) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status %d, want %d; body %s", r.status, status, short(r.body))
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && ct != "application/openapi+json" {
		tb.Fatalf("Content-Type %q, want application/json", ct)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decode %s: %v", short(r.body), err)
	}
}

// problem is an RFC 9457 problem as the API writes it.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Message  string `json:"message"`
		Location string `json:"location"`
		Value    any    `json:"value"`
	} `json:"errors"`
}

// problem checks that r is a problem+json with the status, a title and a
// detail and, when location is not empty, an error at that location.
func (r response) problem(tb testing.TB, status int, location string) problem {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status %d, want %d; body %s", r.status, status, short(r.body))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, short(r.body))
	}
	var p problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		tb.Fatalf("decode problem %s: %v", short(r.body), err)
	}
	if p.Status != status || p.Title != http.StatusText(status) || p.Detail == "" {
		tb.Fatalf("problem %+v: want status %d, title %q and a detail", p, status, http.StatusText(status))
	}
	if location != "" {
		found := false
		for _, e := range p.Errors {
			if e.Location == location {
				found = true
			}
		}
		if !found {
			tb.Fatalf("problem %s has no error at %q", short(r.body), location)
		}
	}
	if len(r.body) > 4096 {
		tb.Fatalf("problem body is %d bytes; long inputs must not be echoed", len(r.body))
	}
	return p
}

func short(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// plainKeys returns plain (admin, unnamed) API keys, as API_KEYS entries
// without a name give.
func plainKeys(keys ...string) []httpapi.APIKey {
	out := make([]httpapi.APIKey, len(keys))
	for i, k := range keys {
		out[i] = httpapi.APIKey{Key: k, Admin: true}
	}
	return out
}
