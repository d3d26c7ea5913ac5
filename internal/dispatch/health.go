package dispatch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/internal/task"
)

// RedisChecker checks Redis: PING latency and the eviction policy (BullMQ
// loses jobs unless maxmemory-policy is noeviction). It is safe for
// concurrent use.
type RedisChecker struct {
	client  redis.UniversalClient
	timeout time.Duration
	policy  *policyGate // nil: a bad policy is only a warning
}

// NewRedisChecker returns a checker of client whose checks take at most
// timeout (defaults to 2s when 0).
func NewRedisChecker(client redis.UniversalClient, timeout time.Duration) *RedisChecker {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &RedisChecker{client: client, timeout: timeout}
}

// CheckRedis pings Redis and reads its eviction policy. A Redis that does
// not answer gives Connected false and the reason in Warning, not an error.
// A policy the Dispatcher refuses (see CheckEvictionPolicy) gives Refused.
func (c *RedisChecker) CheckRedis(ctx context.Context) task.QueueHealth {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	if err := c.client.Ping(ctx).Err(); err != nil {
		return task.QueueHealth{Warning: fmt.Sprintf("redis unreachable: %v", err)}
	}
	h := task.QueueHealth{Connected: true, LatencyMs: float64(time.Since(start).Microseconds()) / 1000}
	info, err := c.client.Info(ctx, "memory").Result()
	if err != nil {
		h.Warning = fmt.Sprintf("cannot read maxmemory-policy: %v", err)
		return h
	}
	h.MaxmemoryPolicy = infoField(info, "maxmemory_policy")
	if h.MaxmemoryPolicy != "" && h.MaxmemoryPolicy != "noeviction" {
		h.Warning = fmt.Sprintf("maxmemory-policy is %s: Redis may evict queue keys and lose jobs; set it to noeviction", h.MaxmemoryPolicy)
		if c.policy != nil && c.policy.verdict(h.MaxmemoryPolicy) != nil {
			h.Refused = true
			h.Warning += "; no job is added until then (or REDIS_ALLOW_EVICTION=true)"
		}
	}
	return h
}

// infoField returns the value of field in an INFO reply ("" when absent).
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
