package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/httpapi"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/webhook"
)

func TestPriorityAndMetadata(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			c := serve(t, openStore(t, kind), httpapi.Options{})
			meta := `{"ticket":"AAI-003","team":{"name":"infra"},"n":3,"tags":["a","b"]}`
			var cr created
			c.do("POST", "/tasks", `{"code":"c","prompt":"p","priority":1,"metadata":`+meta+`}`).decode(t, http.StatusCreated, &cr)
			var got task.Task
			c.do("GET", "/tasks/"+cr.ID, nil).decode(t, http.StatusOK, &got)
			if got.Priority == nil || *got.Priority != 1 || !jsonSame(got.Metadata, meta) {
				t.Fatalf("task priority %v metadata %s", got.Priority, got.Metadata)
			}
			var plain map[string]any
			c.do("POST", "/tasks", map[string]any{"code": "c", "prompt": "p", "priority": task.MaxPriority,
				"metadata": map[string]any{"ticket": "AAI-004"}}).decode(t, http.StatusCreated, &cr)
			c.do("GET", "/tasks/"+cr.ID, nil).decode(t, http.StatusOK, &plain)
			if plain["priority"] != float64(task.MaxPriority) || plain["owner"] != "" || plain["retries"] != float64(0) ||
				plain["webhook"] != nil || plain["callbackUrl"] != nil {
				t.Fatalf("task JSON = %v", plain)
			}
			c.do("POST", "/tasks", map[string]any{"code": "c", "prompt": "p"}).decode(t, http.StatusCreated, &cr)
			c.do("GET", "/tasks/"+cr.ID, nil).decode(t, http.StatusOK, &plain)
			if _, ok := plain["priority"]; !ok || plain["priority"] != nil || plain["metadata"] != nil {
				t.Fatalf("task without priority and metadata: %v", plain)
			}

			for _, tc := range []struct{ name, body, loc string }{
				{"priority 0", `{"code":"c","prompt":"p","priority":0}`, "body.priority"},
				{"priority too large", fmt.Sprintf(`{"code":"c","prompt":"p","priority":%d}`, task.MaxPriority+1), "body.priority"},
				{"priority not a number", `{"code":"c","prompt":"p","priority":"high"}`, "body.priority"},
				{"metadata array", `{"code":"c","prompt":"p","metadata":["a"]}`, "body.metadata"},
				{"metadata string", `{"code":"c","prompt":"p","metadata":"x"}`, "body.metadata"},
				{"metadata too large", `{"code":"c","prompt":"p","metadata":{"k":"` + strings.Repeat("x", task.MaxMetadataBytes) + `"}}`, "body.metadata"},
				{"metadata with NUL", `{"code":"c","prompt":"p","metadata":{"k":"\u0000"}}`, "body.metadata"},
			} {
				c.do("POST", "/tasks", tc.body).problem(t, http.StatusUnprocessableEntity, tc.loc)
			}

			// The metadata filter: string values only, with other filters, paged.
			var pg page
			c.do("GET", "/tasks?metadata.ticket=AAI-003", nil).decode(t, http.StatusOK, &pg)
			if len(pg.Items) != 1 || pg.Items[0].Priority == nil || *pg.Items[0].Priority != 1 {
				t.Fatalf("metadata.ticket=AAI-003: %d items", len(pg.Items))
			}
			c.do("GET", "/tasks?metadata.n=3", nil).decode(t, http.StatusOK, &pg)
			if len(pg.Items) != 0 {
				t.Fatalf("metadata.n=3 matched a number: %d items", len(pg.Items))
			}
			c.do("GET", "/tasks?metadata.ticket=AAI-003&status=pending&limit=1", nil).decode(t, http.StatusOK, &pg)
			if len(pg.Items) != 1 || pg.NextCursor != nil {
				t.Fatalf("metadata with status: %d items, cursor %v", len(pg.Items), pg.NextCursor)
			}
			c.do("GET", "/tasks?metadata.ticket=AAI-003&status=completed", nil).decode(t, http.StatusOK, &pg)
			if len(pg.Items) != 0 {
				t.Fatalf("metadata with another status: %d items", len(pg.Items))
			}
			for _, tc := range []struct{ query, loc string }{
				{"metadata.=x", "query.metadata."},
				{"metadata=x", "query.metadata"},
				{"metadata.a=1&metadata.b=2", ""},
				{"metadata.a=1&metadata.a=2", "query.metadata.a"},
				{"metadata.k=" + strings.Repeat("v", task.MaxMetadataValueBytes+1), "query.metadata.k"},
				{"metadata.k=a%00b", "query.metadata.k"},
			} {
				c.do("GET", "/tasks?"+tc.query, nil).problem(t, http.StatusUnprocessableEntity, tc.loc)
			}
		})
	}
}

