package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/httpapi"
	"github.com/agentorch/orchestrator/internal/task"
)

type created struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
}

type page struct {
	Items      []task.Task `json:"items"`
	NextCursor *string     `json:"nextCursor"`
}

func TestTasksLifecycle(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			c := serve(t, openStore(t, kind), httpapi.Options{})

			// Create with the default timeout, then get it back whole.
			var cr created
			resp := c.do("POST", "/tasks", map[string]any{"code": "print(1)", "prompt": "explain"})
			resp.decode(t, http.StatusCreated, &cr)
			if loc := resp.header.Get("Location"); loc != "/tasks/"+cr.ID {
				t.Errorf("Location %q", loc)
			}
			if _, err := uuid.Parse(cr.ID); err != nil || cr.Status != "pending" || cr.CreatedAt.IsZero() {
				t.Fatalf("created %+v", cr)
			}
			var raw map[string]any
			c.do("POST", "/tasks", map[string]any{"code": "x", "prompt": "y"}).decode(t, http.StatusCreated, &raw)
			if len(raw) != 3 {
				t.Errorf("create response has fields %v, want exactly id, status, createdAt", raw)
			}
			var got task.Task
			c.do("GET", "/tasks/"+cr.ID, nil).decode(t, http.StatusOK, &got)
			if got.ID.String() != cr.ID || got.Code != "print(1)" || got.Prompt != "explain" ||
				got.Timeout != task.DefaultTimeoutMs || got.Status != task.StatusPending || got.Attempts != 0 ||
				!got.CreatedAt.Equal(cr.CreatedAt) || got.WorkerID != nil || got.CompletedAt != nil {
				t.Errorf("got %+v", got)
			}
			var full map[string]any
			c.do("GET", "/tasks/"+cr.ID, nil).decode(t, http.StatusOK, &full)
			for _, k := range []string{"id", "code", "prompt", "timeout", "status", "workerId", "result", "errorMessage",
				"attempts", "executionTime", "createdAt", "updatedAt", "startedAt", "completedAt"} {
				if _, ok := full[k]; !ok {
					t.Errorf("task JSON lacks %q: %v", k, full)
				}
			}

			// Timeout bounds are inclusive.
			for _, ms := range []int64{task.MinTimeoutMs, task.MaxTimeoutMs} {
				var cr created
				c.do("POST", "/tasks", map[string]any{"code": "c", "prompt": "p", "timeout": ms}).decode(t, http.StatusCreated, &cr)
				var got task.Task
				c.do("GET", "/tasks/"+cr.ID, nil).decode(t, http.StatusOK, &got)
				if got.Timeout != ms {
					t.Errorf("timeout %d stored as %d", ms, got.Timeout)
				}
			}
			// Limits are inclusive too: 1 MiB of code, 64 KiB of prompt.
			c.do("POST", "/tasks", map[string]any{"code": strings.Repeat("a", task.MaxCodeBytes),
				"prompt": strings.Repeat("b", task.MaxPromptBytes)}).decode(t, http.StatusCreated, &cr)

			// Stats: 5 pending tasks.
			var st httpapi.TaskStats
			c.do("GET", "/tasks/stats", nil).decode(t, http.StatusOK, &st)
			if st.Database.Total != 5 || st.Database.Pending != 5 || st.Database.Completed != 0 || st.Database.AvgExecutionTimeMs != nil {
				t.Errorf("stats %+v", st.Database)
			}
			var rawStats map[string]any
			c.do("GET", "/tasks/stats", nil).decode(t, http.StatusOK, &rawStats)
			if _, ok := rawStats["queue"]; ok {
				t.Errorf("stats without a queue has a queue part: %v", rawStats)
			}
		})
	}
}

