package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

const defaultRedisURL = "redis://127.0.0.1:6379/0"

// redisOptions returns the options of the shared Redis: REDIS_URL or the default.
func redisOptions(tb testing.TB) *redis.Options {
	tb.Helper()
	u := os.Getenv("REDIS_URL")
	if u == "" {
		u = defaultRedisURL
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		tb.Fatalf("parse REDIS_URL %q: %v", u, err)
	}
	// Tests talk to a plain local Redis: no maintenance notifications (and
	// go-redis then never rewrites the options of a live client).
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return opts
}

// pingRedis reports whether a Redis answers PING at opts within a short time.
func pingRedis(opts *redis.Options) error {
	o := *opts
	o.MaxRetries = -1
	o.DialTimeout = 2 * time.Second
	c := redis.NewClient(&o)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// RedisAddr returns the host:port of the shared Redis (REDIS_URL, default
// 127.0.0.1:6379) after checking that it answers. Tests must isolate their
// keys (see UniqueName) and never stop it.
func RedisAddr(tb testing.TB) string {
	tb.Helper()
	opts := redisOptions(tb)
	if err := pingRedis(opts); err != nil {
		unavailable(tb, "no Redis at %s (%v); start one with `redis-server` or set REDIS_URL", opts.Addr, err)
	}
	return opts.Addr
}

// RedisClient returns a client on the shared Redis, closed at cleanup.
func RedisClient(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	RedisAddr(tb)
	c := redis.NewClient(redisOptions(tb))
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// RedisServer is a private redis-server process on a free port, without
// persistence, for tests that stop, kill or restart Redis. Its methods are
// safe for concurrent use. It is killed at the test's cleanup.
type RedisServer struct {
	// Addr is the server's host:port; it stays the same across restarts.
	Addr string

	tb   testing.TB
	bin  string
	dir  string
	port int
	args []string // extra redis-server arguments (StartRedisArgs)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
}

// StartRedis starts a private redis-server on a free port on 127.0.0.1 and
// waits until it answers. It skips or fails (CI=true) when redis-server is
// not installed.
func StartRedis(tb testing.TB) *RedisServer {
	tb.Helper()
	return startRedis(tb)
}

func startRedis(tb testing.TB, args ...string) *RedisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(tb, "redis-server binary not found in PATH; install redis-server")
	}
	s := &RedisServer{tb: tb, bin: bin, dir: tb.TempDir(), args: args}
	tb.Cleanup(s.Kill)
	var last error
	for range 3 { // the free port may be taken between FreePort and bind
		s.port = FreePort(tb)
		s.Addr = "127.0.0.1:" + strconv.Itoa(s.port)
		if last = s.start(); last == nil {
			return s
		}
	}
	tb.Fatalf("start redis-server: %v", last)
	return nil
}

// URL returns the redis:// URL of the server.
func (s *RedisServer) URL() string { return "redis://" + s.Addr }

// Start starts the server again on the same port after Stop or Kill, and
// waits until it answers. It fails the test when the server does not come up.
func (s *RedisServer) Start() {
	s.tb.Helper()
	if err := s.start(); err != nil {
		s.tb.Fatalf("restart redis-server on %s: %v", s.Addr, err)
	}
}

func (s *RedisServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("redis-server on %s is already running", s.Addr)
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open redis log: %w", err)
	}
	cmd := exec.Command(s.bin, append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--daemonize", "no"}, s.args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("run %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	s.cmd, s.done = cmd, done

	opts := &redis.Options{Addr: s.Addr}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A plain dial first: the client logs every refused dial.
		if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
			c.Close()
			if pingRedis(opts) == nil {
				return nil
			}
		}
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server exited at start: %s", tail(log))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.signalAndWait(syscall.SIGKILL, 5*time.Second)
			return fmt.Errorf("redis-server on %s did not answer within 10s", s.Addr)
		}
	}
}

// Stop shuts the server down gracefully (SIGTERM) and waits for it to exit.
// It does nothing when the server is not running.
func (s *RedisServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signalAndWait(syscall.SIGTERM, 10*time.Second)
}

// Kill kills the server (SIGKILL), as a crash would, and waits for it to
// exit. It does nothing when the server is not running.
func (s *RedisServer) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signalAndWait(syscall.SIGKILL, 10*time.Second)
}

// signalAndWait sends sig and waits up to d for the exit, then kills. s.mu is held.
func (s *RedisServer) signalAndWait(sig syscall.Signal, d time.Duration) {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(d):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// tail returns the last 2 KiB of b.
func tail(b []byte) string {
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(b)
}

// CleanRedisKeys deletes, at the test's cleanup, every key of the shared
// Redis that matches one of patterns (SCAN MATCH syntax), for tests whose
// keys are made by processes they start (queues named with UniqueName).
// It is best effort: without a reachable Redis it does nothing.
func CleanRedisKeys(tb testing.TB, patterns ...string) {
	tb.Helper()
	opts := redisOptions(tb)
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