func jsonSame(got json.RawMessage, want string) bool {
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestIdempotencyKey(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, kind)
			c := serve(t, store, httpapi.Options{APIKeys: []httpapi.APIKey{{Name: "alice", Key: "ka"}, {Name: "bob", Key: "kb"}}})
			body := map[string]any{"code": "c", "prompt": "p", "metadata": map[string]any{"order": 1}}
			alice := []string{"Authorization", "Bearer ka", "Idempotency-Key", "order-1"}
			var first, again created
			r := c.do("POST", "/tasks", body, alice...)
			r.decode(t, http.StatusCreated, &first)
			if r.header.Get("Idempotent-Replayed") != "" {
				t.Errorf("first create marked replayed")
			}
			r = c.do("POST", "/tasks", body, alice...)
			r.decode(t, http.StatusOK, &again)
			if again.ID != first.ID || r.header.Get("Idempotent-Replayed") != "true" || r.header.Get("Location") != "/tasks/"+first.ID {
				t.Fatalf("replay: %+v (first %+v), headers %v", again, first, r.header)
			}
			// The same JSON with other spacing and key order is the same body.
			c.do("POST", "/tasks", `{ "prompt":"p", "code":"c", "metadata": {"order": 1} }`, alice...).decode(t, http.StatusOK, &again)
			if again.ID != first.ID {
				t.Fatalf("reformatted body created %s", again.ID)
			}
			p := c.do("POST", "/tasks", map[string]any{"code": "c", "prompt": "other"}, alice...).
				problem(t, http.StatusUnprocessableEntity, "header.Idempotency-Key")
			if !strings.Contains(p.Detail, "another body") {
				t.Errorf("mismatch detail %q", p.Detail)
			}
			// Keys are per API key name.
			var bobs created
			c.do("POST", "/tasks", body, "Authorization", "Bearer kb", "Idempotency-Key", "order-1").decode(t, http.StatusCreated, &bobs)
			if bobs.ID == first.ID {
				t.Fatal("bob's request with alice's key replayed alice's task")
			}
			for _, bad := range []string{strings.Repeat("k", 256), "é-key"} {
				c.do("POST", "/tasks", body, "Authorization", "Bearer ka", "Idempotency-Key", bad).
					problem(t, http.StatusUnprocessableEntity, "header.Idempotency-Key")
			}
			// Concurrent duplicates: one task.
			const n = 16
			ids := make([]string, n)
			codes := make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var cr created
					r := c.do("POST", "/tasks", body, "Authorization", "Bearer ka", "Idempotency-Key", "burst")
					codes[i] = r.status
					_ = json.Unmarshal(r.body, &cr)
					ids[i] = cr.ID
				}()
			}
			wg.Wait()
			createdN := 0
			for i := range n {
				if codes[i] == http.StatusCreated {
					createdN++
				} else if codes[i] != http.StatusOK {
					t.Fatalf("concurrent create %d: status %d", i, codes[i])
				}
				if ids[i] != ids[0] || ids[i] == "" {
					t.Fatalf("concurrent creates got tasks %s and %s", ids[0], ids[i])
				}
			}
			if createdN != 1 {
				t.Fatalf("%d concurrent creates answered 201, want 1", createdN)
			}
			st, _ := store.Stats(t.Context())
			if st.Total != 3 {
				t.Fatalf("%d tasks stored, want 3 (alice's, bob's, the burst's)", st.Total)
			}
		})
	}
}

