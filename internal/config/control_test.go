package config

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func TestControlDefaults(t *testing.T) {
	c, err := LoadOrchestrator(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.IdempotencyTTL != 24*time.Hour || c.WebhookURL != "" || c.WebhookSecret != "" || c.Webhooks() ||
		c.WebhookAllowPrivate || c.WebhookTimeout != 10*time.Second || c.WebhookAttempts != 10 ||
		c.WebhookBackoff != 2*time.Second || c.WebhookConcurrency != 8 || len(c.Keys) != 0 {
		t.Errorf("control defaults = %+v", c.Control)
	}
}

func TestAPIKeyEntries(t *testing.T) {
	c, err := LoadOrchestrator(map[string]string{"API_KEYS": "plain, alice:ka ,ops:ko:admin,team.b-2:kb"})
	if err != nil {
		t.Fatal(err)
	}
	want := []APIKey{{Key: "plain", Admin: true}, {Name: "alice", Key: "ka"}, {Name: "ops", Key: "ko", Admin: true},
		{Name: "team.b-2", Key: "kb"}}
	if len(c.Keys) != len(want) {
		t.Fatalf("Keys = %+v", c.Keys)
	}
	for i := range want {
		if c.Keys[i] != want[i] {
			t.Errorf("key %d = %+v, want %+v", i, c.Keys[i], want[i])
		}
	}
	for _, bad := range []string{"a:s3cr3t:c", "a:s3cr3t:admin:x", ":s3cr3t", "alice:", "bad name:s3cr3t", "a:s3cr3t,b:s3cr3t", "x:s3cr3t:Admin"} {
		_, err := LoadOrchestrator(map[string]string{"API_KEYS": bad})
		if err == nil || !strings.Contains(err.Error(), "API_KEYS:") {
			t.Errorf("API_KEYS=%q: err = %v, want one naming API_KEYS", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("API_KEYS=%q: the error %q echoes a key", bad, err)
		}
	}
}

func TestWebhookSettings(t *testing.T) {
	c, err := LoadOrchestrator(map[string]string{"WEBHOOK_URL": "https://hooks.example.com/tasks", "WEBHOOK_SECRET": testSecret,
		"WEBHOOK_TIMEOUT": "3s", "WEBHOOK_ATTEMPTS": "4", "WEBHOOK_BACKOFF": "500ms", "WEBHOOK_CONCURRENCY": "2", "IDEMPOTENCY_TTL": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Webhooks() || len(c.WebhookKey) != 32 || c.WebhookTimeout != 3*time.Second || c.WebhookAttempts != 4 ||
		c.WebhookBackoff != 500*time.Millisecond || c.WebhookConcurrency != 2 || c.IdempotencyTTL != time.Hour {
		t.Errorf("webhook settings = %+v", c.Control)
	}
	if _, err := LoadOrchestrator(map[string]string{"WEBHOOK_URL": "http://127.0.0.1:9000/h", "WEBHOOK_SECRET": testSecret,
		"WEBHOOK_ALLOW_PRIVATE": "true"}); err != nil {
		t.Errorf("a loopback WEBHOOK_URL with WEBHOOK_ALLOW_PRIVATE: %v", err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"WEBHOOK_URL": "https://example.com/h"}, "WEBHOOK_URL"}, // no secret
		{map[string]string{"WEBHOOK_URL": "http://127.0.0.1/h", "WEBHOOK_SECRET": testSecret}, "WEBHOOK_URL"},
		{map[string]string{"WEBHOOK_URL": "http://169.254.169.254/", "WEBHOOK_SECRET": testSecret}, "WEBHOOK_URL"},
		{map[string]string{"WEBHOOK_URL": "ftp://example.com/", "WEBHOOK_SECRET": testSecret}, "WEBHOOK_URL"},
		{map[string]string{"WEBHOOK_SECRET": "plain-secret"}, "WEBHOOK_SECRET"},
		{map[string]string{"WEBHOOK_SECRET": "whsec_c2hvcnQ="}, "WEBHOOK_SECRET"},
		{map[string]string{"WEBHOOK_ALLOW_PRIVATE": "maybe"}, "WEBHOOK_ALLOW_PRIVATE"},
		{map[string]string{"WEBHOOK_TIMEOUT": "0s"}, "WEBHOOK_TIMEOUT"},
		{map[string]string{"WEBHOOK_ATTEMPTS": "0"}, "WEBHOOK_ATTEMPTS"},
		{map[string]string{"WEBHOOK_BACKOFF": "-1s"}, "WEBHOOK_BACKOFF"},
		{map[string]string{"WEBHOOK_CONCURRENCY": "0"}, "WEBHOOK_CONCURRENCY"},
		{map[string]string{"IDEMPOTENCY_TTL": "0"}, "IDEMPOTENCY_TTL"},
	} {
		_, err := LoadOrchestrator(tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want+":") {
			t.Errorf("%v: err = %v, want one naming %s", tc.env, err, tc.want)
		}
	}
}
