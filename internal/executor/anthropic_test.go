package executor

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const fakeMessage = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-test-1",` +
	`"content":[{"type":"text","text":"Use a map."},{"type":"text","text":" Done."}],` +
	`"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":11,"output_tokens":7}}`

// fakeMessagesAPI serves POST /v1/messages with the responses in order; the
// last one repeats. It records when each request arrived.
type fakeMessagesAPI struct {
	t         *testing.T
	mu        sync.Mutex
	responses []func(w http.ResponseWriter, r *http.Request)
	arrivals  []time.Time
	bodies    []string
}

func (f *fakeMessagesAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	n := len(f.arrivals)
	f.arrivals = append(f.arrivals, time.Now())
	f.bodies = append(f.bodies, string(body))
	respond := f.responses[min(n, len(f.responses)-1)]
	f.mu.Unlock()
	// This SDK version sends the key as a bearer token; older ones used x-api-key.
	if r.Header.Get("X-Api-Key") != "test-key" && r.Header.Get("Authorization") != "Bearer test-key" {
		f.t.Errorf("no API key in request headers %v", r.Header)
	}
	respond(w, r)
}

func (f *fakeMessagesAPI) requests() ([]time.Time, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.arrivals...), append([]string(nil), f.bodies...)
}

func ok(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, fakeMessage)
}

func status(code int, headers ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"type":"error","error":{"type":"some_error","message":"fake says no"}}`)
	}
}

func newFakeAnthropic(t *testing.T, responses ...func(w http.ResponseWriter, r *http.Request)) (*Anthropic, *fakeMessagesAPI) {
	t.Helper()
	f := &fakeMessagesAPI{t: t, responses: responses}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	a, err := NewAnthropic(AnthropicOptions{APIKey: "test-key", Model: "claude-test-1", BaseURL: srv.URL, MaxRetries: 2})
	if err != nil {
		t.Fatal(err)
	}
	return a, f
}

var anthropicInput = Input{TaskID: "t1", Code: "x := 1", Prompt: "Improve this", Timeout: 20 * time.Second}

func TestAnthropicSuccess(t *testing.T) {
	a, f := newFakeAnthropic(t, ok)
	out, err := a.Run(context.Background(), anthropicInput)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"answer":"Use a map. Done.","model":"claude-test-1","stopReason":"end_turn","usage":{"inputTokens":11,"outputTokens":7}}`
	if string(out.Result) != want {
		t.Errorf("result = %s\nwant %s", out.Result, want)
	}
	_, bodies := f.requests()
	var req struct {
		Model     string `json:"model"`
		MaxTokens int    `json:"max_tokens"`
		Messages  []struct {
			Role    string `json:"role"`
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal([]byte(bodies[0]), &req); err != nil {
		t.Fatal(err)
	}
	if req.Model != "claude-test-1" || req.MaxTokens != DefaultAnthropicMaxTokens || len(req.Messages) != 1 ||
		!strings.Contains(req.Messages[0].Content[0].Text, "Improve this") || !strings.Contains(req.Messages[0].Content[0].Text, "x := 1") {
		t.Errorf("request = %s", bodies[0])
	}
}

func TestAnthropicHonoursRetryAfterOn429(t *testing.T) {
	a, f := newFakeAnthropic(t, status(http.StatusTooManyRequests, "retry-after", "1"), ok)
	out, err := a.Run(context.Background(), anthropicInput)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out.Result), "Use a map.") {
		t.Errorf("result = %s", out.Result)
	}
	arrivals, _ := f.requests()
	if len(arrivals) != 2 {
		t.Fatalf("%d requests, want 2", len(arrivals))
	}
	if gap := arrivals[1].Sub(arrivals[0]); gap < 900*time.Millisecond {
		t.Errorf("retried after %s, want the 1s retry-after honoured", gap)
	}
}

func TestAnthropic500IsRetriedThenFails(t *testing.T) {
	a, f := newFakeAnthropic(t, status(http.StatusInternalServerError, "retry-after-ms", "20"))
	_, err := a.Run(context.Background(), anthropicInput)
	if err == nil || !strings.Contains(err.Error(), "status 500") || errors.Is(err, ErrUnrecoverable) {
		t.Fatalf("err = %v, want a retryable status 500 error", err)
	}
	if arrivals, _ := f.requests(); len(arrivals) != 3 {
		t.Errorf("%d requests, want 1 + 2 retries", len(arrivals))
	}
}

func TestAnthropic401IsUnrecoverable(t *testing.T) {
	a, f := newFakeAnthropic(t, status(http.StatusUnauthorized))
	_, err := a.Run(context.Background(), anthropicInput)
	if !errors.Is(err, ErrUnrecoverable) || !strings.Contains(err.Error(), "fake says no") {
		t.Fatalf("err = %v, want unrecoverable with the API's message", err)
	}
	if arrivals, _ := f.requests(); len(arrivals) != 1 {
		t.Errorf("%d requests, want 1", len(arrivals))
	}
}

func TestAnthropicTimeout(t *testing.T) {
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	a, _ := newFakeAnthropic(t, hang)
	in := anthropicInput
	in.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err := a.Run(context.Background(), in)
	var te *TimeoutError
	if !errors.As(err, &te) || err.Error() != "timed out after 300ms" {
		t.Fatalf("err = %v, want timed out after 300ms", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestNewAnthropicValidates(t *testing.T) {
	if _, err := NewAnthropic(AnthropicOptions{Model: "m"}); err == nil {
		t.Error("no API key: want an error")
	}
	if _, err := NewAnthropic(AnthropicOptions{APIKey: "k"}); err == nil {
		t.Error("no model: want an error")
	}
}