func TestListPagination(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, kind)
			svc := task.NewService(store, task.ServiceOptions{Logger: discardLogger()})
			c := serve(t, store, httpapi.Options{Service: svc})
			var ids []string
			for i := range 7 {
				var cr created
				c.do("POST", "/tasks", map[string]any{"code": fmt.Sprint(i), "prompt": "p"}).decode(t, http.StatusCreated, &cr)
				ids = append(ids, cr.ID)
			}
			// Move two tasks out of pending, to filter on status.
			ctx := context.Background()
			for _, id := range ids[:2] {
				if _, err := svc.Apply(ctx, task.MarkQueued(uuid.MustParse(id), time.Now())); err != nil {
					t.Fatalf("mark queued: %v", err)
				}
			}

			// Newest first, 3 per page, no task twice or missed.
			var seen []string
			path := "/tasks?limit=3"
			for pages := 0; ; pages++ {
				if pages > 5 {
					t.Fatal("pagination does not end")
				}
				var p page
				c.do("GET", path, nil).decode(t, http.StatusOK, &p)
				if len(p.Items) > 3 {
					t.Fatalf("page of %d items, limit 3", len(p.Items))
				}
				for _, it := range p.Items {
					seen = append(seen, it.ID.String())
				}
				if p.NextCursor == nil {
					break
				}
				path = "/tasks?limit=3&cursor=" + *p.NextCursor
			}
			if len(seen) != len(ids) {
				t.Fatalf("listed %d tasks, want %d", len(seen), len(ids))
			}
			for i := range ids {
				if seen[i] != ids[len(ids)-1-i] {
					t.Fatalf("listed %v, want newest first %v", seen, ids)
				}
			}

			// Default limit and empty page shape.
			var p page
			c.do("GET", "/tasks", nil).decode(t, http.StatusOK, &p)
			if len(p.Items) != 7 || p.NextCursor != nil {
				t.Errorf("default page: %d items, cursor %v", len(p.Items), p.NextCursor)
			}
			var raw map[string]any
			c.do("GET", "/tasks?status=running", nil).decode(t, http.StatusOK, &raw)
			if items, ok := raw["items"].([]any); !ok || len(items) != 0 || raw["nextCursor"] != nil {
				t.Errorf("empty page = %v, want items [] and nextCursor null", raw)
			}

			// Status filter.
			c.do("GET", "/tasks?status=queued", nil).decode(t, http.StatusOK, &p)
			if len(p.Items) != 2 || p.Items[0].Status != task.StatusQueued {
				t.Errorf("queued filter: %+v", p.Items)
			}
			c.do("GET", "/tasks?status=pending&limit=200", nil).decode(t, http.StatusOK, &p)
			if len(p.Items) != 5 {
				t.Errorf("pending filter: %d items", len(p.Items))
			}

			var st httpapi.TaskStats
			c.do("GET", "/tasks/stats", nil).decode(t, http.StatusOK, &st)
			if st.Database.Total != 7 || st.Database.Pending != 5 || st.Database.Queued != 2 {
				t.Errorf("stats %+v", st.Database)
			}
		})
	}
}

