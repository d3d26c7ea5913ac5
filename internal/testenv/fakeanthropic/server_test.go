package fakeanthropic_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/agentorch/orchestrator/internal/testenv/fakeanthropic"
)

// sdkClient returns the official Go SDK's client for srv, with no retries
// so that a wrong answer shows at once.
func sdkClient(srv *fakeanthropic.Server) anthropic.Client {
	return anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithAPIKey("test"),
		option.WithBaseURL(srv.URL), option.WithMaxRetries(0))
}

// TestOfficialSDKReadsScriptedTurns checks the wire shapes against an
// independent parser: the official Go SDK accumulates the streamed turn and
// decodes the non-streamed one, and the server records what the SDK sent.
func TestOfficialSDKReadsScriptedTurns(t *testing.T) {
	srv := fakeanthropic.Start(t, fakeanthropic.Options{Script: []fakeanthropic.Turn{
		{Content: []fakeanthropic.Block{
			fakeanthropic.Text("Reading the file — ünïcode and all."),
			fakeanthropic.ToolUse("Read", map[string]string{"file_path": "/w/calc.py"}),
		}, Usage: fakeanthropic.Usage{InputTokens: 120, OutputTokens: 30, CacheReadInputTokens: 7}},
		{Content: []fakeanthropic.Block{fakeanthropic.Text("Done.")}, Model: "claude-fake-1", Usage: fakeanthropic.Usage{InputTokens: 200, OutputTokens: 5}},
	}})
	client := sdkClient(srv)
	ctx := context.Background()
	params := anthropic.MessageNewParams{
		Model:     "claude-test-model",
		MaxTokens: 1000,
		System:    []anthropic.TextBlockParam{{Text: "You fix bugs."}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("fix calc.py"))},
		Tools: []anthropic.ToolUnionParam{anthropic.ToolUnionParamOfTool(anthropic.ToolInputSchemaParam{
			Properties: map[string]any{"file_path": map[string]string{"type": "string"}}}, "Read")},
	}

	stream := client.Messages.NewStreaming(ctx, params)
	var msg anthropic.Message
	var events []string
	for stream.Next() {
		ev := stream.Current()
		events = append(events, ev.Type)
		if err := msg.Accumulate(ev); err != nil {
			t.Fatalf("accumulate %s: %v", ev.Type, err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 2 || msg.Content[0].Text != "Reading the file — ünïcode and all." ||
		msg.Content[1].Type != "tool_use" || msg.Content[1].Name != "Read" || msg.Content[1].ID != "toolu_fake_0_1" ||
		string(msg.Content[1].Input) != `{"file_path":"/w/calc.py"}` {
		t.Errorf("streamed content = %+v", msg.Content)
	}
	if msg.StopReason != anthropic.StopReasonToolUse || msg.Model != "claude-test-model" ||
		msg.Usage.InputTokens != 120 || msg.Usage.OutputTokens != 30 || msg.Usage.CacheReadInputTokens != 7 {
		t.Errorf("stop %q model %q usage %+v", msg.StopReason, msg.Model, msg.Usage)
	}
	// Text in 3 deltas, tool input in 2, as documented.
	want := "message_start content_block_start content_block_delta content_block_delta content_block_delta content_block_stop " +
		"content_block_start content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(events, " "); got != want {
		t.Errorf("events = %s\nwant     %s", got, want)
	}

	params.Messages = append(params.Messages, msg.ToParam(),
		anthropic.NewUserMessage(anthropic.NewToolResultBlock("toolu_fake_0_1", "def add(a, b): return a - b", false)))
	final, err := client.Messages.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if len(final.Content) != 1 || final.Content[0].Text != "Done." || final.StopReason != anthropic.StopReasonEndTurn ||
		final.Model != "claude-fake-1" || final.Usage.InputTokens != 200 {
		t.Errorf("non-streamed answer = %+v", final)
	}

	reqs := srv.ScriptRequests()
	if len(reqs) != 2 || srv.Remaining() != 0 {
		t.Fatalf("%d script requests, %d remaining", len(reqs), srv.Remaining())
	}
	first, second := reqs[0], reqs[1]
	if !first.Stream || second.Stream || first.Model != "claude-test-model" || first.MaxTokens != 1000 ||
		first.SystemText() != "You fix bugs." || first.UserText() != "fix calc.py" ||
		strings.Join(first.ToolNames(), ",") != "Read" {
		t.Errorf("first request = %+v", first)
	}
	results := second.ToolResults()
	if len(results) != 1 || results[0].ToolUseID != "toolu_fake_0_1" || results[0].Result != "def add(a, b): return a - b" || results[0].IsError {
		t.Errorf("tool results = %+v", results)
	}
}

// TestRulesAnswerSideRequests checks that rule answers do not consume the
// script, whatever order the requests come in.
func TestRulesAnswerSideRequests(t *testing.T) {
	srv := fakeanthropic.Start(t, fakeanthropic.Options{
		Script: []fakeanthropic.Turn{
			{Content: []fakeanthropic.Block{fakeanthropic.Text("main 0")}},
			{Content: []fakeanthropic.Block{fakeanthropic.Text("main 1")}},
		},
		Rules: []fakeanthropic.Rule{{
			Name:  "title",
			Match: fakeanthropic.NoTools,
			Reply: func(r *fakeanthropic.Request) fakeanthropic.Turn {
				return fakeanthropic.Turn{Content: []fakeanthropic.Block{fakeanthropic.Text("title for " + r.UserText())}}
			},
		}},
	})
	client := sdkClient(srv)
	tool := []anthropic.ToolUnionParam{anthropic.ToolUnionParamOfTool(anthropic.ToolInputSchemaParam{}, "Bash")}
	ask := func(text string, tools []anthropic.ToolUnionParam) string {
		t.Helper()
		m, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "m", MaxTokens: 10, Tools: tools,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))}})
		if err != nil {
			t.Fatal(err)
		}
		return m.Content[0].Text
	}
	got := []string{ask("a", tool), ask("side", nil), ask("b", tool), ask("side2", nil)}
	want := []string{"main 0", "title for side", "main 1", "title for side2"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("answers = %q, want %q", got, want)
	}
	var how []string
	for _, r := range srv.Requests() {
		how = append(how, r.Answer+":"+r.Rule)
	}
	if strings.Join(how, " ") != "script: rule:title script: rule:title" {
		t.Errorf("recorded = %v", how)
	}
}

