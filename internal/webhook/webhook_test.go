package webhook_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/agentorch/orchestrator/internal/webhook"
)

func newSecret(t *testing.T) (string, []byte) {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return webhook.SecretPrefix + base64.StdEncoding.EncodeToString(key), key
}

func TestParseSecret(t *testing.T) {
	secret, key := newSecret(t)
	got, err := webhook.ParseSecret(secret)
	if err != nil || string(got) != string(key) {
		t.Fatalf("ParseSecret = %x, %v", got, err)
	}
	for _, bad := range []string{"", "secret", "whsec_", "whsec_not base64!",
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 23)),
		"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65))} {
		if _, err := webhook.ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted", bad)
		}
	}
}

// TestSignMatchesStandardWebhooks verifies our signatures with the
// reference Go library of the Standard Webhooks project (an independent
// implementation of the spec).
func TestSignMatchesStandardWebhooks(t *testing.T) {
	secret, key := newSecret(t)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now()
	for _, body := range []string{`{"type":"task.completed"}`, ``, "{\"x\":\"é\\n\"}"} {
		h := http.Header{}
		h.Set(webhook.HeaderID, "msg_1")
		h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
		h.Set(webhook.HeaderSignature, webhook.Sign(key, "msg_1", ts, []byte(body)))
		if err := wh.Verify([]byte(body), h); err != nil {
			t.Errorf("body %q: reference verification failed: %v", body, err)
		}
		if err := wh.Verify([]byte(body+" "), h); err == nil {
			t.Errorf("body %q: a changed body verifies", body)
		}
		ref, _ := wh.Sign("msg_1", ts, []byte(body))
		if got := webhook.Sign(key, "msg_1", ts, []byte(body)); got != ref {
			t.Errorf("Sign = %q, reference %q", got, ref)
		}
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		ip string
		ok bool
	}{
		{"93.184.216.34", true}, {"2606:2800:220:1:248:1893:25c8:1946", true}, {"8.8.8.8", true},
		{"127.0.0.1", false}, {"127.1.2.3", false}, {"::1", false},
		{"10.0.0.1", false}, {"172.16.5.4", false}, {"192.168.1.1", false},
		{"169.254.169.254", false}, {"fe80::1", false}, {"fd00:ec2::254", false}, {"fc00::1", false},
		{"100.64.0.1", false}, {"100.127.255.254", false}, {"0.0.0.0", false}, {"::", false},
		{"224.0.0.1", false}, {"255.255.255.255", false}, {"::ffff:127.0.0.1", false}, {"::ffff:10.1.1.1", false},
		{"64:ff9b::7f00:1", false}, {"64:ff9b::808:808", true}, {"198.18.0.1", false},
	} {
		err := webhook.CheckAddr(netip.MustParseAddr(tc.ip))
		if (err == nil) != tc.ok {
			t.Errorf("CheckAddr(%s) = %v, want ok %v", tc.ip, err, tc.ok)
		}
		if err != nil && !errors.Is(err, webhook.ErrRefused) {
			t.Errorf("CheckAddr(%s) error %v does not wrap ErrRefused", tc.ip, err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		ok      bool
		private bool // ok with allowPrivate
	}{
		{"https://hooks.example.com/x?y=1", true, true},
		{"http://does-not-resolve.invalid/hook", true, true}, // checked when delivering
		{"http://93.184.216.34:8080/", true, true},
		{"https://[2606:2800:220:1:248:1893:25c8:1946]/", true, true},
		{"http://localhost:8080/", false, true},
		{"http://LOCALHOST./", false, true},
		{"http://api.localhost/", false, true},
		{"http://127.0.0.1:9000/", false, true},
		{"http://[::1]/", false, true},
		{"http://169.254.169.254/latest/meta-data/", false, true},
		{"http://[fd00:ec2::254]/", false, true},
		{"http://10.1.2.3/", false, true},
		{"http://100.64.1.1/", false, true},
		{"http://[::ffff:127.0.0.1]/", false, true},
		{"http://2130706433/", false, true},
		{"http://0x7f.1/", false, true},
		{"ftp://example.com/", false, false},
		{"file:///etc/passwd", false, false},
		{"http:///nohost", false, false},
	} {
		err := webhook.CheckURL(tc.url, false)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q) = %v, want ok %v", tc.url, err, tc.ok)
		}
		if err := webhook.CheckURL(tc.url, true); (err == nil) != tc.private {
			t.Errorf("CheckURL(%q, allowPrivate) = %v, want ok %v", tc.url, err, tc.private)
		}
	}
}