func TestBadInputs(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			c := serve(t, openStore(t, kind), httpapi.Options{})
			tests := []struct {
				name     string
				method   string
				path     string
				body     any
				status   int
				location string // "" when the problem names no field
			}{
				{"missing code", "POST", "/tasks", `{"prompt":"p"}`, 422, "body.code"},
				{"missing prompt", "POST", "/tasks", `{"code":"c"}`, 422, "body.prompt"},
				{"empty object", "POST", "/tasks", `{}`, 422, "body.code"},
				{"empty code", "POST", "/tasks", `{"code":"","prompt":"p"}`, 422, "body.code"},
				{"empty prompt", "POST", "/tasks", `{"code":"c","prompt":""}`, 422, "body.prompt"},
				{"null code", "POST", "/tasks", `{"code":null,"prompt":"p"}`, 422, "body.code"},
				{"code is a number", "POST", "/tasks", `{"code":1,"prompt":"p"}`, 422, "body.code"},
				{"prompt is an object", "POST", "/tasks", `{"code":"c","prompt":{}}`, 422, "body.prompt"},
				{"timeout is a string", "POST", "/tasks", `{"code":"c","prompt":"p","timeout":"1000"}`, 422, "body.timeout"},
				{"timeout is fractional", "POST", "/tasks", `{"code":"c","prompt":"p","timeout":1000.5}`, 422, "body.timeout"},
				{"timeout too small", "POST", "/tasks", `{"code":"c","prompt":"p","timeout":999}`, 422, "body.timeout"},
				{"timeout zero", "POST", "/tasks", `{"code":"c","prompt":"p","timeout":0}`, 422, "body.timeout"},
				{"timeout too large", "POST", "/tasks", `{"code":"c","prompt":"p","timeout":86400001}`, 422, "body.timeout"},
				{"unknown field", "POST", "/tasks", `{"code":"c","prompt":"p","colour":1}`, 422, "body.colour"},
				{"body is an array", "POST", "/tasks", `[]`, 422, ""},
				{"body is a string", "POST", "/tasks", `"code"`, 422, ""},
				{"code too long", "POST", "/tasks", map[string]any{"code": strings.Repeat("a", task.MaxCodeBytes+1), "prompt": "p"}, 422, "body.code"},
				{"code too long in bytes", "POST", "/tasks", map[string]any{"code": strings.Repeat("é", task.MaxCodeBytes/2+1), "prompt": "p"}, 422, "body.code"},
				{"prompt too long", "POST", "/tasks", map[string]any{"code": "c", "prompt": strings.Repeat("b", task.MaxPromptBytes+1)}, 422, "body.prompt"},
				{"NUL in code", "POST", "/tasks", `{"code":"a\u0000b","prompt":"p"}`, 422, "body.code"},
				{"NUL in prompt", "POST", "/tasks", `{"code":"c","prompt":"p\u0000"}`, 422, "body.prompt"},
				{"malformed JSON", "POST", "/tasks", `{"code":"c",`, 400, "body"},
				{"not JSON", "POST", "/tasks", `code=c&prompt=p`, 400, "body"},
				{"trailing garbage", "POST", "/tasks", `{"code":"c","prompt":"p"} x`, 400, "body"},
				{"deep nesting", "POST", "/tasks", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), 400, "body"},
				{"no body", "POST", "/tasks", nil, 400, ""},
				{"body too large", "POST", "/tasks", map[string]any{"code": strings.Repeat("a", httpapi.MaxBodyBytes), "prompt": "p"}, 413, ""},
				{"malformed id", "GET", "/tasks/not-a-uuid", nil, 404, ""},
				{"numeric id", "GET", "/tasks/42", nil, 404, ""},
				{"unknown id", "GET", "/tasks/" + uuid.NewString(), nil, 404, ""},
				{"bad cursor", "GET", "/tasks?cursor=abc", nil, 422, "query.cursor"},
				{"bad cursor base64", "GET", "/tasks?cursor=!!!", nil, 422, "query.cursor"},
				{"forged cursor", "GET", "/tasks?cursor=" + task.Cursor{}.Encode() + "x", nil, 422, "query.cursor"},
				{"limit zero", "GET", "/tasks?limit=0", nil, 422, "query.limit"},
				{"limit too large", "GET", "/tasks?limit=201", nil, 422, "query.limit"},
				{"limit negative", "GET", "/tasks?limit=-1", nil, 422, "query.limit"},
				{"limit not a number", "GET", "/tasks?limit=ten", nil, 422, "query.limit"},
				{"bad status", "GET", "/tasks?status=done", nil, 422, "query.status"},
				{"malformed cursor escape", "GET", "/tasks?cursor=%%%garbage", nil, 400, "query"},
				{"malformed limit escape", "GET", "/tasks?limit=%zz", nil, 400, "query"},
				{"malformed name escape", "GET", "/tasks?%zz=1", nil, 400, "query"},
				{"semicolon separator", "GET", "/tasks?limit=1;status=queued", nil, 400, "query"},
				{"malformed query on a task", "GET", "/tasks/" + uuid.NewString() + "?x=%", nil, 400, "query"},
				{"malformed query on a create", "POST", "/tasks?x=%zz", `{"code":"c","prompt":"p"}`, 400, "query"},
				{"unknown route", "GET", "/nope", nil, 404, ""},
				{"wrong method", "DELETE", "/tasks", nil, 405, ""},
				{"wrong method on a task", "PUT", "/tasks/" + uuid.NewString(), `{}`, 405, ""},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c.do(tt.method, tt.path, tt.body).problem(t, tt.status, tt.location)
				})
			}
			// A body that is not JSON by its content type.
			c.do("POST", "/tasks", `{"code":"c","prompt":"p"}`, "Content-Type", "text/plain").problem(t, 415, "")
			// None of the refused creates was stored.
			var st httpapi.TaskStats
			c.do("GET", "/tasks/stats", nil).decode(t, http.StatusOK, &st)
			if st.Database.Total != 0 {
				t.Errorf("%d tasks stored by refused requests", st.Database.Total)
			}
		})
	}
}

