package testenv

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestClaudeBinIsThePinnedVersion checks that the pin is exact and that
// ClaudeBin returns a CLI reporting it.
func TestClaudeBinIsThePinnedVersion(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	want, err := pinnedClaudeVersion(root + "/" + claudeDir)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(want) {
		t.Fatalf("test/claude/package.json pins %q, want an exact version", want)
	}
	bin := ClaudeBin(t)
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), want+" ") {
		t.Errorf("%s --version = %q, %v; want %s", bin, out, err, want)
	}
}

func TestClaudeEnvIsOffline(t *testing.T) {
	env := strings.Join(ClaudeEnv(t, "http://127.0.0.1:1"), "\n")
	for _, want := range []string{"ANTHROPIC_BASE_URL=http://127.0.0.1:1", "ANTHROPIC_API_KEY=test", "HOME=/",
		"DISABLE_TELEMETRY=1", "DISABLE_AUTOUPDATER=1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1"} {
		if !strings.Contains(env, want) {
			t.Errorf("ClaudeEnv lacks %s:\n%s", want, env)
		}
	}
}
