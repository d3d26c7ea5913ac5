// Package postgres implements task.Store on PostgreSQL with pgx.
//
// Open runs the embedded, numbered migrations (goose) before returning, in
// the schema that the URL's search_path selects, so several stores can share
// one database in separate schemas. Every state change is one conditional
// UPDATE, so concurrent writers (API replicas, event listeners, result
// consumers) never overwrite each other.
package postgres
