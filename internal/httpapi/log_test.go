package httpapi_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/httpapi"
	"github.com/agentorch/orchestrator/internal/testenv"
)

func TestRequestLog(t *testing.T) {
	var buf testenv.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	c := serve(t, openStore(t, "sqlite"), httpapi.Options{Logger: logger})
	id := uuid.NewString()
	r := c.do("GET", "/tasks/"+id, nil)
	r.problem(t, 404, "")
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(l, `"msg":"http request"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line == nil {
		t.Fatalf("no request log line in %s", buf.String())
	}
	if line["method"] != "GET" || line["path"] != "/tasks/"+id || line["route"] != "GET /tasks/{id}" ||
		line["status"] != float64(404) || line["request_id"] != r.header.Get("X-Request-ID") || line["duration"] == nil {
		t.Errorf("log line %v", line)
	}
}
