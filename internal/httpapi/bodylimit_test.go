package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/httpapi"
	"github.com/agentorch/orchestrator/internal/task"
)

// upload is how rawPost sends its body.
type upload int

const (
	sendWhole    upload = iota // Content-Length, then the whole body
	sendChunked                // Transfer-Encoding: chunked, the whole body
	waitContinue               // Content-Length and Expect: 100-continue; no body
)

// rawPost sends POST /tasks with a JSON body of size bytes on a fresh
// connection and only then reads the answer, as Python's urllib and many
// SDKs do: they write the whole body before they read. The socket's send
// buffer is far smaller than the body, as on a real network, so the
// writes complete only if the server reads the body.
func rawPost(t *testing.T, base string, size int, how upload) (*http.Response, *bufio.Reader, error) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.(*net.TCPConn).SetWriteBuffer(32 << 10); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second)) // a hang fails, late
	head := "POST /tasks HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
	switch how {
	case sendWhole:
		head += fmt.Sprintf("Content-Length: %d\r\n", size)
	case sendChunked:
		head += "Transfer-Encoding: chunked\r\n"
	case waitContinue:
		head += fmt.Sprintf("Content-Length: %d\r\nExpect: 100-continue\r\n", size)
	}
	if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
		return nil, nil, fmt.Errorf("write head: %w", err)
	}
	body := `{"code":"` + strings.Repeat("a", size-len(`{"code":"","prompt":"p"}`)) + `","prompt":"p"}`
	switch how {
	case sendWhole:
		if _, err := io.WriteString(conn, body); err != nil {
			return nil, nil, fmt.Errorf("write body: %w", err)
		}
	case sendChunked:
		for len(body) > 0 {
			n := min(len(body), 64<<10)
			if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", n, body[:n]); err != nil {
				return nil, nil, fmt.Errorf("write chunk: %w", err)
			}
			body = body[n:]
		}
		if _, err := io.WriteString(conn, "0\r\n\r\n"); err != nil {
			return nil, nil, fmt.Errorf("write last chunk: %w", err)
		}
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	return resp, br, err
}

// serveSmallBuffers serves the API over store on a loopback listener
// whose connections have a small receive buffer, as on a real network
// (on loopback the kernel would otherwise buffer megabytes that the
// server never read), and returns its base URL.
func serveSmallBuffers(t *testing.T, store task.Store) string {
	t.Helper()
	api, err := httpapi.New(httpapi.Options{Service: task.NewService(store, task.ServiceOptions{Logger: discardLogger()}),
		Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api)
	srv.Listener = smallBufferListener{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// smallBufferListener gives each accepted connection a 64 KiB receive buffer.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10)
	}
	return c, err
}

// TestBodyTooLargeReachesClient: a 2 MiB body gets its 413 problem
// whether the client sends it whole first (with a length or chunked) or
// waits for 100 Continue, and the connection is closed after it.
func TestBodyTooLargeReachesClient(t *testing.T) {
	store := openStore(t, "sqlite")
	base := serveSmallBuffers(t, store)
	for name, how := range map[string]upload{"whole body first": sendWhole, "chunked body first": sendChunked,
		"expect 100-continue": waitContinue} {
		t.Run(name, func(t *testing.T) {
			resp, br, err := rawPost(t, base, 2<<20, how)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("read answer: %v", err)
			}
			// A 100 Continue would ask a waiting client for the body.
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 413; body %s", resp.StatusCode, short(data))
			}
			var p problem
			if err := json.Unmarshal(data, &p); err != nil || p.Status != 413 || !strings.Contains(p.Detail, "too large") ||
				resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("answer %s %s, want a 413 problem", resp.Header.Get("Content-Type"), data)
			}
			if !resp.Close {
				t.Error("the connection is kept open after a 413")
			}
			if n, err := br.Read(make([]byte, 1)); err == nil {
				t.Errorf("read %d more bytes after the 413; want the connection closed", n)
			}
		})
	}
	// None was stored, and the server serves the next request.
	var st httpapi.TaskStats
	(&client{tb: t, base: base, http: http.DefaultClient}).do("GET", "/tasks/stats", nil).decode(t, http.StatusOK, &st)
	if st.Database.Total != 0 {
		t.Errorf("%d tasks stored", st.Database.Total)
	}
}
