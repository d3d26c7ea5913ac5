package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// SenderOptions configures a Sender.
type SenderOptions struct {
	// Key is the signing key (see ParseSecret). Required.
	Key []byte
	// Timeout bounds one delivery attempt: connecting, sending, and
	// reading the answer's status and up to 64 KiB of its body. Defaults
	// to 10s.
	Timeout time.Duration
	// AllowPrivate turns the address policy off. Defaults to false.
	AllowPrivate bool
	// UserAgent is sent with every request. Defaults to
	// "agentorch-webhooks".
	UserAgent string
	// Now defaults to time.Now (the webhook-timestamp).
	Now func() time.Time
}

// Sender posts signed webhook messages. Its HTTP client uses no proxy
// (a proxy would connect on its behalf, out of the policy's reach), follows
// no redirects (a 3xx is an answer like any other non-2xx), and checks
// every address it dials against the address policy, after resolution,
// unless AllowPrivate. It is safe for concurrent use.
type Sender struct {
	key     []byte
	client  *http.Client
	agent   string
	now     func() time.Time
	timeout time.Duration
}

// NewSender returns a Sender, or an error for invalid options.
func NewSender(o SenderOptions) (*Sender, error) {
	if len(o.Key) == 0 {
		return nil, errors.New("new webhook sender: no signing key")
	}
	if o.Timeout < 0 {
		return nil, errors.New("new webhook sender: timeout must not be negative")
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.UserAgent == "" {
		o.UserAgent = "agentorch-webhooks"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	dialer := &net.Dialer{Timeout: o.Timeout}
	if !o.AllowPrivate {
		dialer.Control = controlDial
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return &Sender{key: o.Key, client: client, agent: o.UserAgent, now: o.Now, timeout: o.Timeout}, nil
}

// controlDial refuses a connection to an address the policy refuses; it
// runs for every address the dialer tries, after name resolution.
func controlDial(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refused("cannot check dialled address %q", address)
	}
	if err := CheckAddr(ap.Addr()); err != nil {
		return fmt.Errorf("connect to %s: %w", address, err)
	}
	return nil
}

// maxAnswerBytes bounds the answer body read (and then dropped).
const maxAnswerBytes = 64 << 10

// Send posts body (JSON) to url as message id, signed, and returns the
// HTTP status. A status outside 2xx is returned with an error saying so;
// a request that got no answer returns status 0 and the error. Errors of
// refused addresses wrap ErrRefused.
func (s *Sender) Send(ctx context.Context, url, id string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("webhook request: %w", err)
	}
	ts := s.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.agent)
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, fmt.Sprint(ts.Unix()))
	req.Header.Set(HeaderSignature, Sign(s.key, id, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("webhook target answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return resp.StatusCode, nil
}

// Close releases idle connections.
func (s *Sender) Close() { s.client.CloseIdleConnections() }
