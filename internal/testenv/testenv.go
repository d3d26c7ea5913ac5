// Package testenv gives tests real services, isolated so that packages and
// tests can run in parallel: the shared Redis and PostgreSQL (with a unique
// key prefix or schema per test), temporary SQLite files, private
// redis-server or PostgreSQL processes on free ports for tests that stop or
// kill a service, the Node driver of the official BullMQ package
// (test/node), and small helpers to poll with a deadline and to show the
// end of a process's output.
//
// The helpers that need only Redis are those of bullmq/bullmqtest (the
// public library's tests may not import internal/), re-exported here; each
// helper is written once.
//
// When a service or binary is absent, a helper fails the test if the
// environment variable CI is "true" and skips it otherwise, with a message
// saying what to start (see Unavailable).
//
// Environment: REDIS_URL overrides the shared Redis (default
// redis://127.0.0.1:6379/0), TEST_DATABASE_URL the shared PostgreSQL
// database (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable).
package testenv

import (
	"strings"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

// Unavailable is bullmqtest.Unavailable: it fails tb under CI=true and
// skips it otherwise, because a service or binary the test needs is
// missing. The message should say what to start or install.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	bullmqtest.Unavailable(tb, format, args...)
}

// UniqueName is bullmqtest.UniqueName: base followed by "-" and a random
// suffix, for queue names, key prefixes, schemas and the like that must not
// collide between tests.
func UniqueName(tb testing.TB, base string) string {
	tb.Helper()
	return bullmqtest.UniqueName(tb, base)
}

// FreePort is bullmqtest.FreePort: a TCP port on 127.0.0.1 that was free a
// moment ago. Another process may still take it before the caller binds it.
func FreePort(tb testing.TB) int {
	tb.Helper()
	return bullmqtest.FreePort(tb)
}

// Eventually is bullmqtest.Eventually: it polls cond until it returns nil
// and fails tb with what and cond's last error when timeout passes first.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	bullmqtest.Eventually(tb, timeout, what, cond)
}

// WaitFor is bullmqtest.WaitFor: it polls cond until it returns true and
// fails tb with what when timeout passes first.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	bullmqtest.WaitFor(tb, timeout, what, cond)
}

// Tail returns the end of a process's output for a failure message: the
// last n bytes of s, from the start of a line when one begins in them, after
// a "…" line when anything was cut.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		s = s[i+1:]
	}
	return "…\n" + s
}
