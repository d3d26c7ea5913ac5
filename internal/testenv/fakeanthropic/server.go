package fakeanthropic

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a scripted fake of the Anthropic Messages API on a loopback
// port. It is safe for concurrent use; requests are answered in the order
// they arrive.
type Server struct {
	// URL is the server's base URL (http://127.0.0.1:PORT), the value for
	// ANTHROPIC_BASE_URL.
	URL string

	tb    testing.TB
	opts  Options
	srv   *httptest.Server
	mu    sync.Mutex
	next  int // next script turn
	ruled int // answers given by rules, for tool ids
	reqs  []Request
}

// Start starts a Server for opts and stops it at the end of the test. It
// fails the test when opts are invalid. At cleanup it reports, as a test
// error, every Messages request that arrived after the script was exhausted
// (unless opts.AllowUnscripted), since such a request means the client did
// more than the script expected.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	script, err := opts.validate()
	if err != nil {
		tb.Fatal(err)
	}
	opts.Script = script
	s := &Server{tb: tb, opts: opts}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	tb.Cleanup(func() {
		s.srv.CloseClientConnections()
		s.srv.Close()
		if opts.AllowUnscripted {
			return
		}
		for _, r := range s.Requests() {
			if r.Answer == AnsweredUnscripted {
				tb.Errorf("fakeanthropic: unscripted request after the %d scripted turns: model %s, last user text %q",
					len(opts.Script), r.Model, clip(lastUserText(&r), 300))
			}
		}
	})
	return s
}

// Requests returns a copy of every request received so far, in arrival
// order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// ScriptRequests returns the requests the script answered, in order: the
// i-th was answered by Script[i].
func (s *Server) ScriptRequests() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Answer == AnsweredScript {
			out = append(out, r)
		}
	}
	return out
}

// Remaining returns how many script turns have not been answered yet.
func (s *Server) Remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.opts.Script) - s.next
}

// serve answers one request.
func (s *Server) serve(w http.ResponseWriter, hr *http.Request) {
	body, err := io.ReadAll(hr.Body)
	if err != nil {
		writeError(w, &APIError{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: "read body: " + err.Error()})
		return
	}
	r := Request{Method: hr.Method, Path: hr.URL.Path, Query: hr.URL.Query(), Header: hr.Header.Clone(), Body: body, Turn: -1}

	switch {
	case hr.Method == http.MethodPost && r.Path == "/v1/messages":
		s.serveMessages(w, hr, r)
	case hr.Method == http.MethodPost && r.Path == "/v1/messages/count_tokens":
		r.Answer = AnsweredEndpoint
		s.record(r)
		// A rough count (four bytes a token) is enough for a client that
		// only budgets its context.
		writeJSON(w, http.StatusOK, map[string]int{"input_tokens": len(body)/4 + 1})
	case (hr.Method == http.MethodHead || hr.Method == http.MethodGet) && r.Path == "/api/hello":
		// The CLI's connectivity probe, sent unless
		// CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC is set.
		r.Answer = AnsweredEndpoint
		s.record(r)
		w.WriteHeader(http.StatusOK)
	default:
		r.Answer = AnsweredEndpoint
		s.record(r)
		writeError(w, &APIError{Status: http.StatusNotFound, Type: "not_found_error", Message: fmt.Sprintf("fakeanthropic: no %s %s", hr.Method, r.Path)})
	}
}

// serveMessages answers a Messages request by rule, by script, or with an
// error.
func (s *Server) serveMessages(w http.ResponseWriter, hr *http.Request, r Request) {
	if err := r.parseMessages(); err != nil {
		r.Answer = AnsweredBadRequest
		s.record(r)
		writeError(w, &APIError{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: "fakeanthropic: bad Messages request: " + err.Error()})
		return
	}
	turn, ok := s.pick(&r)
	if !ok {
		writeError(w, &APIError{Status: http.StatusBadRequest, Type: "invalid_request_error",
			Message: fmt.Sprintf("fakeanthropic: script exhausted after %d turns", len(s.opts.Script))})
		return
	}
	if turn.Gate != nil {
		select {
		case <-turn.Gate:
		case <-hr.Context().Done():
			return
		}
	}
	if turn.Error != nil {
		writeError(w, turn.Error)
		return
	}
	model := turn.Model
	if model == "" {
		model = r.Model
	}
	msg := message{ID: fmt.Sprintf("msg_fake_%d", len(s.Requests())), Type: "message", Role: "assistant", Model: model,
		Content: wireBlocks(turn.Content), StopReason: turn.StopReason, Usage: turn.Usage}
	if r.Stream {
		s.stream(hr.Context(), w, msg)
		return
	}
	writeJSON(w, http.StatusOK, msg)
}

