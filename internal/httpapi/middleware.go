package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/agentorch/orchestrator/internal/task"
	"github.com/danielgtaylor/huma/v2"
)

// requestInfo is what the middleware learns about a request while it is
// served; it lives in the request's context.
type requestInfo struct {
	id    string
	route string // the ServeMux pattern that matched, "" when none
}

type requestInfoKey struct{}

// RequestID returns the id the API gave the request (the X-Request-ID
// header), or "" outside a request served by the API.
func RequestID(ctx context.Context) string {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return info.id
	}
	return ""
}

// RoutePattern returns the route pattern that served r (e.g. "GET /tasks/{id}"),
// or "" when no route matched. It is meant for middleware given in
// Options.Middleware (e.g. metrics), called after the next handler returns.
func RoutePattern(r *http.Request) string {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		return info.route
	}
	return r.Pattern
}

// responseRecorder remembers the status and size of a response. When
// rewrite is set, a router error written as text/plain (404, 405) is
// replaced by a problem+json body.
type responseRecorder struct {
	http.ResponseWriter
	status    int
	bytes     int64
	discard   bool // a problem replaced the handler's body
	rewriteTo bool // replace text/plain router errors with problems
}

func (rw *responseRecorder) WriteHeader(code int) {
	if rw.status != 0 {
		return
	}
	if rw.rewriteTo && code >= 400 && strings.HasPrefix(rw.Header().Get("Content-Type"), "text/plain") {
		rw.status = code
		rw.discard = true
		detail := "no route for " + http.StatusText(code)
		switch code {
		case http.StatusNotFound:
			detail = "no such route"
		case http.StatusMethodNotAllowed:
			detail = "method not allowed on this route; see the Allow header"
		}
		writeProblem(rw.ResponseWriter, code, detail)
		return
	}
	rw.status = code
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *responseRecorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.discard {
		return len(b), nil
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (huma sets
// read deadlines through it).
func (rw *responseRecorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// Flush sends buffered data to the client.
func (rw *responseRecorder) Flush() {
	if f, ok := rw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// requestIDs makes request ids: a random per-server prefix and a counter,
// cheaper than a UUID per request and unique across restarts in practice.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func (g *requestIDs) next() string {
	return g.prefix + strconv.FormatUint(g.n.Add(1), 36)
}

// validRequestID accepts a client-supplied X-Request-ID that is short and
// printable ASCII, so it can be logged as is.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// logRequests assigns the request id, recovers panics, and logs one line
// per request: method, path, route, status, bytes, duration, request id.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{id: r.Header.Get("X-Request-ID")}
		if !validRequestID(info.id) {
			info.id = s.ids.next()
		}
		w.Header().Set("X-Request-ID", info.id)
		rec := &responseRecorder{ResponseWriter: w, rewriteTo: true}
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))

		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(r.Context(), "panic serving request", "request_id", info.id,
					"method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
				if rec.status == 0 {
					writeProblem(rec, http.StatusInternalServerError, "internal error")
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			if !s.log.Enabled(r.Context(), level) {
				return
			}
			s.log.LogAttrs(r.Context(), level, "http request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("route", info.route),
				slog.Int("status", status),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", time.Since(start)),
				slog.String("request_id", info.id),
			)
		}()
		next.ServeHTTP(rec, r)
	})
}

// recordRoute runs the router and notes which pattern matched, for the
// middleware above it.
func recordRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
			info.route = r.Pattern
		}
	})
}

// Draining an oversized body. A client that sends its whole body before it
// reads the answer (Python's urllib, many SDKs) never sees a 413 written
// before the body was read: the server closes a connection with unread
// data, the kernel answers the rest of the upload with a reset, and the
// client's write fails. So the body of a refused request is read and
// discarded first, up to a bound in bytes and in time: drainMaxBytes (16
// MiB, twelve times MaxBodyBytes) covers the usual mistake, a file a few
// times too big, at no memory cost (it is discarded in 32 KiB reads) and
// about 1.3s of a 100 Mbit/s link; drainTimeout (10s) caps a slow sender.
// A larger body is abuse, not a mistake: it is answered at once and the
// client may see the reset. Either way the connection is closed after the
// 413. A client that asked "Expect: 100-continue" has not sent its body
// and gets the 413 at once, without a 100 Continue.
const (
	drainMaxBytes = 16 << 20
	drainTimeout  = 10 * time.Second
)

