package redisconn

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestACLUserOverTLS: an ACL user and password in a rediss:// URL (see
// docs/redis-acl.md) give a TLS client that logs in as that user; the
// plain redis:// form logs in the same way without TLS.
func TestACLUserOverTLS(t *testing.T) {
	for _, tc := range []struct {
		url string
		tls bool
	}{
		{"rediss://agentorch-worker:s3cret@redis.example:6380/2", true},
		{"redis://agentorch-worker:s3cret@redis.example:6379/2", false},
	} {
		c, err := New(Config{URL: tc.url})
		if err != nil {
			t.Fatalf("New(%s): %v", tc.url, err)
		}
		o := c.(*redis.Client).Options()
		if o.Username != "agentorch-worker" || o.Password != "s3cret" || o.DB != 2 || (o.TLSConfig != nil) != tc.tls {
			t.Errorf("%s: user %q password set %v db %d tls %v", tc.url, o.Username, o.Password != "", o.DB, o.TLSConfig != nil)
		}
		if tc.tls && o.TLSConfig.ServerName != "redis.example" {
			t.Errorf("%s: TLS server name %q, want the host", tc.url, o.TLSConfig.ServerName)
		}
		_ = c.Close()
	}
}
