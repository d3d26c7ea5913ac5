package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/task"
)

// CreateTaskRequest is the body of POST /tasks. Unknown fields are
// rejected.
type CreateTaskRequest struct {
	Code     string `json:"code" minLength:"1" maxLength:"1048576" doc:"The code the agent works on; 1 byte to 1 MiB."`
	Prompt   string `json:"prompt" minLength:"1" maxLength:"65536" doc:"What the agent must do; 1 byte to 64 KiB."`
	Timeout  int64  `json:"timeout,omitempty" minimum:"1000" maximum:"86400000" default:"300000" doc:"Time limit of one run in milliseconds."`
	Priority *int   `json:"priority,omitempty" minimum:"1" maximum:"2097151" doc:"Queue priority with BullMQ's semantics: 1 is the most urgent, 2097151 the least. Absent: no priority (FIFO); BullMQ runs every task without priority before the prioritized ones, so give all tasks a priority to let urgent ones jump the queue."`
	// Metadata is kept as sent (a JSON object; its schema is set in
	// registerTasks, huma documents json.RawMessage as any value).
	Metadata    json.RawMessage `json:"metadata,omitempty" doc:"Your own JSON object (at most 16 KiB), stored and returned as given; filter the list with ?metadata.<key>=<value>."`
	CallbackURL string          `json:"callbackUrl,omitempty" maxLength:"2048" format:"uri" doc:"http(s) URL that receives the signed webhook notification when the task reaches a final status (instead of the server's WEBHOOK_URL). Loopback, private, link-local and cloud-metadata addresses, and localhost, are refused."`
}

// CreatedTask is the response of POST /tasks.
type CreatedTask struct {
	ID        uuid.UUID   `json:"id" doc:"The task id (a UUID)."`
	Status    task.Status `json:"status" enum:"pending,queued,running,completed,failed,cancelled" doc:"The task status: pending until the queue takes it."`
	CreatedAt time.Time   `json:"createdAt"`
}

// TaskList is a page of tasks, newest first: TaskSummary items, or whole
// task.Task items when the client asks for view=full.
type TaskList struct {
	Items      []any   `json:"items" nullable:"false" doc:"TaskSummary items; Task items with view=full."`
	NextCursor *string `json:"nextCursor" doc:"Pass as cursor to get the next page; null on the last page."`
}

// TransformSchema documents the items of a TaskList as a TaskSummary or a
// Task (huma calls it when it builds the OpenAPI document).
func (TaskList) TransformSchema(r huma.Registry, s *huma.Schema) *huma.Schema {
	if items := s.Properties["items"]; items != nil {
		items.Items = &huma.Schema{OneOf: []*huma.Schema{
			r.Schema(reflect.TypeFor[TaskSummary](), true, ""),
			r.Schema(reflect.TypeFor[task.Task](), true, ""),
		}}
	}
	return s
}

// SummaryTextBytes bounds the prompt and errorMessage of a TaskSummary: a
// longer text is cut at a character boundary to at most this many bytes
// and ends with "…".
const SummaryTextBytes = 256

// TaskSummary is a task as GET /tasks lists it by default: without its
// code and result, with its prompt and error message cut to
// SummaryTextBytes, so that a page of 200 tasks stays small whatever the
// tasks hold (whole tasks: up to 1 MiB of code and a result each). GET
// /tasks/{id}, or the list with view=full, gives the whole task.
type TaskSummary struct {
	ID            uuid.UUID   `json:"id"`
	Prompt        string      `json:"prompt" doc:"The prompt, cut to 256 bytes (then ending with …)."`
	Timeout       int64       `json:"timeout" doc:"Time limit of one run in milliseconds."`
	Status        task.Status `json:"status" enum:"pending,queued,running,completed,failed,cancelled"`
	WorkerID      *string     `json:"workerId"`
	ErrorMessage  *string     `json:"errorMessage" doc:"The error message, cut to 256 bytes (then ending with …)."`
	Attempts      int         `json:"attempts"`
	ExecutionTime *int64      `json:"executionTime" doc:"Milliseconds."`
	CreatedAt     time.Time   `json:"createdAt"`
	UpdatedAt     time.Time   `json:"updatedAt"`
	StartedAt     *time.Time  `json:"startedAt"`
	CompletedAt   *time.Time  `json:"completedAt"`
	// The control fields, as on the task (metadata is bounded at 16 KiB).
	Priority *int                  `json:"priority" doc:"Queue priority (1 most urgent); null: none."`
	Metadata json.RawMessage       `json:"metadata" doc:"The client's JSON object; null when none."`
	Owner    string                `json:"owner" doc:"Name of the API key that created the task."`
	Retries  int                   `json:"retries" doc:"How many times a client retried the task."`
	Webhook  *task.WebhookDelivery `json:"webhook" doc:"Delivery of the task's webhook notification; null when none."`
}

