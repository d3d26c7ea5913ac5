package testenv

import (
	"path/filepath"
	"testing"
)

// SQLitePath returns the path of a SQLite database file, not yet created, in
// a temporary directory removed at cleanup.
func SQLitePath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "test.db")
}
