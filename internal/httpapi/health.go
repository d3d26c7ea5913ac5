package httpapi

import (
	"context"
	"net/http"
	"sync"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agentorch/orchestrator/internal/task"
)

// Dependency is the health of the database.
type Dependency struct {
	Connected bool `json:"connected"`
}

// RedisChecker reports the health of Redis. CheckRedis must return within
// the context's deadline and must be safe for concurrent use.
type RedisChecker interface {
	CheckRedis(ctx context.Context) task.QueueHealth
}

// RedisCheckerFunc adapts a function to RedisChecker.
type RedisCheckerFunc func(ctx context.Context) task.QueueHealth

// CheckRedis calls f.
func (f RedisCheckerFunc) CheckRedis(ctx context.Context) task.QueueHealth { return f(ctx) }

// Health is the response of GET /health, with status 200 when every
// dependency answers and 503 otherwise.
type Health struct {
	Status   string            `json:"status" enum:"healthy,unhealthy"`
	Database Dependency        `json:"database"`
	Redis    *task.QueueHealth `json:"redis,omitempty" doc:"Present when a queue is configured."`
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
		redis task.QueueHealth
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
		healthy = healthy && redis.Connected && !redis.Refused
	}
	if !healthy {
		out.Status = http.StatusServiceUnavailable
		out.Body.Status = "unhealthy"
		s.log.WarnContext(ctx, "health check failed", "database_err", dbErr, "redis_connected", redis.Connected,
			"redis_warning", redis.Warning, "request_id", RequestID(ctx))
	}
	return out, nil
}
