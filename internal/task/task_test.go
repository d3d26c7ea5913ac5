package task_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/agentorch/orchestrator/internal/task"
)

func TestNewTaskValidate(t *testing.T) {
	code, prompt := "print(1)", "run it"
	tests := []struct {
		name        string
		in          task.NewTask
		wantField   string // "" for valid
		wantTimeout int64
	}{
		{"minimal, default timeout", task.NewTask{Code: code, Prompt: prompt}, "", task.DefaultTimeoutMs},
		{"empty code", task.NewTask{Prompt: prompt}, "code", 0},
		{"code at limit", task.NewTask{Code: strings.Repeat("x", task.MaxCodeBytes), Prompt: prompt}, "", task.DefaultTimeoutMs},
		{"code over limit", task.NewTask{Code: strings.Repeat("x", task.MaxCodeBytes+1), Prompt: prompt}, "code", 0},
		{"empty prompt", task.NewTask{Code: code}, "prompt", 0},
		{"prompt at limit", task.NewTask{Code: code, Prompt: strings.Repeat("é", task.MaxPromptBytes/2)}, "", task.DefaultTimeoutMs},
		{"prompt over limit", task.NewTask{Code: code, Prompt: strings.Repeat("x", task.MaxPromptBytes+1)}, "prompt", 0},
		{"timeout below minimum", task.NewTask{Code: code, Prompt: prompt, Timeout: task.MinTimeoutMs - 1}, "timeout", 0},
		{"timeout at minimum", task.NewTask{Code: code, Prompt: prompt, Timeout: task.MinTimeoutMs}, "", task.MinTimeoutMs},
		{"timeout at maximum", task.NewTask{Code: code, Prompt: prompt, Timeout: task.MaxTimeoutMs}, "", task.MaxTimeoutMs},
		{"timeout over maximum", task.NewTask{Code: code, Prompt: prompt, Timeout: task.MaxTimeoutMs + 1}, "timeout", 0},
		{"negative timeout", task.NewTask{Code: code, Prompt: prompt, Timeout: -1}, "timeout", 0},
		{"first wrong field wins", task.NewTask{Timeout: -1}, "code", 0},
		{"priority 1", task.NewTask{Code: code, Prompt: prompt, Priority: intp(1)}, "", task.DefaultTimeoutMs},
		{"priority max", task.NewTask{Code: code, Prompt: prompt, Priority: intp(task.MaxPriority)}, "", task.DefaultTimeoutMs},
		{"priority 0", task.NewTask{Code: code, Prompt: prompt, Priority: intp(0)}, "priority", 0},
		{"priority over max", task.NewTask{Code: code, Prompt: prompt, Priority: intp(task.MaxPriority + 1)}, "priority", 0},
		{"negative priority", task.NewTask{Code: code, Prompt: prompt, Priority: intp(-1)}, "priority", 0},
		{"metadata object", task.NewTask{Code: code, Prompt: prompt, Metadata: []byte(` {"ticket":"AAI-003","n":[1,{"x":null}]} `)}, "", task.DefaultTimeoutMs},
		{"metadata null", task.NewTask{Code: code, Prompt: prompt, Metadata: []byte(`null`)}, "", task.DefaultTimeoutMs},
		{"metadata array", task.NewTask{Code: code, Prompt: prompt, Metadata: []byte(`["a"]`)}, "metadata", 0},
		{"metadata string", task.NewTask{Code: code, Prompt: prompt, Metadata: []byte(`"a"`)}, "metadata", 0},
		{"metadata invalid", task.NewTask{Code: code, Prompt: prompt, Metadata: []byte(`{"a":}`)}, "metadata", 0},
		{"metadata with NUL", task.NewTask{Code: code, Prompt: prompt, Metadata: []byte(`{"a":"x\u0000"}`)}, "metadata", 0},
		{"metadata key with NUL", task.NewTask{Code: code, Prompt: prompt, Metadata: []byte(`{"\u0000":1}`)}, "metadata", 0},
		{"metadata at limit", task.NewTask{Code: code, Prompt: prompt,
			Metadata: []byte(`{"k":"` + strings.Repeat("x", task.MaxMetadataBytes-8) + `"}`)}, "", task.DefaultTimeoutMs},
		{"metadata over limit", task.NewTask{Code: code, Prompt: prompt,
			Metadata: []byte(`{"k":"` + strings.Repeat("x", task.MaxMetadataBytes-7) + `"}`)}, "metadata", 0},
		{"callback https", task.NewTask{Code: code, Prompt: prompt, CallbackURL: "https://hooks.example.com/x?a=1"}, "", task.DefaultTimeoutMs},
		{"callback ftp", task.NewTask{Code: code, Prompt: prompt, CallbackURL: "ftp://example.com/"}, "callbackUrl", 0},
		{"callback relative", task.NewTask{Code: code, Prompt: prompt, CallbackURL: "/hooks"}, "callbackUrl", 0},
		{"callback with credentials", task.NewTask{Code: code, Prompt: prompt, CallbackURL: "https://u:p@example.com/"}, "callbackUrl", 0},
		{"callback with fragment", task.NewTask{Code: code, Prompt: prompt, CallbackURL: "https://example.com/#x"}, "callbackUrl", 0},
		{"callback too long", task.NewTask{Code: code, Prompt: prompt, CallbackURL: "https://example.com/" + strings.Repeat("a", task.MaxCallbackURLBytes)}, "callbackUrl", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.in
			err := n.Validate()
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if n.Timeout != tc.wantTimeout {
					t.Fatalf("Timeout = %d, want %d", n.Timeout, tc.wantTimeout)
				}
				return
			}
			var ve *task.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want *ValidationError", err)
			}
			if ve.Field != tc.wantField || ve.Reason == "" {
				t.Fatalf("ValidationError = %+v, want field %q with a reason", ve, tc.wantField)
			}
			if !errors.Is(err, task.ErrInvalid) {
				t.Fatalf("errors.Is(%v, ErrInvalid) = false", err)
			}
			if !strings.HasPrefix(err.Error(), tc.wantField+": ") {
				t.Fatalf("Error() = %q, want it to start with the field", err.Error())
			}
		})
	}
}

