package bullmqtest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultRedisURL is the shared test Redis when REDIS_URL is not set.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// RedisURL returns the URL of the shared test Redis (REDIS_URL, or
// DefaultRedisURL) after checking that it answers PING; without it, it fails
// tb under CI=true and skips it otherwise (see Unavailable).
func RedisURL(tb testing.TB) string {
	tb.Helper()
	u := redisURL()
	RedisAddr(tb)
	return u
}

// RedisAddr returns the host:port of the shared test Redis after checking
// that it answers PING, like RedisURL.
func RedisAddr(tb testing.TB) string {
	tb.Helper()
	opts := RedisOptions(tb)
	if err := ping(opts); err != nil {
		Unavailable(tb, "no Redis at %s (%v); start one with `redis-server` or set REDIS_URL", opts.Addr, err)
	}
	return opts.Addr
}

// RedisOptions returns fresh client options for the shared test Redis
// (REDIS_URL, or DefaultRedisURL), with maintenance notifications off (a
// plain local server has none, and go-redis then never rewrites the options
// of a live client). It does not check that Redis answers; it fails tb when
// REDIS_URL does not parse.
func RedisOptions(tb testing.TB) *redis.Options {
	tb.Helper()
	u := redisURL()
	opts, err := redis.ParseURL(u)
	if err != nil {
		tb.Fatalf("parse REDIS_URL %q: %v", u, err)
	}
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return opts
}

func redisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return DefaultRedisURL
}

// RedisClient returns a new client on the shared test Redis, closed at
// cleanup, after checking that Redis answers like RedisURL. It is a
// *redis.Client; the interface type leaves room for a Cluster or Sentinel
// test server.
func RedisClient(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	RedisAddr(tb)
	c := redis.NewClient(RedisOptions(tb))
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// ping reports whether a Redis answers PING at opts within a few seconds,
// without retries.
func ping(opts *redis.Options) error {
	o := *opts
	o.MaxRetries = -1
	o.DialTimeout = 2 * time.Second
	c := redis.NewClient(&o)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// QueueName returns UniqueName(tb, base), to name a queue, and at cleanup
// deletes every key of that queue under the default prefix "bull"
// ("bull:<name>:*") from the shared test Redis. Queues under another prefix,
// or other keys, are cleaned with CleanKeys.
func QueueName(tb testing.TB, base string) string {
	tb.Helper()
	name := UniqueName(tb, base)
	CleanKeys(tb, "bull:"+globEscape(name)+":*")
	return name
}

// globEscape escapes the characters that are special in Redis SCAN MATCH
// patterns (*, ?, [, ], \), so that s matches only itself.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// CleanKeys deletes, at the test's cleanup, every key of the shared test
// Redis that matches one of patterns (SCAN MATCH syntax), for keys made
// under names from UniqueName, often by processes the test starts. It is
// best effort: without a reachable Redis it does nothing.
func CleanKeys(tb testing.TB, patterns ...string) {
	tb.Helper()
	opts := RedisOptions(tb)
	tb.Cleanup(func() {
		c := redis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, p := range patterns {
			iter := c.Scan(ctx, 0, p, 500).Iterator()
			var batch []string
			for iter.Next(ctx) {
				if batch = append(batch, iter.Val()); len(batch) == 500 {
					c.Del(ctx, batch...)
					batch = batch[:0]
				}
			}
			if len(batch) > 0 {
				c.Del(ctx, batch...)
			}
		}
	})
}