// TestBodyLimitChunked sends an oversize body without Content-Length, so
// that the limit applies while reading.
func TestBodyLimitChunked(t *testing.T) {
	c := serve(t, openStore(t, "sqlite"), httpapi.Options{})
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, `{"code":"`)
		chunk := strings.Repeat("a", 64<<10)
		for written := 0; written <= httpapi.MaxBodyBytes; written += len(chunk) {
			if _, err := io.WriteString(pw, chunk); err != nil {
				return // the server stopped reading
			}
		}
		_, _ = io.WriteString(pw, `","prompt":"p"}`)
		_ = pw.Close()
	}()
	c.do("POST", "/tasks", io.Reader(pr)).problem(t, http.StatusRequestEntityTooLarge, "")
	_ = pr.Close()
}

func TestAPIKeys(t *testing.T) {
	c := serve(t, openStore(t, "sqlite"), httpapi.Options{APIKeys: plainKeys("k1", "second-key")})
	var cr created
	tests := []struct {
		name   string
		auth   string // Authorization header; "" sends none
		status int
	}{
		{"no header", "", 401},
		{"wrong key", "Bearer nope", 401},
		{"prefix of a key", "Bearer k", 401},
		{"key with suffix", "Bearer k1x", 401},
		{"basic scheme", "Basic azE=", 401},
		{"bearer without key", "Bearer ", 401},
		{"first key", "Bearer k1", 201},
		{"second key", "Bearer second-key", 201},
		{"scheme case-insensitive", "bearer k1", 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			r := c.do("POST", "/tasks", map[string]any{"code": "c", "prompt": "p"}, hdr...)
			if tt.status == 401 {
				r.problem(t, 401, "")
				if r.header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				return
			}
			r.decode(t, tt.status, &cr)
		})
	}
	// Every API route needs the key, known or not.
	for _, path := range []string{"/tasks", "/tasks/" + cr.ID, "/tasks/stats", "/tasks/not-a-uuid", "/nope"} {
		c.do("GET", path, nil).problem(t, 401, "")
		c.do("GET", path, nil, "Authorization", "Bearer wrong").problem(t, 401, "")
	}
	ok := c.do("GET", "/tasks/"+cr.ID, nil, "Authorization", "Bearer k1")
	if ok.status != 200 {
		t.Errorf("GET with key: %d", ok.status)
	}
	// Health, the OpenAPI document and the docs page are public.
	for _, path := range []string{"/health", "/openapi.json", "/openapi.yaml", "/docs", "/docs/swagger-ui-bundle.js"} {
		if r := c.do("GET", path, nil); r.status != 200 {
			t.Errorf("GET %s without key: %d %s", path, r.status, short(r.body))
		}
	}
	// The OpenAPI document declares the bearer scheme.
	var doc struct {
		Components struct {
			SecuritySchemes map[string]any `json:"securitySchemes"`
		} `json:"components"`
	}
	c.do("GET", "/openapi.json", nil).decode(t, 200, &doc)
	if _, ok := doc.Components.SecuritySchemes["bearer"]; !ok {
		t.Errorf("no bearer security scheme in the OpenAPI document")
	}
}

