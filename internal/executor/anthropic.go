package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// Defaults of AnthropicOptions.
const (
	DefaultAnthropicMaxTokens  = 4096
	DefaultAnthropicMaxRetries = 2
)

// AnthropicOptions configure the Anthropic executor.
type AnthropicOptions struct {
	// APIKey authenticates the requests. Required.
	APIKey string
	// Model names the model. Required.
	Model string
	// BaseURL replaces the API's base URL (a proxy, or a fake in tests).
	// Defaults to the production API.
	BaseURL string
	// MaxTokens bounds the answer. Defaults to DefaultAnthropicMaxTokens.
	MaxTokens int64
	// MaxRetries bounds the retries of a request that failed with 408, 409,
	// 429, a 5xx status or a connection error. Each retry waits as long as
	// the response's retry-after-ms or retry-after header says, else an
	// exponential backoff (0.5 s doubling, at most 8 s); the run's timeout
	// bounds the whole. Defaults to DefaultAnthropicMaxRetries; -1 means none.
	MaxRetries int
	// MaxOutput caps the answer's bytes. Defaults to DefaultMaxOutput.
	MaxOutput int64
	// HTTPClient replaces the HTTP client. Defaults to the SDK's.
	HTTPClient *http.Client
}

// Anthropic answers a task with one call to the Anthropic Messages API
// through the official Go SDK: the prompt and the code go in one user
// message, and the result is an [AnthropicResult]. It does not read the
// environment; the options say everything.
//
// Anthropic is safe for concurrent use.
type Anthropic struct {
	client    anthropic.Client
	model     string
	maxTokens int64
	maxOutput int64
}

var _ Executor = (*Anthropic)(nil)

// NewAnthropic returns an Anthropic executor. It makes no request.
func NewAnthropic(opts AnthropicOptions) (*Anthropic, error) {
	switch {
	case opts.APIKey == "":
		return nil, errors.New("new anthropic executor: API key is required")
	case opts.Model == "":
		return nil, errors.New("new anthropic executor: model is required")
	case opts.MaxTokens < 0:
		return nil, fmt.Errorf("new anthropic executor: max tokens %d is negative", opts.MaxTokens)
	case opts.MaxRetries < -1:
		return nil, fmt.Errorf("new anthropic executor: max retries %d is below -1", opts.MaxRetries)
	case opts.MaxOutput < 0:
		return nil, fmt.Errorf("new anthropic executor: max output %d is negative", opts.MaxOutput)
	}
	retries := opts.MaxRetries
	switch retries {
	case 0:
		retries = DefaultAnthropicMaxRetries
	case -1:
		retries = 0
	}
	ro := []option.RequestOption{
		option.WithoutEnvironmentDefaults(),
		option.WithAPIKey(opts.APIKey),
		option.WithMaxRetries(retries),
	}
	if opts.BaseURL != "" {
		ro = append(ro, option.WithBaseURL(opts.BaseURL))
	}
	if opts.HTTPClient != nil {
		ro = append(ro, option.WithHTTPClient(opts.HTTPClient))
	}
	a := &Anthropic{client: anthropic.NewClient(ro...), model: opts.Model, maxTokens: opts.MaxTokens, maxOutput: opts.MaxOutput}
	if a.maxTokens == 0 {
		a.maxTokens = DefaultAnthropicMaxTokens
	}
	if a.maxOutput == 0 {
		a.maxOutput = DefaultMaxOutput
	}
	return a, nil
}

// AnthropicResult is the result of an Anthropic run, as posted.
type AnthropicResult struct {
	// Answer is the text of the model's answer.
	Answer string `json:"answer"`
	// Model is the model that answered.
	Model string `json:"model"`
	// StopReason says why the model stopped ("end_turn", "max_tokens", …).
	StopReason string `json:"stopReason"`
	// Usage counts the tokens.
	Usage AnthropicUsage `json:"usage"`
	// Truncated reports that the answer was cut at the output cap.
	Truncated bool `json:"truncated,omitempty"`
}

// AnthropicUsage counts the tokens of one call.
type AnthropicUsage struct {
	InputTokens              int64 `json:"inputTokens"`
	OutputTokens             int64 `json:"outputTokens"`
	CacheCreationInputTokens int64 `json:"cacheCreationInputTokens,omitempty"`
	CacheReadInputTokens     int64 `json:"cacheReadInputTokens,omitempty"`
}

const anthropicSystemPrompt = "You are a coding agent. The user gives you a task and the code it is about. " +
	"Answer the task; when it asks for changes, show the changed code in full."

// Run asks the model about in. A request refused for a reason another try
// cannot fix (400, 401, 403, 404, 413, 422) is unrecoverable.
func (a *Anthropic) Run(ctx context.Context, in Input) (Output, error) {
	if err := in.validate(); err != nil {
		return Output{}, err
	}
	ctx, cancel := withTimeout(ctx, in.Timeout)
	defer cancel()
	content := in.Prompt + "\n\nCode:\n```\n" + in.Code + "\n```\n"
	msg, err := a.client.Messages.New(ctx, anthropic.MessageNewParams{
		Model:     anthropic.Model(a.model),
		MaxTokens: a.maxTokens,
		System:    []anthropic.TextBlockParam{{Text: anthropicSystemPrompt}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(content))},
	})
	if err != nil {
		if ctx.Err() != nil {
			return Output{}, stopCause(ctx)
		}
		var apiErr *anthropic.Error
		if errors.As(err, &apiErr) {
			e := fmt.Errorf("anthropic task %s: messages API status %d: %s", in.TaskID, apiErr.StatusCode, apiMessage(apiErr))
			switch apiErr.StatusCode {
			case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
				http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
				return Output{}, Unrecoverable(e)
			}
			return Output{}, e
		}
		return Output{}, fmt.Errorf("anthropic task %s: messages API: %w", in.TaskID, err)
	}
	var text strings.Builder
	for _, block := range msg.Content {
		if block.Type == "text" {
			text.WriteString(block.Text)
		}
	}
	res := AnthropicResult{
		Answer:     text.String(),
		Model:      string(msg.Model),
		StopReason: string(msg.StopReason),
		Usage: AnthropicUsage{
			InputTokens:              msg.Usage.InputTokens,
			OutputTokens:             msg.Usage.OutputTokens,
			CacheCreationInputTokens: msg.Usage.CacheCreationInputTokens,
			CacheReadInputTokens:     msg.Usage.CacheReadInputTokens,
		},
	}
	if int64(len(res.Answer)) > a.maxOutput {
		res.Answer = strings.ToValidUTF8(res.Answer[:a.maxOutput], "\uFFFD")
		res.Truncated = true
	}
	b, err := json.Marshal(res)
	if err != nil {
		return Output{}, fmt.Errorf("anthropic task %s: encode result: %w", in.TaskID, err)
	}
	return Output{Result: b, Truncated: res.Truncated}, nil
}

// apiMessage returns the API's error message, or the status text.
func apiMessage(e *anthropic.Error) string {
	if e.Message != "" {
		return e.Message
	}
	return http.StatusText(e.StatusCode)
}
