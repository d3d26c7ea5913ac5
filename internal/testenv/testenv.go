// Package testenv gives tests real services, isolated so that packages and
// tests can run in parallel: the shared Redis and PostgreSQL (with a unique
// key prefix or schema per test), temporary SQLite files, and private
// redis-server or PostgreSQL processes on free ports for tests that stop or
// kill a service.
//
// When a service or binary is absent, a helper fails the test if the
// environment variable CI is "true" and skips it otherwise, with a message
// saying what to start.
//
// Environment: REDIS_URL overrides the shared Redis (default
// redis://127.0.0.1:6379/0), TEST_DATABASE_URL the shared PostgreSQL
// database (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable).
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"testing"
)

// unavailable fails tb under CI=true and skips it otherwise.
func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		tb.Fatalf("required test service unavailable (CI=true): %s", msg)
	}
	tb.Skipf("skipping: %s", msg)
}

// randomHex returns n random bytes in hex.
func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("random suffix: %v", err)
	}
	return hex.EncodeToString(b)
}

// UniqueName returns base followed by "-" and a random suffix, for queue
// names, key prefixes and the like that must not collide between tests.
func UniqueName(tb testing.TB, base string) string {
	tb.Helper()
	return base + "-" + randomHex(tb, 6)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another
// process may still take it before the caller binds it.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
