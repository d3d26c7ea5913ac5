package fakeanthropic

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Block types a Turn can answer with.
const (
	TypeText    = "text"
	TypeToolUse = "tool_use"
)

// Stop reasons the server reports in message_delta.
const (
	StopEndTurn = "end_turn"
	StopToolUse = "tool_use"
)

// Turn is one scripted answer of the model: the assistant message's content
// blocks, its stop reason and its token usage. A Turn with Error set answers
// with that API error instead.
type Turn struct {
	// Content is the assistant message's content, in order. Each block is
	// streamed as content_block_start, one or more deltas, and
	// content_block_stop.
	Content []Block
	// StopReason is reported in message_delta (streaming) or in the message.
	// Defaults to StopToolUse when Content holds a tool_use block and to
	// StopEndTurn otherwise.
	StopReason string
	// Usage is reported in message_start (input and cache tokens) and in
	// message_delta (all of it, cumulative, as the API does). The zero value
	// reports zero tokens.
	Usage Usage
	// Model is the model the answer claims to come from. Defaults to the
	// request's model.
	Model string
	// Gate, when not nil, holds the answer until it is closed (or the
	// request is cancelled), so a test can look at what the client did with
	// the previous turns before the run goes on.
	Gate <-chan struct{}
	// Error, when not nil, is answered instead of a message.
	Error *APIError
}

// Block is one content block of an assistant message: text, or a call of
// one of the client's tools. Build them with Text and ToolUse.
type Block struct {
	// Type is TypeText or TypeToolUse.
	Type string
	// Text is the text of a text block.
	Text string
	// ID is the tool_use id. Defaults to "toolu_fake_<turn>_<block>" in the
	// script and "toolu_rule_<n>" in a rule's answer.
	ID string
	// Name is the tool's name (for instance "Read", "Edit", "Bash").
	Name string
	// Input is the tool's input, marshalled with encoding/json; it must be
	// a JSON object. nil means {}.
	Input any
}

// Text returns a text block.
func Text(s string) Block { return Block{Type: TypeText, Text: s} }

// ToolUse returns a tool_use block calling the tool name with input (a
// value that marshals to a JSON object, or nil for {}).
func ToolUse(name string, input any) Block {
	return Block{Type: TypeToolUse, Name: name, Input: input}
}

// Usage is the token usage of one answer, as the API reports it.
type Usage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// APIError is an error answer of the API: an HTTP status and the error
// object {"type":"error","error":{"type":Type,"message":Message}}.
type APIError struct {
	// Status is the HTTP status, for instance 400, 429, 529.
	Status int
	// Type is the error type, for instance "invalid_request_error",
	// "overloaded_error".
	Type string
	// Message says what went wrong.
	Message string
}

// Rule answers the requests it matches, before the script is consulted, so
// that a client's side requests (titles, summaries, quota checks) do not
// consume the scripted turns. Rules are tried in order; the first match
// answers.
type Rule struct {
	// Name identifies the rule in recorded requests (Request.Rule).
	// Required.
	Name string
	// Match reports whether the rule answers r. Required.
	Match func(r *Request) bool
	// Reply builds the answer to r. Required.
	Reply func(r *Request) Turn
}

// Options configure a Server. The zero value answers every Messages
// request with an error (there is no script) and counts it as unscripted.
type Options struct {
	// Script is answered turn by turn: the n-th Messages request that no
	// rule matches gets Script[n].
	Script []Turn
	// Rules answer the requests they match without consuming the script.
	Rules []Rule
	// EventDelay is waited before each server-sent event of a streamed
	// answer, so that a client's live output can be watched. Defaults to
	// no delay.
	EventDelay time.Duration
	// AllowUnscripted, when true, lets Messages requests arrive after the
	// script is exhausted without failing the test. They are answered with
	// a 400 invalid_request_error in either case.
	AllowUnscripted bool
}

// validate checks opts and fills in the defaults of the script's turns,
// returning the script to serve.
func (opts Options) validate() ([]Turn, error) {
	if opts.EventDelay < 0 {
		return nil, fmt.Errorf("fakeanthropic: EventDelay %s is negative", opts.EventDelay)
	}
	for i, r := range opts.Rules {
		if r.Name == "" || r.Match == nil || r.Reply == nil {
			return nil, fmt.Errorf("fakeanthropic: rule %d: Name, Match and Reply are required", i)
		}
	}
	script := make([]Turn, len(opts.Script))
	for i, t := range opts.Script {
		t, err := t.complete(fmt.Sprintf("toolu_fake_%d_", i))
		if err != nil {
			return nil, fmt.Errorf("fakeanthropic: script turn %d: %w", i, err)
		}
		script[i] = t
	}
	return script, nil
}

// complete checks t and returns it with its defaults filled in; tool_use
// ids default to idPrefix followed by the block's index.
func (t Turn) complete(idPrefix string) (Turn, error) {
	if t.Error != nil {
		if t.Error.Status < 400 || t.Error.Status > 599 || t.Error.Type == "" {
			return t, fmt.Errorf("error answer needs a 4xx/5xx Status and a Type, got %d %q", t.Error.Status, t.Error.Type)
		}
		return t, nil
	}
	if len(t.Content) == 0 {
		return t, errors.New("no content blocks")
	}
	content := make([]Block, len(t.Content))
	hasTool := false
	for i, b := range t.Content {
		switch b.Type {
		case TypeText:
		case TypeToolUse:
			hasTool = true
			if b.Name == "" {
				return t, fmt.Errorf("block %d: tool_use without a Name", i)
			}
			if b.ID == "" {
				b.ID = fmt.Sprintf("%s%d", idPrefix, i)
			}
			in, err := inputJSON(b.Input)
			if err != nil {
				return t, fmt.Errorf("block %d (%s): %w", i, b.Name, err)
			}
			b.Input = in
		default:
			return t, fmt.Errorf("block %d: unknown type %q", i, b.Type)
		}
		content[i] = b
	}
	t.Content = content
	if t.StopReason == "" {
		t.StopReason = StopEndTurn
		if hasTool {
			t.StopReason = StopToolUse
		}
	}
	return t, nil
}

// inputJSON marshals a tool input, which must be a JSON object.
func inputJSON(v any) (json.RawMessage, error) {
	if v == nil {
		return json.RawMessage(`{}`), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshal input: %w", err)
	}
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("input %s is not a JSON object", b)
	}
	return b, nil
}

// NoTools reports whether r offers no tools: true for a client's side
// requests (titles, summaries, classifications), false for the requests of
// an agent loop. Use it as a Rule's Match.
func NoTools(r *Request) bool { return len(r.Tools) == 0 }

// FixFile returns the script of an agent fixing a bug in one file: it reads
// path (turn 0: a text and a Read call), replaces old by new in it (turn 1:
// a text and an Edit call), and answers with answer (turn 2). path may be
// relative to the client's working directory. Each turn reports 100 input
// and 20 output tokens.
func FixFile(path, old, new, answer string) []Turn {
	usage := Usage{InputTokens: 100, OutputTokens: 20}
	return []Turn{
		{Content: []Block{Text("Let me read " + path + "."), ToolUse("Read", map[string]string{"file_path": path})}, Usage: usage},
		{Content: []Block{Text("Found the bug; fixing it."), ToolUse("Edit", map[string]string{"file_path": path, "old_string": old, "new_string": new})}, Usage: usage},
		{Content: []Block{Text(answer)}, Usage: usage},
	}
}