func TestUnscriptedRequestIsAnErrorAndRecorded(t *testing.T) {
	srv := fakeanthropic.Start(t, fakeanthropic.Options{AllowUnscripted: true})
	status, body := post(t, srv.URL+"/v1/messages", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
	if status != http.StatusBadRequest || !strings.Contains(body, "script exhausted after 0 turns") || !strings.Contains(body, `"invalid_request_error"`) {
		t.Errorf("answer = %d %s", status, body)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Answer != fakeanthropic.AnsweredUnscripted || reqs[0].UserText() != "hi" {
		t.Errorf("recorded = %+v", reqs)
	}
}

func TestScriptedErrorAndOtherEndpoints(t *testing.T) {
	srv := fakeanthropic.Start(t, fakeanthropic.Options{Script: []fakeanthropic.Turn{
		{Error: &fakeanthropic.APIError{Status: 529, Type: "overloaded_error", Message: "busy"}},
	}})
	tests := []struct {
		path, body, want string
		status           int
	}{
		{"/v1/messages", `{"model":"m","messages":[]}`, `{"type":"error","error":{"type":"overloaded_error","message":"busy"}}`, 529},
		{"/v1/messages", `not json`, `bad Messages request`, 400},
		{"/v1/messages/count_tokens", `{"model":"m","messages":[]}`, `{"input_tokens":`, 200},
		{"/v1/nothing", `{}`, `"not_found_error"`, 404},
	}
	for _, tt := range tests {
		status, body := post(t, srv.URL+tt.path, tt.body)
		if status != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("POST %s %s = %d %s, want %d %s", tt.path, tt.body, status, body, tt.status, tt.want)
		}
	}
	if n := len(srv.Requests()); n != len(tests) {
		t.Errorf("%d requests recorded, want %d", n, len(tests))
	}
}

// TestGateHoldsTheAnswer checks that a gated turn is answered only once its
// gate is closed.
func TestGateHoldsTheAnswer(t *testing.T) {
	gate := make(chan struct{})
	srv := fakeanthropic.Start(t, fakeanthropic.Options{Script: []fakeanthropic.Turn{
		{Content: []fakeanthropic.Block{fakeanthropic.Text("after the gate")}, Gate: gate},
	}})
	answered := make(chan string, 1)
	go func() {
		_, body := post(t, srv.URL+"/v1/messages", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
		answered <- body
	}()
	waitFor(t, "the request to be recorded", func() bool { return len(srv.Requests()) == 1 })
	select {
	case body := <-answered:
		t.Fatalf("answered before the gate was closed: %s", body)
	case <-time.After(200 * time.Millisecond):
	}
	close(gate)
	select {
	case body := <-answered:
		if !strings.Contains(body, "after the gate") {
			t.Errorf("answer = %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer after the gate was closed")
	}
}

// TestEventDelaySpacesEvents checks that EventDelay is waited before each
// of the 9 events of a one-text-block answer (message_start, ping, block
// start, 3 deltas, block stop, message_delta, message_stop): the stream
// cannot end sooner than 9 delays.
func TestEventDelaySpacesEvents(t *testing.T) {
	const delay = 30 * time.Millisecond
	srv := fakeanthropic.Start(t, fakeanthropic.Options{EventDelay: delay, Script: []fakeanthropic.Turn{
		{Content: []fakeanthropic.Block{fakeanthropic.Text("three little pieces")}},
	}})
	start := time.Now()
	resp, err := http.Post(srv.URL+"/v1/messages", "application/json",
		strings.NewReader(`{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var names []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			names = append(names, name)
		}
	}
	elapsed := time.Since(start)
	if len(names) != 9 || names[0] != "message_start" || names[8] != "message_stop" {
		t.Fatalf("events = %v", names)
	}
	if elapsed < 9*delay {
		t.Errorf("stream took %s, less than 9 × %s", elapsed, delay)
	}
}

func TestInvalidOptionsFailTheTest(t *testing.T) {
	tests := map[string]fakeanthropic.Options{
		"negative delay":   {EventDelay: -time.Second},
		"empty turn":       {Script: []fakeanthropic.Turn{{}}},
		"nameless tool":    {Script: []fakeanthropic.Turn{{Content: []fakeanthropic.Block{fakeanthropic.ToolUse("", nil)}}}},
		"non-object input": {Script: []fakeanthropic.Turn{{Content: []fakeanthropic.Block{fakeanthropic.ToolUse("Read", []int{1})}}}},
		"unknown block":    {Script: []fakeanthropic.Turn{{Content: []fakeanthropic.Block{{Type: "image"}}}}},
		"bad error":        {Script: []fakeanthropic.Turn{{Error: &fakeanthropic.APIError{Status: 200, Type: "x"}}}},
		"incomplete rule":  {Rules: []fakeanthropic.Rule{{Name: "r"}}},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			rec := &fatalRecorder{TB: t}
			func() {
				defer func() { _ = recover() }()
				fakeanthropic.Start(rec, opts)
			}()
			if !rec.fatal {
				t.Error("Start accepted invalid options")
			}
		})
	}
}

// fatalRecorder records Fatal instead of ending the test.
type fatalRecorder struct {
	testing.TB
	fatal bool
}

func (r *fatalRecorder) Fatal(args ...any) { r.fatal = true; panic("fatal") }

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