// limitBody enforces the body limit of every route: a declared
// Content-Length of max or more gets 413 (after draining the body, see
// drainMaxBytes); a body without a declared length that the handler reads
// up to max (huma answers 413 then) is drained after the handler. Both
// close the connection after the answer.
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength >= max {
			w.Header().Set("Connection", "close")
			if r.ContentLength <= drainMaxBytes && !expectsContinue(r) {
				drain(w, r.Body, r.ContentLength)
			}
			writeProblem(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body is too large: limit is %d bytes", max))
			return
		}
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body := &limitedBody{ReadCloser: r.Body, left: max, w: w}
		r.Body = body
		next.ServeHTTP(w, r)
		body.drain()
	})
}

// expectsContinue reports whether the client waits for a 100 Continue
// before it sends the body.
func expectsContinue(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Expect"), "100-continue")
}

// drain reads and discards at most n bytes of body within drainTimeout.
func drain(w http.ResponseWriter, body io.Reader, n int64) {
	// Not every ResponseWriter reaches a connection (httptest recorders);
	// the copy is bounded by n all the same.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(drainTimeout))
	_, _ = io.CopyN(io.Discard, body, n)
}

// limitedBody notes when a body without a declared length has been read up
// to the limit (huma reads at most the limit and answers 413 when it got
// that much): it then asks for the connection to be closed after the
// answer, and drains the rest when it is closed (huma closes it before
// answering) or, failing that, when the handler returns.
type limitedBody struct {
	io.ReadCloser
	left    int64
	w       http.ResponseWriter
	reached bool // the limit was read
	eof     bool // the whole body was read
	drained bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left <= 0 && !b.reached {
		b.reached = true
		b.w.Header().Set("Connection", "close")
	}
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// Close drains the rest of a body read up to the limit, then closes it.
func (b *limitedBody) Close() error {
	b.drain()
	return b.ReadCloser.Close()
}

// drain discards the rest of a body read up to the limit, once.
func (b *limitedBody) drain() {
	if b.reached && !b.eof && !b.drained {
		b.drained = true
		drain(b.w, b.ReadCloser, drainMaxBytes)
	}
}

// checkQuery refuses, with a 400 problem located at "query", a request
// whose query string does not parse (a bad %-escape such as "%zz", a ';'
// separator): huma would read such parameters as absent and serve the
// default (e.g. the whole list for ?cursor=%%%garbage).
func checkQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
				msg := "malformed query string: " + err.Error()
				writeProblem(w, http.StatusBadRequest, msg,
					&huma.ErrorDetail{Location: "query", Message: msg, Value: echoed(r.URL.RawQuery)})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// apiKeys checks bearer keys in constant time. The keys are hashed so the
// comparison does not depend on their lengths either.
type apiKeys struct {
	sums [][sha256.Size]byte
	keys []APIKey
}

func newAPIKeys(keys []APIKey) *apiKeys {
	k := &apiKeys{keys: keys}
	for _, key := range keys {
		k.sums = append(k.sums, sha256.Sum256([]byte(key.Key)))
	}
	return k
}

// errNoKey and errBadKey say why a request was refused.
var (
	errNoKey  = errors.New("missing bearer token: send Authorization: Bearer <key>")
	errBadKey = errors.New("invalid API key")
)

// check returns the key the Authorization header carries, or an error
// when it carries none of the keys. Every key is compared, so the time
// taken does not tell which matched.
func (k *apiKeys) check(header string) (APIKey, error) {
	const prefix = "bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return APIKey{}, errNoKey
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(header[len(prefix):])))
	found := -1
	for i := range k.sums {
		if subtle.ConstantTimeCompare(sum[:], k.sums[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return APIKey{}, errBadKey
	}
	return k.keys[found], nil
}

// requireKey refuses, with 401, requests without a valid key, except on
// public paths; the key's name and role go into the request's context as
// the task.Caller, which the task service checks ownership against.
func (s *Server) requireKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.public(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		key, err := s.keys.check(r.Header.Get("Authorization"))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="orchestrator"`)
			writeProblem(w, http.StatusUnauthorized, err.Error())
			return
		}
		ctx := task.WithCaller(r.Context(), task.Caller{Name: key.Name, Admin: key.Admin})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
