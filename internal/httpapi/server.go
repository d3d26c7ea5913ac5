package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/agentorch/orchestrator/internal/task"
)

// Pinger is a dependency whose health the API reports.
type Pinger interface {
	// Ping returns nil when the dependency answers.
	Ping(ctx context.Context) error
}

// PingerFunc adapts a function to Pinger.
type PingerFunc func(ctx context.Context) error

// Ping calls f.
func (f PingerFunc) Ping(ctx context.Context) error { return f(ctx) }

// ExtraRoute is an extra route served next to the API, e.g. /metrics.
type ExtraRoute struct {
	// Pattern is a net/http ServeMux pattern, e.g. "GET /metrics".
	Pattern string
	// Handler serves the route.
	Handler http.Handler
	// Public routes skip the API key check; others need a key when keys
	// are configured. Public must be used only for exact paths (Pattern
	// without a trailing slash).
	Public bool
}

// Options configures a Server. Service is required; every other field has
// a documented default.
type Options struct {
	// Service serves the task routes. Required.
	Service *task.Service
	// Logger receives one line per request and the errors the API hides
	// from clients. Defaults to slog.Default().
	Logger *slog.Logger
	// APIKeys, when not empty, are the bearer keys every route but the
	// public ones (/health, /openapi.*, /docs) requires; each request acts
	// as the key's task.Caller (see APIKey). Defaults to none: no
	// authentication, and every request sees every task.
	APIKeys []APIKey
	// Database is pinged by GET /health. Defaults to Service (its Ping).
	Database Pinger
	// Redis, when set, is checked by GET /health and reported under
	// "redis"; not connected means 503. Defaults to none: no redis part.
	Redis RedisChecker
	// QueueStats, when set, fills the "queue" part of GET /tasks/stats;
	// when it fails, the part says available false and the response is
	// still 200. Defaults to none: the part is omitted.
	QueueStats QueueStatser
	// HealthTimeout bounds the checks of GET /health. Defaults to 2s.
	HealthTimeout time.Duration
	// Middleware wraps the whole API, outermost first, inside the request
	// logger (so RoutePattern and RequestID work in it). Defaults to none; the
	// queue issue adds Prometheus metrics here.
	Middleware []func(http.Handler) http.Handler
	// Routes are extra routes served by the same mux. Defaults to none.
	Routes []ExtraRoute
	// Version is the API version in the OpenAPI document. Defaults to "dev".
	Version string
}

// Server is the HTTP API. It is an http.Handler, safe for concurrent use.
// It holds no goroutines and no connections of its own: pass it to an
// http.Server, which owns the listening.
type Server struct {
	svc           *task.Service
	log           *slog.Logger
	keys          *apiKeys
	database      Pinger
	redis         RedisChecker
	queueStats    QueueStatser
	healthTimeout time.Duration
	publicPaths   map[string]bool
	ids           *requestIDs
	security      []map[string][]string // of the operations that need a key; nil without keys
	api           huma.API
	handler       http.Handler
}

// Body limits. A create body holds at most MaxCodeBytes + MaxPromptBytes
// of text; the rest pays for JSON escaping and the field names.
const (
	createBodyOverhead = 256 << 10
	// MaxBodyBytes bounds request bodies: a body of this size or more gets 413.
	MaxBodyBytes = task.MaxCodeBytes + task.MaxPromptBytes + createBodyOverhead
)

// New builds the API. It does no I/O. It returns an error when the options
// are invalid (no Service, an empty API key, an ExtraRoute without pattern
// or handler or whose pattern the mux refuses).
func New(opts Options) (s *Server, err error) {
	if opts.Service == nil {
		return nil, errors.New("httpapi: Options.Service is required")
	}
	if err := validateKeys(opts.APIKeys); err != nil {
		return nil, err
	}
	// ServeMux panics on invalid or conflicting patterns; report them.
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("httpapi: %v", p)
		}
	}()
	s = &Server{
		svc:           opts.Service,
		log:           opts.Logger,
		database:      opts.Database,
		redis:         opts.Redis,
		queueStats:    opts.QueueStats,
		healthTimeout: opts.HealthTimeout,
		publicPaths:   map[string]bool{"/health": true, "/docs": true},
		ids:           &requestIDs{prefix: randomPrefix()},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.database == nil {
		s.database = opts.Service
	}
	if s.healthTimeout <= 0 {
		s.healthTimeout = 2 * time.Second
	}
	version := opts.Version
	if version == "" {
		version = "dev"
	}

	if len(opts.APIKeys) > 0 {
		s.security = []map[string][]string{{"bearer": {}}}
	}
	mux := http.NewServeMux()
	s.api = humago.New(mux, s.humaConfig(version, len(opts.APIKeys) > 0))
	s.registerTasks()
	s.registerHealth()
	mountDocs(mux)
	for _, rt := range opts.Routes {
		if rt.Pattern == "" || rt.Handler == nil {
			return nil, errors.New("httpapi: an ExtraRoute needs a Pattern and a Handler")
		}
		mux.Handle(rt.Pattern, rt.Handler)
		if rt.Public {
			path := rt.Pattern
			if _, p, ok := strings.Cut(path, " "); ok {
				path = p
			}
			s.publicPaths[path] = true
		}
	}

	h := checkQuery(recordRoute(mux))
	if len(opts.APIKeys) > 0 {
		s.keys = newAPIKeys(opts.APIKeys)
		h = s.requireKey(h)
	}
	h = limitBody(MaxBodyBytes, h)
	for i := len(opts.Middleware) - 1; i >= 0; i-- {
		h = opts.Middleware[i](h)
	}
	s.handler = s.logRequests(h)
	return s, nil
}

