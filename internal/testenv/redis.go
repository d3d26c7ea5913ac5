package testenv

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

// The Redis helpers live in bullmq/bullmqtest, so that the public bullmq
// library's tests need nothing from internal/; these are the same helpers
// under the names the application's tests use.

// RedisURL is bullmqtest.RedisURL: the URL of the shared Redis (REDIS_URL,
// default redis://127.0.0.1:6379/0) after checking that it answers.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	return bullmqtest.RedisURL(tb)
}

// RedisAddr is bullmqtest.RedisAddr: the host:port of the shared Redis after
// checking that it answers. Tests must isolate their keys (see UniqueName)
// and never stop it.
func RedisAddr(tb testing.TB) string {
	tb.Helper()
	return bullmqtest.RedisAddr(tb)
}

// RedisClient is bullmqtest.RedisClient: a client on the shared Redis,
// closed at cleanup.
func RedisClient(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	return bullmqtest.RedisClient(tb)
}

// RedisServer is a private redis-server process (see bullmqtest.RedisServer)
// for tests that stop, kill or restart Redis.
type RedisServer = bullmqtest.RedisServer

// StartRedis is bullmqtest.StartRedis: a private redis-server on a free
// port, answering, killed at cleanup.
func StartRedis(tb testing.TB) *RedisServer {
	tb.Helper()
	return bullmqtest.StartRedis(tb)
}

// QueueName is bullmqtest.QueueName: a unique queue name whose keys under
// the prefix "bull" are deleted from the shared Redis at cleanup.
func QueueName(tb testing.TB, base string) string {
	tb.Helper()
	return bullmqtest.QueueName(tb, base)
}

// TaskQueue returns a unique name for a task queue of the orchestrator
// (UniqueName) and deletes at cleanup, from the shared Redis, every key of
// that queue and of its sibling queues and sets ("<name>-results", "-webhooks", "-cancel-requests") under the prefix
// "bull", including those made by processes the test starts.
func TaskQueue(tb testing.TB, base string) string {
	tb.Helper()
	name := bullmqtest.QueueName(tb, base)
	bullmqtest.CleanKeys(tb, "bull:"+name+"-*") // -results, -cancel-requests, -webhooks
	return name
}

// CleanRedisKeys is bullmqtest.CleanKeys: it deletes, at the test's cleanup,
// every key of the shared Redis that matches one of patterns (SCAN MATCH
// syntax). It is best effort: without a reachable Redis it does nothing.
func CleanRedisKeys(tb testing.TB, patterns ...string) {
	tb.Helper()
	bullmqtest.CleanKeys(tb, patterns...)
}
