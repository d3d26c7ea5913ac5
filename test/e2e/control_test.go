package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// hookTask is a task as the API returns it, with its webhook delivery.
type hookTask struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Webhook *struct {
		State      string  `json:"state"`
		Attempts   int     `json:"attempts"`
		LastStatus *int    `json:"lastStatus"`
		LastError  *string `json:"lastError"`
	} `json:"webhook"`
}

// hookTarget is a webhook receiver in the test process: it answers with
// the status set by setStatus, and verifies every request's signature with
// the Standard Webhooks reference library.
type hookTarget struct {
	url      string
	verifier *standardwebhooks.Webhook

	mu       sync.Mutex
	status   int
	received []hookHit
}

type hookHit struct {
	id        string
	status    int
	verifyErr error
	body      []byte
}

func newHookTarget(t *testing.T, secret string, status int) *hookTarget {
	t.Helper()
	v, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	h := &hookTarget{verifier: v, status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		hit := hookHit{id: r.Header.Get("webhook-id"), status: h.status, verifyErr: v.Verify(body, r.Header), body: body}
		h.received = append(h.received, hit)
		h.mu.Unlock()
		w.WriteHeader(hit.status)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hook"
	return h
}

func (h *hookTarget) setStatus(s int) {
	h.mu.Lock()
	h.status = s
	h.mu.Unlock()
}

func (h *hookTarget) hits() []hookHit {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookHit(nil), h.received...)
}

// checkDeliveredOnce: every request carried one webhook-id and a valid
// signature, and exactly one was answered 2xx.
func (h *hookTarget) checkDeliveredOnce(t *testing.T) {
	t.Helper()
	hits := h.hits()
	ok := 0
	for i, hit := range hits {
		if hit.verifyErr != nil || hit.id != hits[0].id || !bytes.Equal(hit.body, hits[0].body) {
			t.Errorf("request %d: webhook-id %q (first %q), signature %v", i, hit.id, hits[0].id, hit.verifyErr)
		}
		if hit.status/100 == 2 {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d requests answered 2xx, want exactly 1 (of %d)", ok, len(hits))
	}
}

func webhookSecret(t *testing.T) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

func (o *orchestrator) getHook(id string) (hookTask, error) {
	var tk hookTask
	code, err := o.do("GET", "/tasks/"+id, nil, &tk)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /tasks/%s: status %d", id, code)
	}
	return tk, err
}