// TestOwnership: named keys see their own tasks only; admin keys and plain
// keys (admins without a name) see all; tasks created by a plain key
// belong to no one.
func TestOwnership(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, kind)
			svc := task.NewService(store, task.ServiceOptions{Logger: discardLogger()})
			c := serve(t, store, httpapi.Options{Service: svc, QueueStats: httpapi.QueueStatsFunc(
				func(ctx context.Context) (task.QueueCounts, error) { return task.QueueCounts{Waiting: 7}, nil }),
				APIKeys: []httpapi.APIKey{{Name: "alice", Key: "ka"}, {Name: "bob", Key: "kb"},
					{Name: "ops", Key: "ko", Admin: true}, {Key: "legacy", Admin: true}}})
			as := func(key string) []string { return []string{"Authorization", "Bearer " + key} }
			var mine, legacy created
			c.do("POST", "/tasks", map[string]any{"code": "c", "prompt": "p", "metadata": map[string]any{"t": "x"}}, as("ka")...).
				decode(t, http.StatusCreated, &mine)
			c.do("POST", "/tasks", map[string]any{"code": "c", "prompt": "p", "metadata": map[string]any{"t": "x"}}, as("legacy")...).
				decode(t, http.StatusCreated, &legacy)
			var got task.Task
			c.do("GET", "/tasks/"+mine.ID, nil, as("ka")...).decode(t, http.StatusOK, &got)
			if got.Owner != "alice" {
				t.Fatalf("owner = %q, want alice", got.Owner)
			}
			c.do("GET", "/tasks/"+legacy.ID, nil, as("ko")...).decode(t, http.StatusOK, &got)
			if got.Owner != "" {
				t.Fatalf("plain key's task owner = %q, want none", got.Owner)
			}
			// Bob: 404 for alice's and the unowned task, on every route.
			for _, id := range []string{mine.ID, legacy.ID} {
				c.do("GET", "/tasks/"+id, nil, as("kb")...).problem(t, http.StatusNotFound, "")
				c.do("POST", "/tasks/"+id+"/cancel", nil, as("kb")...).problem(t, http.StatusNotFound, "")
				c.do("POST", "/tasks/"+id+"/retry", nil, as("kb")...).problem(t, http.StatusNotFound, "")
				c.do("GET", "/tasks/"+id, nil, as("ka")...)
			}
			c.do("GET", "/tasks/"+legacy.ID, nil, as("ka")...).problem(t, http.StatusNotFound, "")
			if tk, _ := store.Get(t.Context(), uuid.MustParse(mine.ID)); tk.Status != task.StatusPending {
				t.Fatalf("bob's refused cancel changed the task: %s", tk.Status)
			}
			count := func(key, query string) int {
				var pg page
				c.do("GET", "/tasks"+query, nil, as(key)...).decode(t, http.StatusOK, &pg)
				return len(pg.Items)
			}
			for _, tc := range []struct {
				key  string
				want int
			}{{"ka", 1}, {"kb", 0}, {"ko", 2}, {"legacy", 2}} {
				if n := count(tc.key, ""); n != tc.want {
					t.Errorf("key %s lists %d tasks, want %d", tc.key, n, tc.want)
				}
				if n := count(tc.key, "?metadata.t=x"); n != tc.want {
					t.Errorf("key %s lists %d tasks with the metadata filter, want %d", tc.key, n, tc.want)
				}
				var st httpapi.TaskStats
				c.do("GET", "/tasks/stats", nil, as(tc.key)...).decode(t, http.StatusOK, &st)
				admin := tc.key == "ko" || tc.key == "legacy"
				if st.Database.Total != int64(tc.want) || (st.Queue != nil) != admin {
					t.Errorf("key %s stats: total %d, queue %+v; want %d, queue shown %v", tc.key, st.Database.Total, st.Queue, tc.want, admin)
				}
			}
			// Alice cancels and retries her own task; bob's tries changed nothing.
			c.do("POST", "/tasks/"+mine.ID+"/cancel", nil, as("ka")...).decode(t, http.StatusOK, &got)
			c.do("POST", "/tasks/"+mine.ID+"/retry", nil, as("ka")...).decode(t, http.StatusOK, &got)
			if got.Status != task.StatusPending || got.Retries != 1 {
				t.Fatalf("alice's retry: %+v", got)
			}
		})
	}
}

func TestRetryRoute(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, kind)
			c := serve(t, store, httpapi.Options{})
			var cr created
			c.do("POST", "/tasks", map[string]any{"code": "c", "prompt": "p"}).decode(t, http.StatusCreated, &cr)
			p := c.do("POST", "/tasks/"+cr.ID+"/retry", nil).problem(t, http.StatusConflict, "")
			if !strings.Contains(p.Detail, "only a failed or cancelled task") {
				t.Errorf("409 detail %q", p.Detail)
			}
			id := uuid.MustParse(cr.ID)
			at := time.Now()
			if _, err := store.Apply(t.Context(), task.MarkRunning(id, 1, "w", at)); err != nil {
				t.Fatal(err)
			}
			if _, err := store.Apply(t.Context(), task.MarkFailed(id, task.Outcome{ErrorMessage: "boom", Attempts: 1}, at)); err != nil {
				t.Fatal(err)
			}
			var got task.Task
			c.do("POST", "/tasks/"+cr.ID+"/retry", nil).decode(t, http.StatusOK, &got)
			if got.ID != id || got.Status != task.StatusPending || got.Attempts != 1 || got.Retries != 1 ||
				got.ErrorMessage == nil || *got.ErrorMessage != "boom" || got.CompletedAt != nil {
				t.Fatalf("retried = %+v", got)
			}
			c.do("POST", "/tasks/"+cr.ID+"/retry", nil).problem(t, http.StatusConflict, "")
			c.do("POST", "/tasks/"+uuid.NewString()+"/retry", nil).problem(t, http.StatusNotFound, "")
			c.do("POST", "/tasks/nope/retry", nil).problem(t, http.StatusNotFound, "")
		})
	}
}