// pick chooses the answer to r and records r with how it is answered.
func (s *Server) pick(r *Request) (Turn, bool) {
	for _, rule := range s.opts.Rules {
		if !rule.Match(r) {
			continue
		}
		s.mu.Lock()
		s.ruled++
		prefix := fmt.Sprintf("toolu_rule_%d_", s.ruled)
		s.mu.Unlock()
		t, err := rule.Reply(r).complete(prefix)
		if err != nil {
			t = Turn{Error: &APIError{Status: http.StatusInternalServerError, Type: "api_error", Message: fmt.Sprintf("fakeanthropic: rule %s: %v", rule.Name, err)}}
			s.tb.Errorf("fakeanthropic: rule %s gave an invalid answer: %v", rule.Name, err)
		}
		r.Answer, r.Rule = AnsweredRule, rule.Name
		s.record(*r)
		return t, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next >= len(s.opts.Script) {
		r.Answer = AnsweredUnscripted
		s.reqs = append(s.reqs, *r)
		return Turn{}, false
	}
	r.Answer, r.Turn = AnsweredScript, s.next
	s.next++
	s.reqs = append(s.reqs, *r)
	return s.opts.Script[r.Turn], true
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r)
}

// message is a Messages API answer, as sent.
type message struct {
	ID           string      `json:"id"`
	Type         string      `json:"type"`
	Role         string      `json:"role"`
	Model        string      `json:"model"`
	Content      []wireBlock `json:"content"`
	StopReason   string      `json:"stop_reason"`
	StopSequence *string     `json:"stop_sequence"`
	Usage        Usage       `json:"usage"`
}

// wireBlock is an answer's content block, as sent.
type wireBlock struct {
	Type  string          `json:"type"`
	Text  *string         `json:"text,omitempty"`
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
}

func wireBlocks(bs []Block) []wireBlock {
	out := make([]wireBlock, len(bs))
	for i, b := range bs {
		if b.Type == TypeText {
			text := b.Text
			out[i] = wireBlock{Type: TypeText, Text: &text}
		} else {
			out[i] = wireBlock{Type: TypeToolUse, ID: b.ID, Name: b.Name, Input: b.Input.(json.RawMessage)}
		}
	}
	return out
}

// stream sends msg as server-sent events: message_start (empty content,
// input usage), for each block content_block_start, its deltas and
// content_block_stop, then message_delta (stop reason and usage) and
// message_stop. Text is sent in up to three text_delta pieces and tool
// input in two input_json_delta pieces, so that clients put them together
// as they must with the real API.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, msg message) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(event string, data any) bool {
		if s.opts.EventDelay > 0 {
			t := time.NewTimer(s.opts.EventDelay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return false
			}
		}
		b, err := json.Marshal(data)
		if err != nil {
			panic(err) // our own types always marshal
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}

	start := msg
	start.Content, start.StopReason = []wireBlock{}, ""
	start.Usage.OutputTokens = 1
	startMsg := struct {
		message
		StopReason *string `json:"stop_reason"`
	}{message: start}
	if !send("message_start", map[string]any{"type": "message_start", "message": startMsg}) ||
		!send("ping", map[string]string{"type": "ping"}) {
		return
	}
	for i, b := range msg.Content {
		var first wireBlock
		var deltas []map[string]string
		if b.Type == TypeText {
			empty := ""
			first = wireBlock{Type: TypeText, Text: &empty}
			for _, p := range split(*b.Text, 3) {
				deltas = append(deltas, map[string]string{"type": "text_delta", "text": p})
			}
		} else {
			first = wireBlock{Type: TypeToolUse, ID: b.ID, Name: b.Name, Input: json.RawMessage(`{}`)}
			for _, p := range split(string(b.Input), 2) {
				deltas = append(deltas, map[string]string{"type": "input_json_delta", "partial_json": p})
			}
		}
		if !send("content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": first}) {
			return
		}
		for _, d := range deltas {
			if !send("content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": d}) {
				return
			}
		}
		if !send("content_block_stop", map[string]any{"type": "content_block_stop", "index": i}) {
			return
		}
	}
	if !send("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": msg.StopReason, "stop_sequence": nil}, "usage": msg.Usage}) {
		return
	}
	send("message_stop", map[string]string{"type": "message_stop"})
}

// split cuts s into at most n pieces of about equal length, never inside a
// UTF-8 sequence. An empty s gives one empty piece.
func split(s string, n int) []string {
	if len(s) == 0 {
		return []string{""}
	}
	var out []string
	size := (len(s) + n - 1) / n
	for len(s) > 0 {
		cut := min(size, len(s))
		for cut < len(s) && !utf8RuneStart(s[cut]) {
			cut++
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	return out
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *APIError) {
	type detail struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	writeJSON(w, e.Status, struct {
		Type  string `json:"type"`
		Error detail `json:"error"`
	}{"error", detail{e.Type, e.Message}})
}

// lastUserText returns the text of the last user message of r.
func lastUserText(r *Request) string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return joinText(r.Messages[i].Content)
		}
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
