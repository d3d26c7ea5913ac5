// Package redisconn builds the Redis client of a process from its
// configuration: a single server, Sentinel or Cluster, with or without TLS,
// tuned so that the process starts and serves while Redis is down and
// reconnects by itself when Redis comes back.
package redisconn

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/agentorch/orchestrator/internal/redact"
)

// Config says where Redis is. When URL is set, it wins over Host, Port,
// Password and DB.
//
// URL forms:
//
//	redis://[user:password@]host:port[/db]            one server
//	rediss://…                                         one server over TLS
//	redis-sentinel://[:password@]host1:port,host2:port[/db]?master=name
//	redis-cluster://[:password@]host1:port,host2:port
//
// The sentinel and cluster schemes also come as rediss-sentinel:// and
// rediss-cluster:// for TLS. Other query parameters are go-redis option
// names in snake case (dial_timeout=3s, pool_size=50, …).
type Config struct {
	URL      string
	Host     string // defaults to localhost
	Port     int    // defaults to 6379
	Password string
	DB       int
	// PoolSize is the most connections. Defaults to 64: blocking reads
	// (workers, events) each hold one.
	PoolSize int
}

// Redacted returns where Redis is, for log lines: the URL with its
// passwords masked (see redact.URL), or host:port/db.
func (c Config) Redacted() string {
	if c.URL != "" {
		return redact.URL(c.URL)
	}
	host, port := c.Host, c.Port
	if host == "" {
		host = defaultHost
	}
	if port == 0 {
		port = defaultPort
	}
	return fmt.Sprintf("%s/%d", net.JoinHostPort(host, strconv.Itoa(port)), c.DB)
}

// Defaults applied to every client so that commands fail fast while Redis
// is down (instead of hanging requests) and the pool redials on its own.
const (
	dialTimeout  = 2 * time.Second
	readTimeout  = 3 * time.Second
	poolTimeout  = 4 * time.Second
	defaultPool  = 64
	defaultHost  = "localhost"
	defaultPort  = 6379
	minRetryWait = 8 * time.Millisecond
	maxRetryWait = 512 * time.Millisecond
	// A refused dial is retried once after 50ms (go-redis: 5 times after
	// 100ms), so that a command fails within about half a second while
	// Redis is down instead of blocking a request for seconds.
	dialRetries   = 2
	dialRetryWait = 50 * time.Millisecond
)

// New returns a client for c. It does no I/O: the client connects on first
// use and reconnects after failures by itself. The caller closes it.
func New(c Config) (redis.UniversalClient, error) {
	pool := c.PoolSize
	if pool < 0 {
		return nil, errors.New("redis pool size must not be negative")
	}
	if pool == 0 {
		pool = defaultPool
	}
	if c.URL == "" {
		host, port := c.Host, c.Port
		if host == "" {
			host = defaultHost
		}
		if port == 0 {
			port = defaultPort
		}
		o := &redis.Options{Addr: fmt.Sprintf("%s:%d", host, port), Password: c.Password, DB: c.DB}
		tuneSimple(o, pool)
		return redis.NewClient(o), nil
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", redact.URLError(err, c.URL))
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
		o, err := redis.ParseURL(c.URL)
		if err != nil {
			return nil, fmt.Errorf("parse REDIS_URL: %w", redact.URLError(err, c.URL))
		}
		tuneSimple(o, pool)
		return redis.NewClient(o), nil
	case "redis-sentinel", "rediss-sentinel":
		o, err := redis.ParseFailoverURL(multiHostURL(u, "-sentinel"))
		if err != nil {
			return nil, fmt.Errorf("parse sentinel REDIS_URL: %w", redact.URLError(err, c.URL))
		}
		if o.MasterName == "" {
			return nil, errors.New("parse sentinel REDIS_URL: the master name is missing (?master=name)")
		}
		if u.User != nil { // the password is the master's; also use it for the sentinels
			o.Password = o.SentinelPassword
			o.Username = o.SentinelUsername
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = dialTimeout, readTimeout, readTimeout, poolTimeout
		o.PoolSize, o.ContextTimeoutEnabled = pool, true
		o.MinRetryBackoff, o.MaxRetryBackoff = minRetryWait, maxRetryWait
		o.DialerRetries, o.DialerRetryTimeout = dialRetries, dialRetryWait
		return redis.NewFailoverClient(o), nil
	case "redis-cluster", "rediss-cluster":
		o, err := redis.ParseClusterURL(multiHostURL(u, "-cluster"))
		if err != nil {
			return nil, fmt.Errorf("parse cluster REDIS_URL: %w", redact.URLError(err, c.URL))
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = dialTimeout, readTimeout, readTimeout, poolTimeout
		o.PoolSize, o.ContextTimeoutEnabled = pool, true
		o.MinRetryBackoff, o.MaxRetryBackoff = minRetryWait, maxRetryWait
		o.DialerRetries, o.DialerRetryTimeout = dialRetries, dialRetryWait
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		return redis.NewClusterClient(o), nil
	}
	return nil, fmt.Errorf("REDIS_URL scheme %q is not one of redis, rediss, redis-sentinel, rediss-sentinel, redis-cluster, rediss-cluster", u.Scheme)
}

func tuneSimple(o *redis.Options, pool int) {
	// Maintenance notifications (a Redis Cloud feature) are off: in "auto"
	// mode go-redis rewrites the client's options on the first connection,
	// which races with code that copies them (dedicated blocking clients).
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = dialTimeout, readTimeout, readTimeout, poolTimeout
	o.PoolSize, o.ContextTimeoutEnabled = pool, true
	o.MinRetryBackoff, o.MaxRetryBackoff = minRetryWait, maxRetryWait
	o.DialerRetries, o.DialerRetryTimeout = dialRetries, dialRetryWait
}

// multiHostURL rewrites a "redis-sentinel://h1:p1,h2:p2/db?master=m" URL
// into the go-redis form "redis://h1:p1?addr=h2:p2&master_name=m&db=db".
func multiHostURL(u *url.URL, suffix string) string {
	v := *u
	v.Scheme = strings.TrimSuffix(u.Scheme, suffix)
	q := u.Query()
	hosts := strings.Split(u.Host, ",")
	v.Host = hosts[0]
	for _, h := range hosts[1:] {
		if h != "" {
			q.Add("addr", h)
		}
	}
	if m := q.Get("master"); m != "" {
		q.Del("master")
		q.Set("master_name", m)
	}
	if db := strings.Trim(u.Path, "/"); db != "" && suffix == "-sentinel" {
		if _, err := strconv.Atoi(db); err == nil {
			q.Set("db", db)
		}
	}
	v.Path = ""
	v.RawQuery = q.Encode()
	return v.String()
}
