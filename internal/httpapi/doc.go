// Package httpapi serves the orchestrator's HTTP API: the task routes,
// statistics, health, the OpenAPI 3.1 document and an offline docs page.
//
// It is built on huma v2 over net/http. Every error response is an RFC 9457
// problem (application/problem+json) with status, title and detail and, for
// validation failures, an errors list whose location names the failing
// field (e.g. "body.code", "query.cursor"). Domain errors are translated to
// HTTP statuses in one place, problemFor in errors.go.
package httpapi
