package testenv_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentorch/orchestrator/internal/testenv"
)

func TestSQLitePath(t *testing.T) {
	p := testenv.SQLitePath(t)
	if _, err := os.Stat(filepath.Dir(p)); err != nil {
		t.Fatalf("parent dir of %s: %v", p, err)
	}
}

func TestRedisClient(t *testing.T) {
	c := testenv.RedisClient(t)
	key := testenv.UniqueName(t, "testenv")
	ctx := t.Context()
	if err := c.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"line one\nline two\nline three\n", 15, "…\nline three\n"},
		{"abcdefghij", 4, "…\nghij"},
	}
	for _, tt := range tests {
		if got := testenv.Tail(tt.in, tt.n); got != tt.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestNodeDir(t *testing.T) {
	dir := testenv.NodeDir(t)
	for _, f := range []string{"worker.js", "queue.js", "events.js", "bench.js", "package-lock.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("Node driver file: %v", err)
		}
	}
}

func TestPostgresURL(t *testing.T) {
	u := testenv.PostgresURL(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := conn.QueryRow(ctx, "SELECT table_schema FROM information_schema.tables WHERE table_name = 't'").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if schema[:5] != "test_" {
		t.Fatalf("table created in schema %q, want test_*", schema)
	}
}

func TestStartPostgres(t *testing.T) {
	s := testenv.StartPostgres(t)
	ctx := t.Context()
	query := func() error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, s.URL)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			return err
		}
		if one != 1 {
			return errors.New("SELECT 1 did not return 1")
		}
		return nil
	}
	if err := query(); err != nil {
		t.Fatalf("query fresh cluster: %v", err)
	}
	s.Stop()
	if err := query(); err == nil {
		t.Fatal("query after Stop succeeded")
	}
	s.Start()
	if err := query(); err != nil {
		t.Fatalf("query after restart: %v", err)
	}
}