func TestHealth(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, kind)
			var h map[string]any
			serve(t, store, httpapi.Options{}).do("GET", "/health", nil).decode(t, 200, &h)
			if h["status"] != "healthy" || fmt.Sprint(h["database"]) != "map[connected:true]" || h["redis"] != nil {
				t.Errorf("health %v", h)
			}
			// A closed store does not answer: 503 unhealthy.
			closed := openStore(t, kind)
			c := serve(t, nil, httpapi.Options{Service: task.NewService(closed, task.ServiceOptions{})})
			if err := closed.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			var hb httpapi.Health
			c.do("GET", "/health", nil).decode(t, 503, &hb)
			if hb.Status != "unhealthy" || hb.Database.Connected {
				t.Errorf("health of a closed store: %+v", hb)
			}
		})
	}
}

func TestHealthCheckers(t *testing.T) {
	store := openStore(t, "sqlite")
	fail := httpapi.PingerFunc(func(context.Context) error { return errors.New("down") })
	hang := httpapi.PingerFunc(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	redisUp := httpapi.RedisCheckerFunc(func(context.Context) task.QueueHealth {
		return task.QueueHealth{Connected: true, LatencyMs: 0.5, MaxmemoryPolicy: "noeviction"}
	})
	redisDown := httpapi.RedisCheckerFunc(func(ctx context.Context) task.QueueHealth {
		<-ctx.Done() // answers only at the deadline
		return task.QueueHealth{Connected: false, Warning: "timeout"}
	})
	up := httpapi.Dependency{Connected: true}
	tests := []struct {
		name   string
		db     httpapi.Pinger
		redis  httpapi.RedisChecker
		status int
		want   httpapi.Health
	}{
		{"redis up", nil, redisUp, 200, httpapi.Health{Status: "healthy", Database: up,
			Redis: &task.QueueHealth{Connected: true, LatencyMs: 0.5, MaxmemoryPolicy: "noeviction"}}},
		{"redis down", nil, redisDown, 503, httpapi.Health{Status: "unhealthy", Database: up,
			Redis: &task.QueueHealth{Warning: "timeout"}}},
		{"database down", fail, redisUp, 503, httpapi.Health{Status: "unhealthy",
			Redis: &task.QueueHealth{Connected: true, LatencyMs: 0.5, MaxmemoryPolicy: "noeviction"}}},
		{"database hangs", hang, nil, 503, httpapi.Health{Status: "unhealthy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := serve(t, store, httpapi.Options{Database: tt.db, Redis: tt.redis, HealthTimeout: 100 * time.Millisecond})
			var h httpapi.Health
			start := time.Now()
			c.do("GET", "/health", nil).decode(t, tt.status, &h)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("health took %s", d)
			}
			if h.Status != tt.want.Status || h.Database != tt.want.Database || (h.Redis == nil) != (tt.want.Redis == nil) ||
				(h.Redis != nil && *h.Redis != *tt.want.Redis) {
				t.Errorf("health %+v (redis %+v), want %+v", h, h.Redis, tt.want)
			}
		})
	}
}

