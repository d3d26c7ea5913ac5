package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// claudeDir is where `make claude-deps` installs the pinned Claude Code CLI,
// relative to the repository root.
const claudeDir = "test/claude"

// ClaudeBin returns the path of the Claude Code CLI installed by
// `make claude-deps` (test/claude/node_modules/.bin/claude), after checking
// that it runs and reports the version pinned in test/claude/package.json.
// When it is missing or not the pinned version, the test fails under
// CI=true and is skipped otherwise, saying to run `make claude-deps`.
func ClaudeBin(tb testing.TB) string {
	tb.Helper()
	root, err := repoRoot()
	if err != nil {
		tb.Fatalf("claude CLI: %v", err)
	}
	dir := filepath.Join(root, claudeDir)
	want, err := pinnedClaudeVersion(dir)
	if err != nil {
		tb.Fatalf("claude CLI: %v", err)
	}
	bin := filepath.Join(dir, "node_modules", ".bin", "claude")
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		Unavailable(tb, "Claude Code CLI %s not runnable at %s (%v: %s); run `make claude-deps`", want, bin, err, strings.TrimSpace(string(out)))
		return ""
	}
	if got := strings.Fields(string(out)); len(got) == 0 || got[0] != want {
		Unavailable(tb, "Claude Code CLI at %s reports %q, want the pinned %s; run `make claude-deps`", bin, strings.TrimSpace(string(out)), want)
		return ""
	}
	return bin
}

// ClaudeEnv returns the environment that runs the Claude Code CLI offline
// against the Anthropic API at baseURL (a fake, see package fakeanthropic):
// the API key "test" (and an empty ANTHROPIC_AUTH_TOKEN, so that a token in
// the caller's environment is not used), a fresh HOME in a temporary directory (so no user
// settings, credentials or session history are read or left behind), and
// telemetry, the auto-updater and every other nonessential request turned
// off. Append it to a command's environment; later entries win.
func ClaudeEnv(tb testing.TB, baseURL string) []string {
	tb.Helper()
	home := tb.TempDir()
	return []string{
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"CLAUDE_CONFIG_DIR=" + filepath.Join(home, ".claude"),
		"ANTHROPIC_BASE_URL=" + baseURL,
		"ANTHROPIC_API_KEY=test",
		"ANTHROPIC_AUTH_TOKEN=",
		"DISABLE_TELEMETRY=1",
		"DISABLE_AUTOUPDATER=1",
		"DISABLE_ERROR_REPORTING=1",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
	}
}

// pinnedClaudeVersion reads the exact version of @anthropic-ai/claude-code
// from dir/package.json.
func pinnedClaudeVersion(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return "", err
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		return "", fmt.Errorf("parse %s/package.json: %w", dir, err)
	}
	v := pkg.Dependencies["@anthropic-ai/claude-code"]
	if v == "" {
		return "", fmt.Errorf("%s/package.json pins no @anthropic-ai/claude-code", dir)
	}
	return v, nil
}

// repoRoot returns the directory holding go.mod, found from the working
// directory (a test's package directory) upwards.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
