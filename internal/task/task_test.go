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
