// Package sqlite implements task.Store on SQLite with modernc.org/sqlite
// (pure Go, driver name "sqlite"), for single-node deployments and tests.
//
// The database runs in WAL mode. All writes go through one connection, so
// writers of this process queue in Go instead of failing with "database is
// locked"; reads use a separate pool and never block the writer. Other
// processes writing the same file wait up to the busy timeout. Concurrent
// Create and Apply calls are committed together (group commit, package
// groupcommit): the calls that arrive while one write transaction runs
// share the next, each as its own statement with its own outcome. Open runs
// the embedded, numbered migrations (goose) before returning.
package sqlite
