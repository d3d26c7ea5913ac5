package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/agentorch/orchestrator/internal/httpapi"
	"github.com/agentorch/orchestrator/internal/task"
)

// BenchmarkCreateTask measures POST /tasks end to end over a loopback
// listener, with parallel clients, on each store; "http-only" uses a store
// whose Create does nothing, to show the cost of the HTTP layer alone
// (client included). The request log is formatted as in production and
// discarded. For the figures of a real server under 50 clients see
// cmd/taskload.
func BenchmarkCreateTask(b *testing.B) {
	for _, kind := range append([]string{"http-only"}, storeKinds...) {
		b.Run(kind, func(b *testing.B) {
			opts := httpapi.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}
			var store task.Store
			if kind == "http-only" {
				store = nopStore{}
				opts.Database = httpapi.PingerFunc(func(context.Context) error { return nil })
			} else {
				store = openStore(b, kind)
			}
			c := serve(b, store, opts)
			tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr}
			body := `{"code":"` + strings.Repeat("x", 256) + `","prompt":"Explain this code."}`
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := cl.Post(c.base+"/tasks", "application/json", strings.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// nopStore is a task.Store whose Create succeeds without storing; its
// other methods are not used by the benchmark.
type nopStore struct{ task.Store }

func (nopStore) Create(context.Context, *task.Task) error { return nil }
