// Package task is the orchestrator's domain: the Task, its Status and the
// transitions allowed between statuses, the Store interface that persists
// tasks, and the Service that enforces the rules.
//
// The package imports nothing else from this repository. Storage, HTTP and
// queue adapters depend on it, never the reverse.
package task