func TestStatsQueue(t *testing.T) {
	store := openStore(t, "sqlite")
	counts := task.QueueCounts{Waiting: 1, Active: 2, Completed: 3, Failed: 4, Delayed: 5, Prioritized: 6, Paused: 7}
	c := serve(t, store, httpapi.Options{QueueStats: httpapi.QueueStatsFunc(func(context.Context) (task.QueueCounts, error) {
		return counts, nil
	})})
	var raw map[string]map[string]any
	c.do("GET", "/tasks/stats", nil).decode(t, 200, &raw)
	want := `map[active:2 available:true completed:3 delayed:5 failed:4 paused:7 prioritized:6 waiting:1]`
	if got := fmt.Sprint(raw["queue"]); got != want {
		t.Errorf("queue part %s, want %s", got, want)
	}
	// A queue that does not answer: still 200, and the part says so.
	c = serve(t, store, httpapi.Options{QueueStats: httpapi.QueueStatsFunc(func(context.Context) (task.QueueCounts, error) {
		return task.QueueCounts{}, errors.New("redis down")
	})})
	var st httpapi.TaskStats
	c.do("GET", "/tasks/stats", nil).decode(t, 200, &st)
	if st.Queue == nil || st.Queue.Available || st.Queue.Error == "" || st.Queue.Waiting != 0 {
		t.Errorf("queue part when down: %+v", st.Queue)
	}
}

func TestCancel(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			c := serve(t, openStore(t, kind), httpapi.Options{})
			var cr created
			c.do("POST", "/tasks", map[string]any{"code": "c", "prompt": "p"}).decode(t, 201, &cr)
			var got task.Task
			c.do("POST", "/tasks/"+cr.ID+"/cancel", nil).decode(t, 200, &got)
			if got.Status != task.StatusCancelled || got.CompletedAt == nil {
				t.Errorf("cancelled task %+v", got)
			}
			c.do("POST", "/tasks/"+cr.ID+"/cancel", nil).problem(t, 409, "")
			c.do("POST", "/tasks/"+uuid.NewString()+"/cancel", nil).problem(t, 404, "")
			c.do("POST", "/tasks/nope/cancel", nil).problem(t, 404, "")
			c.do("GET", "/tasks/"+cr.ID, nil).decode(t, 200, &got)
			if got.Status != task.StatusCancelled {
				t.Errorf("stored status %s", got.Status)
			}
		})
	}
}

func TestOpenAPIAndDocs(t *testing.T) {
	c := serve(t, openStore(t, "sqlite"), httpapi.Options{})
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	c.do("GET", "/openapi.json", nil).decode(t, 200, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	for path, method := range map[string]string{"/tasks": "post", "/tasks/{id}": "get", "/tasks/stats": "get", "/health": "get"} {
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("OpenAPI lacks %s %s", method, path)
		}
	}
	page := c.do("GET", "/docs", nil)
	if page.status != 200 || !strings.Contains(page.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs: %d %s", page.status, page.header.Get("Content-Type"))
	}
	html := string(page.body)
	if !strings.Contains(html, "/openapi.json") {
		t.Errorf("docs page does not load /openapi.json")
	}
	// Offline: every script and stylesheet comes from this server.
	for _, attr := range []string{`src="http`, `href="http`, `src="//`, `href="//`} {
		if strings.Contains(html, attr) {
			t.Errorf("docs page loads a remote asset (%s)", attr)
		}
	}
	for _, asset := range []string{"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"} {
		if r := c.do("GET", asset, nil); r.status != 200 || len(r.body) < 1000 {
			t.Errorf("GET %s: %d, %d bytes", asset, r.status, len(r.body))
		}
	}
}

