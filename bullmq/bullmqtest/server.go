package bullmqtest

import (
	"fmt"
	"io"
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
)

// RedisServer is a private redis-server process on a free port of
// 127.0.0.1, without persistence, for tests that stop, kill or restart
// Redis (the shared test Redis must never be stopped). Its methods are safe
// for concurrent use. It is killed at the test's cleanup.
type RedisServer struct {
	// Addr is the server's host:port; it stays the same across restarts.
	Addr string

	tb   testing.TB
	bin  string
	dir  string
	port int
	args []string // extra redis-server arguments, kept across restarts

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
}

// StartRedis starts a private redis-server on a free port of 127.0.0.1 and
// waits until it answers PING. Without the redis-server binary in PATH it
// fails tb under CI=true and skips it otherwise (see Unavailable). args are
// extra redis-server arguments, kept across restarts: for example
// "--maxmemory-policy", "allkeys-lru", or "--aclfile", path (an ACL file
// whose default user stays usable without a password: the readiness check
// uses it).
func StartRedis(tb testing.TB, args ...string) *RedisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(tb, "redis-server binary not found in PATH; install redis-server")
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
// waits until it answers. It fails the test when the server does not come
// up.
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
	logPath := filepath.Join(s.dir, "redis.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open redis log: %w", err)
	}
	logStart, err := logf.Seek(0, io.SeekEnd) // what this run writes starts here
	if err != nil {
		logf.Close()
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
			if ping(opts) == nil {
				return nil
			}
		}
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			return fmt.Errorf("redis-server exited at start: %s", readFrom(logPath, logStart))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.signalAndWait(syscall.SIGKILL, 5*time.Second)
			return fmt.Errorf("redis-server on %s did not answer within 10s", s.Addr)
		}
	}
}

// readFrom returns what the file at path holds from offset off on, at most
// 4 KiB of it (redis-server writes a few lines when it starts).
func readFrom(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b := make([]byte, 4096)
	n, _ := f.ReadAt(b, off)
	return string(b[:n])
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