// waitHook polls the task until ok accepts it.
func (o *orchestrator) waitHook(id, what string, timeout time.Duration, ok func(hookTask) bool) hookTask {
	o.t.Helper()
	deadline := time.Now().Add(timeout)
	var (
		tk  hookTask
		err error
	)
	for time.Now().Before(deadline) {
		if tk, err = o.getHook(id); err == nil && ok(tk) {
			return tk
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := json.Marshal(tk)
	o.t.Fatalf("task %s never %s; last %s (err %v)", id, what, b, err)
	return tk
}

// cancelWithCallback creates a task with the callback URL and cancels it
// (a final status without a worker).
func (o *orchestrator) cancelWithCallback(url string) string {
	o.t.Helper()
	var tk hookTask
	code, err := o.do("POST", "/tasks", map[string]any{"code": "c", "prompt": "p", "callbackUrl": url}, &tk)
	if err != nil || code != http.StatusCreated {
		o.t.Fatalf("POST /tasks: %d %v", code, err)
	}
	if code, err := o.do("POST", "/tasks/"+tk.ID+"/cancel", nil, nil); err != nil || code != http.StatusOK {
		o.t.Fatalf("cancel: %d %v", code, err)
	}
	return tk.ID
}

// TestWebhookPendingInRedisSurvivesKill: the receiver fails, so the
// delivery waits in the webhooks queue for its next attempt; the
// orchestrator is SIGKILLed; the receiver recovers; after a restart the
// notification is delivered, exactly once, every attempt signed with one
// webhook-id.
func TestWebhookPendingInRedisSurvivesKill(t *testing.T) {
	secret := webhookSecret(t)
	target := newHookTarget(t, secret, http.StatusServiceUnavailable)
	queue := testenv.TaskQueue(t, "e2e")
	o := startOrchestrator(t, map[string]string{"REDIS_URL": testenv.RedisURL(t), "QUEUE_NAME": queue,
		"DATABASE_URL": testenv.PostgresURL(t), "WEBHOOK_SECRET": secret, "WEBHOOK_ALLOW_PRIVATE": "true",
		"WEBHOOK_BACKOFF": "500ms", "WEBHOOK_ATTEMPTS": "20", "WEBHOOK_TIMEOUT": "2s"})
	id := o.cancelWithCallback(target.url)
	o.waitHook(id, "had a failed delivery attempt", 30*time.Second, func(tk hookTask) bool {
		return tk.Webhook != nil && tk.Webhook.State == "queued" && tk.Webhook.Attempts >= 1 &&
			tk.Webhook.LastStatus != nil && *tk.Webhook.LastStatus == 503
	})
	o.kill()
	target.setStatus(http.StatusNoContent)
	o.start()
	tk := o.waitHook(id, "delivered", 90*time.Second, func(tk hookTask) bool {
		return tk.Webhook != nil && tk.Webhook.State == "delivered"
	})
	if tk.Webhook.LastStatus == nil || *tk.Webhook.LastStatus != 204 || tk.Webhook.LastError != nil {
		t.Errorf("delivered state = %+v", *tk.Webhook)
	}
	target.checkDeliveredOnce(t)
	var msg struct {
		Type string `json:"type"`
		Data struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"data"`
	}
	if err := json.Unmarshal(target.hits()[0].body, &msg); err != nil || msg.Type != "task.cancelled" || msg.Data.ID != id {
		t.Errorf("notification %s (%v)", target.hits()[0].body, err)
	}
}

// TestWebhookDueInDatabaseSurvivesKill: with Redis down, a task reaches
// its final status and its delivery stays due in the database (the
// outbox); the orchestrator is SIGKILLed; Redis comes back; after a
// restart the notification is delivered, exactly once.
func TestWebhookDueInDatabaseSurvivesKill(t *testing.T) {
	secret := webhookSecret(t)
	target := newHookTarget(t, secret, http.StatusOK)
	rs := testenv.StartRedis(t)
	o := startOrchestrator(t, map[string]string{"REDIS_URL": rs.URL(), "QUEUE_NAME": "e2e-hooks",
		"DATABASE_URL": "sqlite://" + testenv.SQLitePath(t), "WEBHOOK_SECRET": secret, "WEBHOOK_ALLOW_PRIVATE": "true"})
	rs.Stop()
	id := o.cancelWithCallback(target.url)
	tk := o.waitHook(id, "due", 10*time.Second, func(tk hookTask) bool { return tk.Webhook != nil && tk.Webhook.State == "due" })
	if tk.Status != "cancelled" {
		t.Fatalf("task = %+v", tk)
	}
	o.kill()
	if n := len(target.hits()); n != 0 {
		t.Fatalf("receiver got %d requests while Redis was down", n)
	}
	rs.Start()
	o.start()
	o.waitHook(id, "delivered", 60*time.Second, func(tk hookTask) bool { return tk.Webhook != nil && tk.Webhook.State == "delivered" })
	target.checkDeliveredOnce(t)
	if hits := target.hits(); len(hits) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(hits))
	}
}

// TestIdempotencyAcrossReplicas: concurrent creates with one
// Idempotency-Key, spread over two orchestrators on one database, create
// one task; every answer names it.
func TestIdempotencyAcrossReplicas(t *testing.T) {
	queue := testenv.TaskQueue(t, "e2e")
	env := map[string]string{"REDIS_URL": testenv.RedisURL(t), "QUEUE_NAME": queue, "DATABASE_URL": testenv.PostgresURL(t),
		"API_KEYS": "alice:ka,bob:kb"}
	a := startOrchestrator(t, env)
	b := startOrchestrator(t, env)
	const n = 24
	type answer struct {
		code int
		id   string
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	body := []byte(`{"code":"print(1)","prompt":"once","metadata":{"ticket":"AAI-003"}}`)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := a
			if i%2 == 1 {
				o = b
			}
			req, _ := http.NewRequest("POST", o.url+"/tasks", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer ka")
			req.Header.Set("Idempotency-Key", "deploy-42")
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Errorf("POST %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			var tk hookTask
			_ = json.NewDecoder(resp.Body).Decode(&tk)
			answers[i] = answer{resp.StatusCode, tk.ID}
		}()
	}
	wg.Wait()
	created := 0
	for i, ans := range answers {
		switch {
		case ans.id == "" || ans.id != answers[0].id:
			t.Fatalf("answer %d: %+v, first %+v", i, ans, answers[0])
		case ans.code == http.StatusCreated:
			created++
		case ans.code != http.StatusOK:
			t.Fatalf("answer %d: status %d", i, ans.code)
		}
	}
	if created != 1 {
		t.Fatalf("%d answers were 201, want 1", created)
	}
	// Bob does not see alice's task; alice lists exactly one.
	req, _ := http.NewRequest("GET", b.url+"/tasks/"+answers[0].id, nil)
	req.Header.Set("Authorization", "Bearer kb")
	if resp, err := httpClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bob GET alice's task: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	req, _ = http.NewRequest("GET", a.url+"/tasks?metadata.ticket=AAI-003", nil)
	req.Header.Set("Authorization", "Bearer ka")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pg struct {
		Items []hookTask `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&pg); err != nil || len(pg.Items) != 1 {
		t.Fatalf("alice's list: %d items, %v", len(pg.Items), err)
	}
}
