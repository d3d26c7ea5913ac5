package testenv_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/internal/testenv"
)

func TestUniqueName(t *testing.T) {
	a, b := testenv.UniqueName(t, "q"), testenv.UniqueName(t, "q")
	if a == b || a[:2] != "q-" {
		t.Fatalf("UniqueName gave %q and %q", a, b)
	}
}

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

func TestStartRedis(t *testing.T) {
	s := testenv.StartRedis(t)
	opts, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx := t.Context()
	ping := func() error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	}
	if err := ping(); err != nil {
		t.Fatalf("ping fresh server: %v", err)
	}
	s.Kill()
	if err := ping(); err == nil {
		t.Fatal("ping after Kill succeeded")
	}
	s.Start()
	if err := ping(); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
	s.Stop()
	if err := ping(); err == nil {
		t.Fatal("ping after Stop succeeded")
	}
	s.Start()
	if err := ping(); err != nil {
		t.Fatalf("ping after second restart: %v", err)
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
