package redisconn

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/internal/testenv"
)

func TestMultiHostURL(t *testing.T) {
	tests := []struct {
		in, suffix, want string
	}{
		{"redis-sentinel://:pw@h1:26379,h2:26380/2?master=mymaster", "-sentinel",
			"redis://:pw@h1:26379?addr=h2%3A26380&db=2&master_name=mymaster"},
		{"rediss-cluster://h1:7000,h2:7001,h3:7002", "-cluster",
			"rediss://h1:7000?addr=h2%3A7001&addr=h3%3A7002"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatalf("parse %s: %v", tt.in, err)
		}
		if got := multiHostURL(u, tt.suffix); got != tt.want {
			t.Errorf("multiHostURL(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestNewForms(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"host and port", Config{Host: "127.0.0.1", Port: 6390, DB: 3}, false},
		{"url", Config{URL: "redis://:secret@127.0.0.1:6390/1"}, false},
		{"tls url", Config{URL: "rediss://127.0.0.1:6390"}, false},
		{"sentinel", Config{URL: "redis-sentinel://127.0.0.1:26379,127.0.0.1:26380/0?master=m"}, false},
		{"sentinel without master", Config{URL: "redis-sentinel://127.0.0.1:26379"}, true},
		{"cluster", Config{URL: "redis-cluster://127.0.0.1:7000,127.0.0.1:7001"}, false},
		{"bad scheme", Config{URL: "http://127.0.0.1"}, true},
		{"negative pool", Config{PoolSize: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: err = %v, wantErr %v", err, tt.wantErr)
			}
			if c != nil {
				_ = c.Close()
			}
		})
	}
	c, _ := New(Config{URL: "rediss://127.0.0.1:6390/4"})
	o := c.(*redis.Client).Options()
	if o.TLSConfig == nil || o.DB != 4 || o.PoolSize != defaultPool {
		t.Errorf("rediss options: tls=%v db=%d pool=%d", o.TLSConfig != nil, o.DB, o.PoolSize)
	}
}

// TestReconnects checks that a client made while Redis is down fails fast
// and works once Redis is up, without being rebuilt.
func TestReconnects(t *testing.T) {
	srv := testenv.StartRedis(t)
	srv.Stop()
	c, err := New(Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping succeeded while Redis is down")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ping while down took %s, want a fast failure", d)
	}
	srv.Start()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
}

// TestPasswordsRedacted: parse errors and Redacted never show a password.
func TestPasswordsRedacted(t *testing.T) {
	const pw = "S3cretPw"
	for _, u := range []string{
		"redis://:" + pw + "@127.0.0.1:6379/notanumber",
		"redis://:" + pw + "@127.0.0.1:6379/0?dial_timeout=" + pw,
		"redis://:Sl4sh/" + pw + "@127.0.0.1:6379",
		"redis://:" + pw + "%zz@127.0.0.1:6379",
		"redis-sentinel://:" + pw + "@h1:1,h2:2/0?sentinel_password=" + pw + "&master=m",
		"redis-sentinel://:" + pw + "@h1:1/0?pool_size=" + pw + "&master=m",
		"redis-cluster://:" + pw + "@h1:1,h2:2?read_timeout=" + pw,
	} {
		_, err := New(Config{URL: u})
		if err == nil {
			t.Errorf("New(%s) = nil error", u)
			continue
		}
		if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "Sl4sh") {
			t.Errorf("New(%s) error holds the password: %v", u, err)
		}
	}
	for c, want := range map[Config]string{
		{URL: "redis-sentinel://:" + pw + "@h1:1,h2:2/0?master=m&password=" + pw}: "redis-sentinel://:xxxxx@h1:1,h2:2/0?master=m&password=xxxxx",
		{Host: "r", Port: 7000, Password: pw, DB: 2}:                              "r:7000/2",
		{}: "localhost:6379/0",
	} {
		if got := c.Redacted(); got != want {
			t.Errorf("Redacted() = %q, want %q", got, want)
		}
	}
}