// APIKey is one accepted bearer key (an entry of API_KEYS).
//
// A named key (Name set) owns the tasks it creates: without Admin it sees
// only those (other tasks are 404, lists and stats count only its own);
// with Admin it sees every task. A plain key (no Name, as API_KEYS entries
// were before keys had names) is an admin key: it sees every task, so
// existing deployments keep working; the tasks it creates belong to no one
// (owner ""), like the tasks created without API_KEYS or before owners
// existed, and only admin keys see them.
type APIKey struct {
	// Name is the key's owner name: 1 to 64 letters, digits, '.', '_'
	// or '-'; "" for a plain key. Several keys may share a name (key
	// rotation): they own the same tasks.
	Name string
	// Key is the secret bearer token. Required; unique.
	Key string
	// Admin keys see every task. A plain key must be an admin.
	Admin bool
}

// validateKeys checks keys: each has a secret, no secret repeats, names are
// well formed, plain keys are admins.
func validateKeys(keys []APIKey) error {
	seen := make(map[string]bool, len(keys))
	for i, k := range keys {
		switch {
		case strings.TrimSpace(k.Key) == "":
			return fmt.Errorf("httpapi: API key %d is empty", i+1)
		case seen[k.Key]:
			return fmt.Errorf("httpapi: API key %d repeats an earlier key", i+1)
		case k.Name == "" && !k.Admin:
			return fmt.Errorf("httpapi: API key %d has no name and is not an admin", i+1)
		case k.Name != "" && !ValidKeyName(k.Name):
			return fmt.Errorf("httpapi: API key %d: name %q must be 1 to 64 letters, digits, '.', '_' or '-'", i+1, k.Name)
		}
		seen[k.Key] = true
	}
	return nil
}

// ValidKeyName reports whether name is a valid API key name: 1 to 64
// ASCII letters, digits, '.', '_' or '-'.
func ValidKeyName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !keyNameChar(c) {
			return false
		}
	}
	return true
}

// keyNameChar reports whether c may appear in an API key name.
func keyNameChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// OpenAPI returns the API's OpenAPI document.
func (s *Server) OpenAPI() *huma.OpenAPI { return s.api.OpenAPI() }

// public reports whether path is served without an API key.
func (s *Server) public(path string) bool {
	return s.publicPaths[path] || strings.HasPrefix(path, "/openapi") || strings.HasPrefix(path, "/docs/")
}

// humaConfig is huma's default configuration without the $schema links
// (responses carry exactly the documented fields) and without huma's own
// docs page (it loads its assets from a CDN; mountDocs serves ours).
func (s *Server) humaConfig(version string, withKeys bool) huma.Config {
	cfg := huma.DefaultConfig("Agent orchestrator API", version)
	cfg.CreateHooks = nil
	cfg.SchemasPath = ""
	cfg.DocsPath = ""
	cfg.OpenAPIPath = "/openapi"
	cfg.Info.Description = "Accepts, stores and serves tasks (code + prompt) for AI coding agents. " +
		"Errors are RFC 9457 problems (application/problem+json)."
	cfg.Transformers = append(cfg.Transformers, tidyProblem)
	if withKeys {
		cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
			"bearer": {Type: "http", Scheme: "bearer", Description: "One of the keys of API_KEYS."},
		}
	}
	return cfg
}

// randomPrefix returns 8 random hex digits and a dash, to start request ids.
func randomPrefix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "-"
}
