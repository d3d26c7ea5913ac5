// Package bullmqtest gives tests of code built on bullmq a real Redis, the
// way net/http/httptest gives them a real HTTP server: the shared test Redis
// with a unique queue name per test (so tests and packages run in parallel),
// a private redis-server on a free port that a test may stop, kill and
// restart, and Eventually to poll for a condition with a deadline.
//
// When Redis or the redis-server binary is absent, a helper fails the test
// if the environment variable CI is "true" and skips it otherwise, with a
// message saying what to start (see Unavailable).
//
// Environment: REDIS_URL overrides the shared Redis (default
// redis://127.0.0.1:6379/0). Tests must isolate their keys (QueueName,
// UniqueName) and never stop the shared server; StartRedis is for that.
//
// The package imports nothing from bullmq, so that bullmq's own tests can
// use it. Every helper takes a testing.TB and is safe for parallel tests.
package bullmqtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// Unavailable reports that a service or binary the test needs is missing:
// it fails tb when the environment variable CI is "true" and skips it
// otherwise. The message should say what to start or install.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		tb.Fatalf("required test service unavailable (CI=true): %s", msg)
		return
	}
	tb.Skipf("skipping: %s", msg)
}

// UniqueName returns base followed by "-" and 12 random hex digits, for
// queue names, key prefixes and the like that must not collide between
// tests. It fails tb only when the system has no randomness.
func UniqueName(tb testing.TB, base string) string {
	tb.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("random suffix: %v", err)
	}
	return base + "-" + hex.EncodeToString(b)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may still take it before the caller binds it, so callers
// that start a server retry with a new port when the bind fails.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pollInterval is how often Eventually calls its condition.
const pollInterval = 20 * time.Millisecond

// Eventually calls cond at once and then every 20 ms until it returns nil.
// When timeout passes first, it fails tb with what and cond's last error.
// Like every testing.TB failure, it must be called from the test's
// goroutine.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
			return
		}
		time.Sleep(pollInterval)
	}
}

// errNotYet is the error WaitFor's condition stands for while it is false.
var errNotYet = errors.New("condition still false")

// WaitFor is Eventually for a condition that carries no detail: it polls
// cond every 20 ms until it returns true and fails tb with what when
// timeout passes first.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	Eventually(tb, timeout, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}
