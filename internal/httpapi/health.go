package httpapi

import (
	"context"
	"net/http"
	"sync"

	"github.com/danielgtaylor/huma/v2"
)

// Dependency is the health of the database.
type Dependency struct {
	Connected bool `json:"connected"`
}

// RedisHealth is the health of Redis as a RedisChecker reports it.
type RedisHealth struct {
	Connected       bool    `json:"connected"`
	LatencyMs       float64 `json:"latencyMs" doc:"Round-trip time of a PING."`
	MaxmemoryPolicy string  `json:"maxmemoryPolicy,omitempty" doc:"Redis maxmemory-policy; queues need noeviction."`
	Warning         string  `json:"warning,omitempty" doc:"A problem worth fixing, e.g. a maxmemory-policy other than noeviction."`
}

// RedisChecker reports the health of Redis. CheckRedis must return within
// the context's deadline and must be safe for concurrent use.
type RedisChecker interface {
	CheckRedis(ctx context.Context) RedisHealth
}

// RedisCheckerFunc adapts a function to RedisChecker.
type RedisCheckerFunc func(ctx context.Context) RedisHealth

// CheckRedis calls f.
func (f RedisCheckerFunc) CheckRedis(ctx context.Context) RedisHealth { return f(ctx) }

// Health is the response of GET /health, with status 200 when every
// dependency answers and 503 otherwise.
type Health struct {
	Status   string       `json:"status" enum:"healthy,unhealthy"`
	Database Dependency   `json:"database"`
	Redis    *RedisHealth `json:"redis,omitempty" doc:"Present when a queue is configured."`
}

type healthOutput struct {
	Status int
	Body   Health
}

func (s *Server) registerHealth() {
	huma.Register(s.api, huma.Operation{
		OperationID: "health",
		Method:      http.MethodGet,
		Path:        "/health",
		Summary:     "Health of the service and its dependencies",
		Description: "Needs no API key. 200 when every dependency answers within the health timeout, " +
			"503 (same body, status unhealthy) otherwise.",
		Tags: []string{"health"},
		Responses: map[string]*huma.Response{
			"503": {Description: "A dependency does not answer; the body is a Health with status unhealthy."},
		},
	}, s.health)
}

func (s *Server) health(ctx context.Context, _ *struct{}) (*healthOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, s.healthTimeout)
	defer cancel()
	var (
		wg    sync.WaitGroup
		dbErr error
		redis RedisHealth
	)
	if s.redis != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			redis = s.redis.CheckRedis(ctx)
		}()
	}
	dbErr = s.database.Ping(ctx)
	wg.Wait()

	out := &healthOutput{Status: http.StatusOK, Body: Health{Status: "healthy", Database: Dependency{Connected: dbErr == nil}}}
	healthy := dbErr == nil
	if s.redis != nil {
		out.Body.Redis = &redis
		healthy = healthy && redis.Connected
	}
	if !healthy {
		out.Status = http.StatusServiceUnavailable
		out.Body.Status = "unhealthy"
		s.log.WarnContext(ctx, "health check failed", "database_err", dbErr, "redis_connected", redis.Connected,
			"redis_warning", redis.Warning, "request_id", RequestID(ctx))
	}
	return out, nil
}
