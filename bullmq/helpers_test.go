package bullmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// testRedisOptions returns the options of the shared test Redis: REDIS_URL,
// or 127.0.0.1:6379.
func testRedisOptions(tb testing.TB) *redis.Options {
	tb.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		opt, err := redis.ParseURL(u)
		if err != nil {
			tb.Fatalf("parse REDIS_URL: %v", err)
		}
		return opt
	}
	return &redis.Options{Addr: "127.0.0.1:6379"}
}

// testClient returns a client on the shared test Redis, closed at cleanup.
// Without Redis it fails under CI=true and skips otherwise.
func testClient(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	c := redis.NewClient(testRedisOptions(tb))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		if os.Getenv("CI") == "true" {
			tb.Fatalf("no Redis at %s: %v", c.Options().Addr, err)
		}
		tb.Skipf("no Redis at %s (%v): start redis-server or set REDIS_URL", c.Options().Addr, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// uniqueQueue returns base plus a random suffix, and deletes every key of
// that queue (default prefix) at cleanup.
func uniqueQueue(tb testing.TB, base string) string {
	tb.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	name := base + "-" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		c := redis.NewClient(testRedisOptions(tb))
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pattern := DefaultPrefix + ":" + strings.ReplaceAll(name, "*", `\*`) + ":*"
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		var ks []string
		for iter.Next(ctx) {
			ks = append(ks, iter.Val())
		}
		for len(ks) > 0 {
			n := min(len(ks), 500)
			c.Del(ctx, ks[:n]...)
			ks = ks[n:]
		}
	})
	return name
}

// redisZ is a redis.Z literal helper.
func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }
