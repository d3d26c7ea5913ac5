package testenv

import (
	"testing"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

// StartRedisArgs is StartRedis with extra redis-server arguments, kept
// across restarts: for example "--maxmemory-policy", "allkeys-lru", or
// "--aclfile", path (an ACL file whose default user must stay usable
// without a password: the readiness check and the test's own admin client
// use it).
func StartRedisArgs(tb testing.TB, args ...string) *RedisServer {
	tb.Helper()
	return bullmqtest.StartRedis(tb, args...)
}
