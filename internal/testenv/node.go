package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// NodeDir returns the directory of the Node driver of the official BullMQ
// packages, test/node (worker.js, queue.js, events.js, bench.js and their
// node_modules), after checking that node is in PATH and that the pinned
// packages are installed. When either is missing it fails tb under CI=true
// and skips it otherwise, saying to run `make node-deps`.
func NodeDir(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(RepoRoot(), "test", "node")
	if _, err := exec.LookPath("node"); err != nil {
		Unavailable(tb, "node not found in PATH; install Node.js 20+ and run `make node-deps`")
	}
	for _, m := range []string{"bullmq5", "bullmq6", "ioredis"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", m, "package.json")); err != nil {
			Unavailable(tb, "%s/node_modules/%s missing; run `make node-deps` (npm ci in test/node)", dir, m)
		}
	}
	return dir
}

// RepoRoot returns the root directory of the repository (of its source
// tree, where the tests run), for tests that build a command or run a
// script of the repository.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}