func TestCallbackURL(t *testing.T) {
	store := openStore(t, "sqlite")
	off := serve(t, store, httpapi.Options{})
	off.do("POST", "/tasks", map[string]any{"code": "c", "prompt": "p", "callbackUrl": "https://example.com/h"}).
		problem(t, http.StatusUnprocessableEntity, "body.callbackUrl")
	svc := task.NewService(store, task.ServiceOptions{Logger: discardLogger(),
		CheckCallbackURL: func(u string) error { return webhook.CheckURL(u, false) }})
	c := serve(t, store, httpapi.Options{Service: svc})
	for _, u := range []string{"http://127.0.0.1:9000/h", "http://localhost/h", "http://[::1]/", "http://169.254.169.254/latest",
		"http://[fd00:ec2::254]/", "http://10.0.0.8/", "http://100.64.0.1/", "ftp://example.com/", "not a url", "https://u:p@example.com/"} {
		c.do("POST", "/tasks", map[string]any{"code": "c", "prompt": "p", "callbackUrl": u}).
			problem(t, http.StatusUnprocessableEntity, "body.callbackUrl")
	}
	var cr created
	c.do("POST", "/tasks", map[string]any{"code": "c", "prompt": "p", "callbackUrl": "http://does-not-resolve.invalid/hook"}).
		decode(t, http.StatusCreated, &cr)
	var got task.Task
	c.do("GET", "/tasks/"+cr.ID, nil).decode(t, http.StatusOK, &got)
	if got.CallbackURL == nil || *got.CallbackURL != "http://does-not-resolve.invalid/hook" || got.Webhook == nil ||
		got.Webhook.State != task.WebhookWaiting {
		t.Fatalf("task with callback: %+v (webhook %+v)", got, got.Webhook)
	}
	// With the policy off (WEBHOOK_ALLOW_PRIVATE), loopback is accepted.
	open := task.NewService(store, task.ServiceOptions{Logger: discardLogger(),
		CheckCallbackURL: func(u string) error { return webhook.CheckURL(u, true) }})
	serve(t, store, httpapi.Options{Service: open}).
		do("POST", "/tasks", map[string]any{"code": "c", "prompt": "p", "callbackUrl": "http://127.0.0.1:9000/h"}).
		decode(t, http.StatusCreated, &cr)
}

// TestControlOpenAPI: the new routes, fields and header are documented.
func TestControlOpenAPI(t *testing.T) {
	c := serve(t, openStore(t, "sqlite"), httpapi.Options{})
	var doc struct {
		Webhooks   map[string]map[string]json.RawMessage `json:"webhooks"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Type any `json:"type"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	r := c.do("GET", "/openapi.json", nil)
	r.decode(t, http.StatusOK, &doc)
	if _, ok := doc.Paths["/tasks/{id}/retry"]["post"]; !ok {
		t.Error("no POST /tasks/{id}/retry")
	}
	for _, f := range []string{"priority", "metadata", "callbackUrl"} {
		if _, ok := doc.Components.Schemas["CreateTaskRequest"].Properties[f]; !ok {
			t.Errorf("CreateTaskRequest lacks %s", f)
		}
	}
	if typ := doc.Components.Schemas["CreateTaskRequest"].Properties["metadata"].Type; typ != "object" {
		t.Errorf("metadata type %v, want object", typ)
	}
	for _, f := range []string{"priority", "metadata", "owner", "callbackUrl", "retries", "webhook"} {
		if _, ok := doc.Components.Schemas["Task"].Properties[f]; !ok {
			t.Errorf("Task lacks %s", f)
		}
	}
	if post := string(doc.Webhooks["taskFinished"]["post"]); !strings.Contains(post, "webhook-signature") ||
		!strings.Contains(post, "#/components/schemas/Notification") {
		t.Errorf("webhooks.taskFinished.post = %s", post)
	}
	if _, ok := doc.Components.Schemas["NotificationTask"].Properties["errorMessage"]; !ok {
		t.Error("no NotificationTask schema")
	}
	if _, ok := doc.Components.Schemas["WebhookDelivery"]; !ok {
		t.Error("no WebhookDelivery schema")
	}
	if !strings.Contains(string(doc.Paths["/tasks"]["post"]), "Idempotency-Key") {
		t.Error("POST /tasks does not document Idempotency-Key")
	}
	var list struct{ Description string }
	_ = json.Unmarshal(doc.Paths["/tasks"]["get"], &list)
	if !strings.Contains(list.Description, "?metadata.<key>=<value>") {
		t.Error("GET /tasks does not document the metadata filter")
	}
}
