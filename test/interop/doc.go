// Package interop holds the interoperability suite between our bullmq package
// and the official Node BullMQ package, pinned at two versions (5.81.x and
// 6.7.0, see test/node/package.json). The tests drive the Node driver's
// scripts (test/node, shared with test/e2e) and a small Go worker program
// under goworker/ against a real Redis, and compare what each side writes
// and reads.
//
// Run `make node-deps` (npm ci in test/node) first; without node_modules the
// tests skip, or fail when CI=true.
package interop
