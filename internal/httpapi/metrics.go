package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricsMiddleware registers the HTTP metrics on reg and returns the
// middleware that records them, for Options.Middleware:
// orchestrator_http_requests_total{method,route,status} and
// orchestrator_http_request_duration_seconds{method,route}. The route is
// the matched pattern (e.g. "/tasks/{id}"), "unmatched" when no route
// matched, so label values stay few. It fails when the metrics are
// already registered on reg.
func MetricsMiddleware(reg prometheus.Registerer) (func(http.Handler) http.Handler, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orchestrator_http_requests_total",
		Help: "HTTP requests served, by method, route and status code.",
	}, []string{"method", "route", "status"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "orchestrator_http_request_duration_seconds",
		Help:    "Time to serve an HTTP request, by method and route.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method", "route"})
	for _, c := range []prometheus.Collector{requests, duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register http metrics: %w", err)
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			route := RoutePattern(r)
			if route == "" {
				route = "unmatched"
			} else if _, path, ok := cutMethod(route); ok {
				route = path
			}
			method := r.Method
			if route == "unmatched" {
				method = "other" // unbounded method names stay out of the labels
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
			duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		})
	}, nil
}

// cutMethod splits "GET /path" into its method and path.
func cutMethod(pattern string) (method, path string, ok bool) {
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == ' ' {
			return pattern[:i], pattern[i+1:], true
		}
	}
	return "", pattern, false
}

// statusWriter remembers the status code of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
