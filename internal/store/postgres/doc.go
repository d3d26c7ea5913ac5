// Package postgres implements task.Store on PostgreSQL with pgx.
//
// Open runs the embedded, numbered migrations (goose) before returning, in
// the schema that the URL's search_path selects, so several stores can share
// one database in separate schemas. Every state change is one conditional
// UPDATE, so concurrent writers (API replicas, event listeners, result
// consumers) never overwrite each other.
//
// Concurrent Create calls, and concurrent Apply calls, are committed
// together (group commit, package groupcommit): the calls that arrive while
// a batch is being written form the next batch, one multi-row INSERT or one
// pipeline of UPDATEs in one transaction, so they share one round trip and
// one WAL flush. No goroutine runs in the background: one of the waiting
// callers writes each batch. Every call keeps its own outcome.
package postgres
