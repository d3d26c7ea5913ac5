package config

import (
	"strings"
	"testing"
)

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "/bin/cat", want: []string{"/bin/cat"}},
		{in: "  python3  -u  agent.py ", want: []string{"python3", "-u", "agent.py"}},
		{in: `sh -c 'echo "hi there" | tr a-z A-Z'`, want: []string{"sh", "-c", `echo "hi there" | tr a-z A-Z`}},
		{in: `node "my agent.js" --flag="a b"`, want: []string{"node", "my agent.js", "--flag=a b"}},
		{in: `a\ b "q\"uote" "back\\slash" "\n"`, want: []string{"a b", `q"uote`, `back\slash`, `\n`}},
		{in: `x '' ""`, want: []string{"x", "", ""}},
		{in: "", wantErr: true},
		{in: "   ", wantErr: true},
		{in: `sh -c 'unterminated`, wantErr: true},
		{in: `trailing\`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := SplitArgs(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("SplitArgs(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") || len(got) != len(tt.want) {
			t.Errorf("SplitArgs(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
