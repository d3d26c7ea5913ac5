package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// databaseURL returns the shared test database URL: TEST_DATABASE_URL or the default.
func databaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return defaultDatabaseURL
}

// PostgresURL creates a schema with a unique name in the shared test
// database and returns a URL whose search_path is that schema, so that
// tables created through it are private to the caller. The schema is
// dropped, with everything in it, at cleanup.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	base := databaseURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		Unavailable(tb, "no PostgreSQL at %s (%v); start one (trust auth, database `test`) or set TEST_DATABASE_URL", redactURL(base), err)
	}
	defer conn.Close(context.Background())

	schema := strings.ReplaceAll(UniqueName(tb, "test"), "-", "_")
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop schema %s: connect: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parse database URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// redactURL hides the password of a URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// PostgresServer is a private PostgreSQL cluster (initdb + pg_ctl) on a free
// port of 127.0.0.1, with trust authentication, for tests that stop and
// restart the database. When the test runs as root, the cluster runs as the
// OS user postgres. It is stopped and its files removed at cleanup. Its
// methods are safe for concurrent use.
type PostgresServer struct {
	// URL connects to the cluster's `postgres` database as user postgres.
	URL string

	tb      testing.TB
	binDir  string
	dir     string // owned by the cluster's OS user: data/, socket, log
	port    int
	asUser  string // "" when running as the current user
	mu      sync.Mutex
	running bool
}

// StartPostgres creates a cluster in a temporary directory, starts it and
// waits until it accepts connections. It skips or fails (CI=true) when the
// PostgreSQL server binaries are not installed (looked up in
// /usr/lib/postgresql/*/bin, then PATH).
func StartPostgres(tb testing.TB) *PostgresServer {
	tb.Helper()
	binDir := postgresBinDir()
	if binDir == "" {
		Unavailable(tb, "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or PATH; install postgresql")
	}
	s := &PostgresServer{tb: tb, binDir: binDir}
	if os.Geteuid() == 0 {
		s.asUser = "postgres"
	}
	dir, err := os.MkdirTemp("", "testenv-pg-")
	if err != nil {
		tb.Fatalf("create postgres dir: %v", err)
	}
	s.dir = dir
	tb.Cleanup(func() {
		if err := s.stop("immediate"); err != nil {
			tb.Errorf("stop postgres at cleanup: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	if s.asUser != "" {
		u, err := user.Lookup(s.asUser)
		if err != nil {
			Unavailable(tb, "running as root but no OS user %q to run PostgreSQL: %v", s.asUser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatalf("chown %s: %v", dir, err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		tb.Fatalf("chmod %s: %v", dir, err)
	}

	if out, err := s.run("initdb", "-D", s.dataDir(), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	var last error
	for range 3 { // the free port may be taken between FreePort and bind
		s.port = FreePort(tb)
		s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
		if last = s.start(); last == nil {
			return s
		}
	}
	tb.Fatalf("start postgres: %v", last)
	return nil
}

// postgresBinDir returns the directory holding initdb and pg_ctl, preferring
// the newest /usr/lib/postgresql/<version>/bin, or "" when none is found.
func postgresBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "pg_ctl")) {
			return d
		}
	}
	initdb, err1 := exec.LookPath("initdb")
	pgctl, err2 := exec.LookPath("pg_ctl")
	if err1 == nil && err2 == nil && filepath.Dir(initdb) == filepath.Dir(pgctl) {
		return filepath.Dir(initdb)
	}
	return ""
}

func versionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func (s *PostgresServer) dataDir() string { return filepath.Join(s.dir, "data") }

// run runs a PostgreSQL binary as the cluster's OS user and returns its output.
func (s *PostgresServer) run(bin string, args ...string) ([]byte, error) {
	path := filepath.Join(s.binDir, bin)
	var cmd *exec.Cmd
	if s.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

// Start starts the cluster again on the same port after Stop and waits until
// it accepts connections. It fails the test when the cluster does not come up.
func (s *PostgresServer) Start() {
	s.tb.Helper()
	if err := s.start(); err != nil {
		s.tb.Fatalf("restart postgres on port %d: %v", s.port, err)
	}
}

func (s *PostgresServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return fmt.Errorf("postgres on port %d is already running", s.port)
	}
	opts := strings.Join([]string{
		"-p", strconv.Itoa(s.port),
		"-k", s.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=100",
	}, " ")
	out, err := s.run("pg_ctl", "start", "-D", s.dataDir(), "-l", filepath.Join(s.dir, "postgres.log"),
		"-w", "-t", "60", "-o", opts)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
		// pg_ctl may have left a server behind when it gave up waiting.
		_, _ = s.run("pg_ctl", "stop", "-D", s.dataDir(), "-m", "immediate", "-w")
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, Tail(string(log), 2048))
	}
	s.running = true
	return nil
}

// Stop shuts the cluster down (fast mode: open sessions are disconnected)
// and waits until it is down. It does nothing when the cluster is not running.
func (s *PostgresServer) Stop() {
	s.tb.Helper()
	if err := s.stop("fast"); err != nil {
		s.tb.Errorf("stop postgres on port %d: %v", s.port, err)
	}
}

// Kill stops the cluster at once (immediate mode, as a crash would; it
// recovers at the next Start). It does nothing when the cluster is not running.
func (s *PostgresServer) Kill() {
	s.tb.Helper()
	if err := s.stop("immediate"); err != nil {
		s.tb.Errorf("kill postgres on port %d: %v", s.port, err)
	}
}

func (s *PostgresServer) stop(mode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	out, err := s.run("pg_ctl", "stop", "-D", s.dataDir(), "-m", mode, "-w", "-t", "60")
	if err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
	s.running = false
	return nil
}