// receiver is a loopback webhook target recording what it gets.
type receiver struct {
	mu     sync.Mutex
	bodies []string
	hdrs   []http.Header
	status int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.bodies = append(r.bodies, string(b))
	r.hdrs = append(r.hdrs, req.Header.Clone())
	status := r.status
	r.mu.Unlock()
	w.WriteHeader(status)
}

func TestSenderSignsAndReportsStatus(t *testing.T) {
	secret, key := newSecret(t)
	rcv := &receiver{status: http.StatusNoContent}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	s, err := webhook.NewSender(webhook.SenderOptions{Key: key, Timeout: 5 * time.Second, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	body := []byte(`{"type":"task.completed","data":{"id":"x"}}`)
	status, err := s.Send(context.Background(), srv.URL+"/hook", "msg_abc", body)
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("Send = %d, %v", status, err)
	}
	wh, _ := standardwebhooks.NewWebhook(secret)
	rcv.mu.Lock()
	h, got := rcv.hdrs[0], rcv.bodies[0]
	rcv.mu.Unlock()
	if got != string(body) || h.Get("Content-Type") != "application/json" || h.Get(webhook.HeaderID) != "msg_abc" {
		t.Fatalf("received %q with headers %v", got, h)
	}
	if err := wh.Verify([]byte(got), h); err != nil {
		t.Fatalf("reference verification of a sent message: %v", err)
	}

	rcv.mu.Lock()
	rcv.status = http.StatusServiceUnavailable
	rcv.mu.Unlock()
	if status, err := s.Send(context.Background(), srv.URL, "msg_2", body); err == nil || status != 503 {
		t.Fatalf("Send to a 503 = %d, %v; want 503 and an error", status, err)
	}
	rcv.mu.Lock()
	rcv.status = http.StatusFound
	rcv.mu.Unlock()
	if status, err := s.Send(context.Background(), srv.URL, "msg_3", body); err == nil || status != 302 {
		t.Fatalf("Send to a redirect = %d, %v; want 302 (not followed) and an error", status, err)
	}
}

// TestSenderRefusesLoopbackAtConnect: without AllowPrivate, the address
// actually dialled is checked, whether the URL holds it literally or a
// name resolves to it (localhost here; a rebinding DNS name alike), even
// when the URL never went through CheckURL.
func TestSenderRefusesLoopbackAtConnect(t *testing.T) {
	_, key := newSecret(t)
	rcv := &receiver{status: http.StatusOK}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	s, err := webhook.NewSender(webhook.SenderOptions{Key: key, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':'):]
	for _, u := range []string{srv.URL, "http://localhost" + port + "/hook"} {
		status, err := s.Send(context.Background(), u, "msg", []byte(`{}`))
		if !errors.Is(err, webhook.ErrRefused) || status != 0 {
			t.Errorf("Send(%s) = %d, %v; want refused", u, status, err)
		}
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bodies) != 0 {
		t.Fatalf("the loopback receiver got %d requests", len(rcv.bodies))
	}
}

func TestSenderTimeout(t *testing.T) {
	_, key := newSecret(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	s, _ := webhook.NewSender(webhook.SenderOptions{Key: key, Timeout: 200 * time.Millisecond, AllowPrivate: true})
	defer s.Close()
	if status, err := s.Send(context.Background(), srv.URL, "msg", []byte(`{}`)); err == nil || status != 0 {
		t.Fatalf("Send to a hanging target = %d, %v; want a timeout", status, err)
	}
}
