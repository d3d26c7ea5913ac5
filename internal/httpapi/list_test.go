package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/httpapi"
	"github.com/agentorch/orchestrator/internal/task"
)

// TestListSummaries: GET /tasks lists summaries (no code, no result,
// prompt and errorMessage cut) unless view=full; GET /tasks/{id} stays
// whole.
func TestListSummaries(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, kind)
			svc := task.NewService(store, task.ServiceOptions{Logger: discardLogger()})
			c := serve(t, store, httpapi.Options{Service: svc})

			// A long prompt whose 256th byte falls inside a 3-byte character.
			prompt := strings.Repeat("a", 255) + strings.Repeat("€", 100)
			code := strings.Repeat("x", task.MaxCodeBytes)
			var cr created
			c.do("POST", "/tasks", map[string]any{"code": code, "prompt": prompt}).decode(t, http.StatusCreated, &cr)
			errMsg := "boom: " + strings.Repeat("é", 1000)
			result := json.RawMessage(`{"answer":"` + strings.Repeat("r", 1<<20) + `"}`)
			if _, err := svc.Apply(context.Background(), task.MarkFailed(uuid.MustParse(cr.ID),
				task.Outcome{ErrorMessage: errMsg, Result: result, WorkerID: "w1", Attempts: 1}, time.Now())); err != nil {
				t.Fatalf("mark failed: %v", err)
			}
			var short created
			c.do("POST", "/tasks", map[string]any{"code": "c", "prompt": "short"}).decode(t, http.StatusCreated, &short)

			// Default: summaries with exactly the summary fields.
			r := c.do("GET", "/tasks", nil)
			var raw struct{ Items []map[string]any }
			r.decode(t, http.StatusOK, &raw)
			if len(raw.Items) != 2 {
				t.Fatalf("%d items, want 2", len(raw.Items))
			}
			var keys []string
			for k := range raw.Items[0] {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if got, want := strings.Join(keys, ","), "attempts,completedAt,createdAt,errorMessage,executionTime,id,metadata,owner,priority,prompt,retries,startedAt,status,timeout,updatedAt,webhook,workerId"; got != want {
				t.Errorf("summary fields %s, want %s", got, want)
			}
			if len(r.body) > 4096 {
				t.Errorf("summary page is %d bytes", len(r.body))
			}
			var p struct{ Items []httpapi.TaskSummary }
			r.decode(t, http.StatusOK, &p)
			failed, other := p.Items[1], p.Items[0] // newest first
			if failed.ID.String() != cr.ID || other.ID.String() != short.ID {
				t.Fatalf("items %v, %v", failed.ID, other.ID)
			}
			if other.Prompt != "short" || other.ErrorMessage != nil {
				t.Errorf("short task summary %+v", other)
			}
			for name, got := range map[string]string{"prompt": failed.Prompt, "errorMessage": *failed.ErrorMessage} {
				body, ok := strings.CutSuffix(got, "…")
				if !ok || len(body) > httpapi.SummaryTextBytes || len(body) < httpapi.SummaryTextBytes-3 || !utf8.ValidString(got) {
					t.Errorf("%s in the summary: %d bytes %q, want cut to ≤ %d bytes at a character boundary and marked …",
						name, len(got), got, httpapi.SummaryTextBytes)
				}
			}
			if !strings.HasPrefix(prompt, strings.TrimSuffix(failed.Prompt, "…")) || !strings.HasPrefix(errMsg, strings.TrimSuffix(*failed.ErrorMessage, "…")) {
				t.Errorf("summary texts are not prefixes of the originals")
			}
			if failed.Status != task.StatusFailed || failed.WorkerID == nil || *failed.WorkerID != "w1" || failed.Attempts != 1 || failed.CompletedAt == nil {
				t.Errorf("failed task summary %+v", failed)
			}

			// view=full: whole tasks, as GET /tasks/{id}.
			var full struct{ Items []task.Task }
			c.do("GET", "/tasks?view=full&status=failed", nil).decode(t, http.StatusOK, &full)
			if len(full.Items) != 1 || full.Items[0].Code != code || full.Items[0].Prompt != prompt ||
				*full.Items[0].ErrorMessage != errMsg || len(full.Items[0].Result) < 1<<20 {
				t.Errorf("view=full did not return the whole task")
			}
			var got task.Task
			c.do("GET", "/tasks/"+cr.ID, nil).decode(t, http.StatusOK, &got)
			if got.Code != code || got.Prompt != prompt || *got.ErrorMessage != errMsg || len(got.Result) < 1<<20 {
				t.Errorf("GET /tasks/{id} is not whole")
			}
			c.do("GET", "/tasks?view=summary", nil).decode(t, http.StatusOK, &raw)
			if _, ok := raw.Items[0]["code"]; ok || len(raw.Items) != 2 {
				t.Errorf("view=summary: %v", raw.Items)
			}
			c.do("GET", "/tasks?view=compact", nil).problem(t, http.StatusUnprocessableEntity, "query.view")
		})
	}
}

// TestListOpenAPI: the OpenAPI document declares the summary schema and
// the view parameter of the list.
func TestListOpenAPI(t *testing.T) {
	c := serve(t, openStore(t, "sqlite"), httpapi.Options{})
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name   string `json:"name"`
				Schema struct {
					Enum    []string `json:"enum"`
					Default any      `json:"default"`
				} `json:"schema"`
			} `json:"parameters"`
			Responses map[string]struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	c.do("GET", "/openapi.json", nil).decode(t, 200, &doc)
	list := doc.Paths["/tasks"]["get"]
	view := false
	for _, p := range list.Parameters {
		if p.Name == "view" && strings.Join(p.Schema.Enum, ",") == "summary,full" && p.Schema.Default == "summary" {
			view = true
		}
	}
	if !view {
		t.Errorf("list has no view parameter (summary|full, default summary): %+v", list.Parameters)
	}
	ref := list.Responses["200"].Content["application/json"].Schema.Ref
	listSchema := doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
	var items struct {
		Items struct {
			OneOf []struct {
				Ref string `json:"$ref"`
			} `json:"oneOf"`
		} `json:"items"`
	}
	if err := json.Unmarshal(listSchema.Properties["items"], &items); err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, o := range items.Items.OneOf {
		refs = append(refs, o.Ref)
	}
	if strings.Join(refs, " ") != "#/components/schemas/TaskSummary #/components/schemas/Task" {
		t.Errorf("list items are %v, want oneOf TaskSummary, Task", refs)
	}
	summary := doc.Components.Schemas["TaskSummary"]
	for _, k := range []string{"code", "result"} {
		if _, ok := summary.Properties[k]; ok {
			t.Errorf("TaskSummary has %s", k)
		}
	}
	if _, ok := summary.Properties["errorMessage"]; !ok || len(summary.Properties) != 17 {
		t.Errorf("TaskSummary properties %d: %v", len(summary.Properties), summary.Properties)
	}
}
