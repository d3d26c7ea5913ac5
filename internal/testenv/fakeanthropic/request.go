package fakeanthropic

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// How a recorded request was answered (Request.Answer).
const (
	// AnsweredScript means the script turn Request.Turn answered.
	AnsweredScript = "script"
	// AnsweredRule means the rule named Request.Rule answered.
	AnsweredRule = "rule"
	// AnsweredUnscripted means a Messages request came after the script
	// was exhausted; it got a 400 error.
	AnsweredUnscripted = "unscripted"
	// AnsweredEndpoint means another endpoint answered (count_tokens,
	// /api/hello), or a 404 for an unknown path.
	AnsweredEndpoint = "endpoint"
	// AnsweredBadRequest means the body was not a valid Messages request;
	// it got a 400 error.
	AnsweredBadRequest = "bad_request"
)

// Request is one request the server received, with the Messages API
// fields parsed from its body.
type Request struct {
	// Method, Path and Query are the request line's.
	Method string
	Path   string
	Query  url.Values
	// Header holds the request's headers (x-api-key, anthropic-beta, …).
	Header http.Header
	// Body is the raw request body.
	Body []byte

	// Model, Stream, MaxTokens, System, Messages and Tools are the
	// Messages request's fields; zero for other endpoints.
	Model     string
	Stream    bool
	MaxTokens int
	System    []Content
	Messages  []Message
	Tools     []Tool

	// Answer says how the request was answered: AnsweredScript,
	// AnsweredRule, AnsweredUnscripted, AnsweredEndpoint or
	// AnsweredBadRequest.
	Answer string
	// Turn is the index of the script turn that answered, or -1.
	Turn int
	// Rule is the name of the rule that answered, or "".
	Rule string
}

// Message is one message of a Messages request.
type Message struct {
	Role    string
	Content []Content
}

// Content is one content block of a request: text, tool_use (from earlier
// assistant turns), tool_result, or any other type with only Type set.
type Content struct {
	Type string
	// Text is a text block's text.
	Text string
	// ID, Name and Input are a tool_use block's.
	ID    string
	Name  string
	Input json.RawMessage
	// ToolUseID, Result and IsError are a tool_result block's; Result is
	// its content (a string, or the texts of its blocks joined by
	// newlines).
	ToolUseID string
	Result    string
	IsError   bool
}

// Tool is one tool the client offered.
type Tool struct {
	Name        string
	Description string
	InputSchema json.RawMessage
}

// SystemText returns the texts of the system prompt's blocks joined by
// newlines.
func (r *Request) SystemText() string { return joinText(r.System) }

// ToolNames returns the names of the tools the client offered, in order.
func (r *Request) ToolNames() []string {
	names := make([]string, len(r.Tools))
	for i, t := range r.Tools {
		names[i] = t.Name
	}
	return names
}

// ToolResults returns the tool_result blocks of the last user message: the
// client's answers to the previous turn's tool calls.
func (r *Request) ToolResults() []Content {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role != "user" {
			continue
		}
		var out []Content
		for _, c := range r.Messages[i].Content {
			if c.Type == "tool_result" {
				out = append(out, c)
			}
		}
		return out
	}
	return nil
}

// UserText returns the texts of every user message joined by newlines.
func (r *Request) UserText() string {
	var parts []string
	for _, m := range r.Messages {
		if m.Role == "user" {
			if t := joinText(m.Content); t != "" {
				parts = append(parts, t)
			}
		}
	}
	return strings.Join(parts, "\n")
}

func joinText(cs []Content) string {
	var parts []string
	for _, c := range cs {
		if c.Type == TypeText {
			parts = append(parts, c.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// wireRequest is the part of a Messages request body the server reads.
type wireRequest struct {
	Model     string          `json:"model"`
	Stream    bool            `json:"stream"`
	MaxTokens int             `json:"max_tokens"`
	System    json.RawMessage `json:"system"`
	Messages  []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"input_schema"`
	} `json:"tools"`
}

// wireContent is one content block as sent.
type wireContent struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
}

// parseMessages fills r's Messages API fields from its body.
func (r *Request) parseMessages() error {
	var w wireRequest
	if err := json.Unmarshal(r.Body, &w); err != nil {
		return err
	}
	r.Model, r.Stream, r.MaxTokens = w.Model, w.Stream, w.MaxTokens
	var err error
	if r.System, err = parseContent(w.System); err != nil {
		return err
	}
	for _, m := range w.Messages {
		c, err := parseContent(m.Content)
		if err != nil {
			return err
		}
		r.Messages = append(r.Messages, Message{Role: m.Role, Content: c})
	}
	for _, t := range w.Tools {
		r.Tools = append(r.Tools, Tool{Name: t.Name, Description: t.Description, InputSchema: t.InputSchema})
	}
	return nil
}

// parseContent reads content given as a string (one text block) or as an
// array of blocks.
func parseContent(raw json.RawMessage) ([]Content, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []Content{{Type: TypeText, Text: s}}, nil
	}
	var ws []wireContent
	if err := json.Unmarshal(raw, &ws); err != nil {
		return nil, err
	}
	out := make([]Content, len(ws))
	for i, w := range ws {
		c := Content{Type: w.Type, Text: w.Text, ID: w.ID, Name: w.Name, Input: w.Input, ToolUseID: w.ToolUseID, IsError: w.IsError}
		if w.Type == "tool_result" {
			inner, err := parseContent(w.Content)
			if err != nil {
				return nil, err
			}
			c.Result = joinText(inner)
		}
		out[i] = c
	}
	return out, nil
}