// summarize returns the summary of t.
func summarize(t *task.Task) *TaskSummary {
	s := &TaskSummary{ID: t.ID, Prompt: cutText(t.Prompt), Timeout: t.Timeout, Status: t.Status, WorkerID: t.WorkerID,
		Attempts: t.Attempts, ExecutionTime: t.ExecutionTime, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
		StartedAt: t.StartedAt, CompletedAt: t.CompletedAt,
		Priority: t.Priority, Metadata: t.Metadata, Owner: t.Owner, Retries: t.Retries, Webhook: t.Webhook}
	if t.ErrorMessage != nil {
		m := cutText(*t.ErrorMessage)
		s.ErrorMessage = &m
	}
	return s
}

// cutText cuts s to at most SummaryTextBytes bytes at a character
// boundary, marking a cut with "…".
func cutText(s string) string {
	if len(s) <= SummaryTextBytes {
		return s
	}
	n := SummaryTextBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

type createTaskInput struct {
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"255" doc:"Makes the create safe to repeat: the same key with the same body, from the same API key, within 24 hours, returns the task the first request created (200 instead of 201) instead of creating another; the same key with another body is refused (422)."`
	Body           CreateTaskRequest
}

type createTaskOutput struct {
	Status   int
	Location string `header:"Location" doc:"The URL path of the task."`
	Replayed string `header:"Idempotent-Replayed" doc:"\"true\" when an Idempotency-Key returned an existing task."`
	Body     CreatedTask
}

type getTaskInput struct {
	ID string `path:"id" doc:"The task id (a UUID)."`
}

type getTaskOutput struct {
	Body *task.Task
}

type listTasksInput struct {
	Status string `query:"status" enum:"pending,queued,running,completed,failed,cancelled" doc:"Only tasks in this status."`
	Limit  int    `query:"limit" minimum:"1" maximum:"200" default:"50" doc:"Page size."`
	Cursor string `query:"cursor" doc:"The nextCursor of the previous page."`
	View   string `query:"view" enum:"summary,full" default:"summary" doc:"summary: TaskSummary items (no code, no result, prompt and errorMessage cut to 256 bytes); full: whole tasks."`
	// metadata is the ?metadata.<key>=<value> filter, read by Resolve.
	metadata *task.MetadataFilter
}

// metadataParam prefixes the query parameter of the metadata filter.
const metadataParam = "metadata."

// Resolve reads the metadata filter, ?metadata.<key>=<value>, which huma
// cannot declare (its name holds the key): at most one, with one value.
func (in *listTasksInput) Resolve(ctx huma.Context) []error {
	var errs []error
	u := ctx.URL()
	for name, values := range u.Query() {
		key, ok := strings.CutPrefix(name, metadataParam)
		switch {
		case name == "metadata":
			errs = append(errs, &huma.ErrorDetail{Location: "query.metadata",
				Message: "filter by metadata with metadata.<key>=<value>"})
		case !ok:
		case in.metadata != nil:
			errs = append(errs, &huma.ErrorDetail{Location: "query." + name,
				Message: "only one metadata.<key> filter is supported"})
		case len(values) != 1:
			errs = append(errs, &huma.ErrorDetail{Location: "query." + name, Message: "give the metadata filter one value"})
		default:
			f := &task.MetadataFilter{Key: key, Value: values[0]}
			if err := f.Validate(); err != nil {
				msg := err.Error()
				var ve *task.ValidationError
				if errors.As(err, &ve) {
					msg = ve.Reason
				}
				errs = append(errs, &huma.ErrorDetail{Location: "query." + truncate(name, 128), Message: msg})
				continue
			}
			in.metadata = f
		}
	}
	return errs
}

// truncate cuts s to n bytes for an error location.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

type listTasksOutput struct {
	Body TaskList
}

func (s *Server) registerTasks() {
	huma.Register(s.api, huma.Operation{
		OperationID: "create-task",
		Method:      http.MethodPost,
		Path:        "/tasks",
		Summary:     "Create a task",
		Description: "Stores the task (owned by the caller's API key name) and queues it. 201 with the new task; " +
			"200 with the existing task when an Idempotency-Key repeats an earlier request.",
		Tags:          []string{"tasks"},
		Security:      s.security,
		DefaultStatus: http.StatusCreated,
		MaxBodyBytes:  MaxBodyBytes,
		Responses: map[string]*huma.Response{
			"200": {Description: "An Idempotency-Key repeated an earlier request: the task it created, as it is now."},
		},
		Errors: []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity},
	}, s.createTask)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-tasks",
		Method:      http.MethodGet,
		Path:        "/tasks",
		Summary:     "List tasks, newest first",
		Description: "Tasks the caller may see (its own; every task for admin keys), newest first. " +
			"Returns TaskSummary items: no code, no result, prompt and errorMessage cut to 256 bytes. " +
			"view=full returns whole tasks (as GET /tasks/{id} does). " +
			"Filter by one metadata key with ?metadata.<key>=<value>: it matches tasks whose metadata holds " +
			"that key with exactly that string value (numbers and booleans do not match). The key is 1 to 256 " +
			"bytes after \"metadata.\", the value at most 1024 bytes; one metadata filter per request.",
		Tags:     []string{"tasks"},
		Security: s.security,
		Errors:   []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusUnprocessableEntity},
	}, s.listTasks)
	huma.Register(s.api, huma.Operation{
		OperationID: "task-stats",
		Method:      http.MethodGet,
		Path:        "/tasks/stats",
		Summary:     "Task statistics",
		Description: "Task counts by status of the tasks the caller may see. The queue part (job counts of the " +
			"whole queue) is shown to admin keys only, and when no API keys are configured.",
		Tags:     []string{"tasks"},
		Security: s.security,
		Errors:   []int{http.StatusUnauthorized, http.StatusServiceUnavailable},
	}, s.stats)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-task",
		Method:      http.MethodGet,
		Path:        "/tasks/{id}",
		Summary:     "Get a task",
		Tags:        []string{"tasks"},
		Security:    s.security,
		Errors:      []int{http.StatusUnauthorized, http.StatusNotFound},
	}, s.getTask)
	huma.Register(s.api, huma.Operation{
		OperationID: "cancel-task",
		Method:      http.MethodPost,
		Path:        "/tasks/{id}/cancel",
		Summary:     "Cancel a task",
		Description: "Marks a live task (pending, queued or running) cancelled and stops its job. " +
			"409 when the task is already completed, failed or cancelled.",
		Tags:     []string{"tasks"},
		Security: s.security,
		Errors:   []int{http.StatusUnauthorized, http.StatusNotFound, http.StatusConflict},
	}, s.cancelTask)
	huma.Register(s.api, huma.Operation{
		OperationID: "retry-task",
		Method:      http.MethodPost,
		Path:        "/tasks/{id}/retry",
		Summary:     "Retry a failed or cancelled task",
		Description: "Queues a failed or cancelled task again: same id, its attempts keep counting (the new run's " +
			"first attempt is attempts+1), retries grows by one, the previous error stays until the new run ends, " +
			"its result and completion time are cleared and its webhook will notify again. Answers the task, queued " +
			"(pending when the queue is unreachable after the old job was removed: it is queued as soon as possible). " +
			"409 for a task in another status, or while a cancelled task's worker has not stopped yet; " +
			"503 when the queue cannot be reached (nothing changed).",
		Tags:     []string{"tasks"},
		Security: s.security,
		Errors:   []int{http.StatusUnauthorized, http.StatusNotFound, http.StatusConflict, http.StatusServiceUnavailable},
	}, s.retryTask)
	s.describeMetadata()
	s.describeWebhook()
}

// describeMetadata documents the metadata fields as JSON objects (huma
// documents json.RawMessage as any value).
func (s *Server) describeMetadata() {
	schemas := s.api.OpenAPI().Components.Schemas.Map()
	for name, nullable := range map[string]bool{"CreateTaskRequest": false, "Task": true, "TaskSummary": true} {
		sc, ok := schemas[name]
		if !ok || sc.Properties["metadata"] == nil {
			continue
		}
		m := sc.Properties["metadata"]
		m.Type = "object"
		m.Nullable = nullable
		if !nullable {
			m.Description += fmt.Sprintf(" At most %d bytes.", task.MaxMetadataBytes)
		}
	}
}

func (s *Server) createTask(ctx context.Context, in *createTaskInput) (*createTaskOutput, error) {
	n := task.NewTask{Code: in.Body.Code, Prompt: in.Body.Prompt, Timeout: in.Body.Timeout,
		Priority: in.Body.Priority, Metadata: in.Body.Metadata, CallbackURL: in.Body.CallbackURL}
	var (
		t       *task.Task
		created = true
		err     error
	)
	if in.IdempotencyKey != "" {
		if err := task.ValidateIdempotencyKey(in.IdempotencyKey); err != nil {
			return nil, s.fail(ctx, "create task", err, "header")
		}
		t, created, err = s.svc.CreateIdempotent(ctx, n, in.IdempotencyKey)
	} else {
		t, err = s.svc.Create(ctx, n)
	}
	if err != nil {
		return nil, s.fail(ctx, "create task", err, "body")
	}
	out := &createTaskOutput{Status: http.StatusCreated, Location: "/tasks/" + t.ID.String(),
		Body: CreatedTask{ID: t.ID, Status: t.Status, CreatedAt: t.CreatedAt}}
	if !created {
		out.Status, out.Replayed = http.StatusOK, "true"
	}
	return out, nil
}

func (s *Server) retryTask(ctx context.Context, in *getTaskInput) (*getTaskOutput, error) {
	id, err := uuid.Parse(in.ID)
	if err != nil {
		return nil, huma.Error404NotFound("task not found")
	}
	t, err := s.svc.Retry(ctx, id)
	if err != nil {
		return nil, s.fail(ctx, "retry task", err, "path")
	}
	return &getTaskOutput{Body: t}, nil
}

func (s *Server) getTask(ctx context.Context, in *getTaskInput) (*getTaskOutput, error) {
	id, err := uuid.Parse(in.ID)
	if err != nil {
		return nil, huma.Error404NotFound("task not found")
	}
	t, err := s.svc.Get(ctx, id)
	if err != nil {
		return nil, s.fail(ctx, "get task", err, "path")
	}
	return &getTaskOutput{Body: t}, nil
}

func (s *Server) cancelTask(ctx context.Context, in *getTaskInput) (*getTaskOutput, error) {
	id, err := uuid.Parse(in.ID)
	if err != nil {
		return nil, huma.Error404NotFound("task not found")
	}
	t, err := s.svc.Cancel(ctx, id)
	if err != nil {
		return nil, s.fail(ctx, "cancel task", err, "path")
	}
	return &getTaskOutput{Body: t}, nil
}

func (s *Server) listTasks(ctx context.Context, in *listTasksInput) (*listTasksOutput, error) {
	q := task.ListQuery{Limit: in.Limit, Metadata: in.metadata}
	if in.Status != "" {
		st, err := task.ParseStatus(in.Status)
		if err != nil {
			return nil, s.fail(ctx, "list tasks", err, "query")
		}
		q.Status = &st
	}
	if in.Cursor != "" {
		c, err := task.DecodeCursor(in.Cursor)
		if err != nil {
			return nil, s.fail(ctx, "list tasks", err, "query")
		}
		q.After = &c
	}
	items, next, err := s.svc.List(ctx, q)
	if err != nil {
		return nil, s.fail(ctx, "list tasks", err, "query")
	}
	out := &listTasksOutput{Body: TaskList{Items: make([]any, len(items))}}
	for i, t := range items {
		if in.View == "full" {
			out.Body.Items[i] = t
		} else {
			out.Body.Items[i] = summarize(t)
		}
	}
	if next != nil {
		c := next.Encode()
		out.Body.NextCursor = &c
	}
	return out, nil
}

// fail translates err for the client and logs the errors the client does
// not get to see (5xx).
func (s *Server) fail(ctx context.Context, op string, err error, loc string) error {
	p := problemFor(err, loc)
	if p.GetStatus() >= 500 {
		s.log.ErrorContext(ctx, op+" failed", "err", err, "request_id", RequestID(ctx))
	}
	return p
}