func TestStatus(t *testing.T) {
	terminal := map[task.Status]bool{task.StatusCompleted: true, task.StatusFailed: true, task.StatusCancelled: true}
	if len(task.Statuses) != 6 {
		t.Fatalf("Statuses has %d entries, want 6", len(task.Statuses))
	}
	for _, s := range task.Statuses {
		if !s.Valid() {
			t.Errorf("%s.Valid() = false", s)
		}
		if s.Terminal() != terminal[s] {
			t.Errorf("%s.Terminal() = %v", s, s.Terminal())
		}
		got, err := task.ParseStatus(string(s))
		if err != nil || got != s {
			t.Errorf("ParseStatus(%q) = %q, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "Pending", "done", "running "} {
		if _, err := task.ParseStatus(bad); !errors.Is(err, task.ErrInvalidStatus) {
			t.Errorf("ParseStatus(%q) err = %v, want ErrInvalidStatus", bad, err)
		}
		if task.Status(bad).Valid() {
			t.Errorf("Status(%q).Valid() = true", bad)
		}
	}
}

func TestValidateRefusesNUL(t *testing.T) {
	for _, tc := range []struct {
		field string
		n     task.NewTask
	}{
		{"code", task.NewTask{Code: "a\x00b", Prompt: "p"}},
		{"prompt", task.NewTask{Code: "c", Prompt: "p\x00"}},
	} {
		err := tc.n.Validate()
		var ve *task.ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("%s with NUL: got %v, want a ValidationError on %s", tc.field, err, tc.field)
		}
	}
}

func intp(n int) *int { return &n }

func TestMetadataFilterValidate(t *testing.T) {
	for _, tc := range []struct {
		f  task.MetadataFilter
		ok bool
	}{
		{task.MetadataFilter{Key: "ticket", Value: "AAI-003"}, true},
		{task.MetadataFilter{Key: "a.b c", Value: ""}, true},
		{task.MetadataFilter{Key: "", Value: "x"}, false},
		{task.MetadataFilter{Key: strings.Repeat("k", task.MaxMetadataKeyBytes+1), Value: "x"}, false},
		{task.MetadataFilter{Key: "k", Value: strings.Repeat("v", task.MaxMetadataValueBytes+1)}, false},
		{task.MetadataFilter{Key: "k", Value: "a\x00b"}, false},
		{task.MetadataFilter{Key: "k\xff", Value: "x"}, false},
	} {
		err := tc.f.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%q=%q) = %v, want ok %v", tc.f.Key, tc.f.Value, err, tc.ok)
		}
		var ve *task.ValidationError
		if err != nil && (!errors.As(err, &ve) || !strings.HasPrefix(ve.Field, "metadata.")) {
			t.Errorf("Validate(%q) error %v is not a ValidationError on metadata.<key>", tc.f.Key, err)
		}
	}
	if got := (task.MetadataFilter{Key: `a"b`, Value: "c"}).JSON(); got != `{"a\"b":"c"}` {
		t.Errorf("JSON() = %s", got)
	}
}

func TestValidateIdempotencyKey(t *testing.T) {
	for _, k := range []string{"a", "order-123:retry", strings.Repeat("k", task.MaxIdempotencyKeyBytes), "with space"} {
		if err := task.ValidateIdempotencyKey(k); err != nil {
			t.Errorf("ValidateIdempotencyKey(%q) = %v", k, err)
		}
	}
	for _, k := range []string{"", strings.Repeat("k", task.MaxIdempotencyKeyBytes+1), "tab\t", "é"} {
		if err := task.ValidateIdempotencyKey(k); !errors.Is(err, task.ErrInvalid) {
			t.Errorf("ValidateIdempotencyKey(%q) = %v, want invalid", k, err)
		}
	}
}