func TestMiddlewareHookAndRequestID(t *testing.T) {
	type seen struct{ route, id string }
	got := make(chan seen, 10)
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			got <- seen{httpapi.RoutePattern(r), httpapi.RequestID(r.Context())}
		})
	}
	extra := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "metrics") })
	c := serve(t, openStore(t, "sqlite"), httpapi.Options{
		Middleware: []func(http.Handler) http.Handler{mw},
		Routes:     []httpapi.ExtraRoute{{Pattern: "GET /metrics", Handler: extra, Public: true}},
		APIKeys:    plainKeys("k"),
	})
	r := c.do("GET", "/tasks/"+uuid.NewString(), nil, "Authorization", "Bearer k", "X-Request-ID", "req-123")
	r.problem(t, 404, "")
	if r.header.Get("X-Request-ID") != "req-123" {
		t.Errorf("X-Request-ID %q, want the client's", r.header.Get("X-Request-ID"))
	}
	if s := <-got; s.route != "GET /tasks/{id}" || s.id != "req-123" {
		t.Errorf("middleware saw %+v", s)
	}
	r = c.do("GET", "/metrics", nil)
	if r.status != 200 || string(r.body) != "metrics" {
		t.Errorf("extra public route: %d %q", r.status, r.body)
	}
	if s := <-got; s.route != "GET /metrics" || s.id == "" {
		t.Errorf("middleware saw %+v", s)
	}
	if r.header.Get("X-Request-ID") == "" {
		t.Error("no X-Request-ID generated")
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	svc := task.NewService(nopStore{}, task.ServiceOptions{})
	h := http.NotFoundHandler()
	for name, opts := range map[string]httpapi.Options{
		"no service":            {},
		"empty key":             {Service: svc, APIKeys: plainKeys("k", " ")},
		"route without handler": {Service: svc, Routes: []httpapi.ExtraRoute{{Pattern: "GET /metrics"}}},
		"invalid pattern":       {Service: svc, Routes: []httpapi.ExtraRoute{{Pattern: "GET /{", Handler: h}}},
		"conflicting route":     {Service: svc, Routes: []httpapi.ExtraRoute{{Pattern: "GET /health", Handler: h}}},
	} {
		if _, err := httpapi.New(opts); err == nil {
			t.Errorf("%s: New = nil error", name)
		}
	}
}

// TestConcurrentCreates creates tasks from many goroutines at once, as
// the load test does, on both stores.
func TestConcurrentCreates(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			c := serve(t, openStore(t, kind), httpapi.Options{})
			const workers, each = 20, 10
			errs := make(chan error, workers)
			for w := range workers {
				go func() {
					for i := range each {
						body := fmt.Sprintf(`{"code":"w%d-%d","prompt":"p"}`, w, i)
						req, _ := http.NewRequest("POST", c.base+"/tasks", strings.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						resp, err := c.http.Do(req)
						if err != nil {
							errs <- err
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 201 {
							errs <- fmt.Errorf("status %d", resp.StatusCode)
							return
						}
					}
					errs <- nil
				}()
			}
			for range workers {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			var st httpapi.TaskStats
			c.do("GET", "/tasks/stats", nil).decode(t, 200, &st)
			if st.Database.Total != workers*each {
				t.Errorf("total %d, want %d", st.Database.Total, workers*each)
			}
		})
	}
}

var _ = json.Marshal

// TestOddButValidInputs: inputs that are valid JSON with odd content are
// stored by both stores alike (never a 500).
func TestOddButValidInputs(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			c := serve(t, openStore(t, kind), httpapi.Options{})
			for _, body := range []string{
				"{\"code\":\"\xff\xfe\",\"prompt\":\"invalid UTF-8 becomes U+FFFD\"}",
				`{"code":"\ud800","prompt":"lone surrogate"}`,
				`{"code":"c","prompt":"null timeout means default","timeout":null}`,
				`{"code":"emoji 🚀 and 中文","prompt":"p"}`,
				`{"code":"c","prompt":"p","timeout":86400000}`,
			} {
				var cr created
				c.do("POST", "/tasks", body).decode(t, http.StatusCreated, &cr)
				var got task.Task
				c.do("GET", "/tasks/"+cr.ID, nil).decode(t, http.StatusOK, &got)
				if got.Code == "" || got.Timeout < task.MinTimeoutMs {
					t.Errorf("%s stored as %+v", body, got)
				}
			}
		})
	}
}
