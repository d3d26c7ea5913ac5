package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentorch/orchestrator/internal/httpapi"
)

func TestMetricsMiddleware(t *testing.T) {
	reg := prometheus.NewRegistry()
	mw, err := httpapi.MetricsMiddleware(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := httpapi.MetricsMiddleware(reg); err == nil {
		t.Error("second registration on the same registry = nil error")
	}
	c := serve(t, openStore(t, "sqlite"), httpapi.Options{Middleware: []func(http.Handler) http.Handler{mw}})
	c.do("POST", "/tasks", `{"code":"c","prompt":"p"}`)
	c.do("GET", "/tasks/"+uuid.NewString(), nil)
	c.do("GET", "/tasks/"+uuid.NewString(), nil)
	c.do("GET", "/no/such/route", nil)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	histograms := 0
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			switch f.GetName() {
			case "orchestrator_http_requests_total":
				got[strings.Join(labels, ",")] = m.GetCounter().GetValue()
			case "orchestrator_http_request_duration_seconds":
				histograms++
			}
		}
	}
	want := map[string]float64{
		"method=GET,route=/tasks/{id},status=404": 2,
		"method=POST,route=/tasks,status=201":     1,
		"method=other,route=unmatched,status=404": 1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	if histograms != 3 {
		t.Errorf("%d duration series, want 3", histograms)
	}
}
