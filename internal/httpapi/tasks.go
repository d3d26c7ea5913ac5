package httpapi

import (
	"context"
	"net/http"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/task"
)

// CreateTaskRequest is the body of POST /tasks. Unknown fields are
// rejected.
type CreateTaskRequest struct {
	Code    string `json:"code" minLength:"1" maxLength:"1048576" doc:"The code the agent works on; 1 byte to 1 MiB."`
	Prompt  string `json:"prompt" minLength:"1" maxLength:"65536" doc:"What the agent must do; 1 byte to 64 KiB."`
	Timeout int64  `json:"timeout,omitempty" minimum:"1000" maximum:"86400000" default:"300000" doc:"Time limit of one run in milliseconds."`
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
}

// summarize returns the summary of t.
func summarize(t *task.Task) *TaskSummary {
	s := &TaskSummary{ID: t.ID, Prompt: cutText(t.Prompt), Timeout: t.Timeout, Status: t.Status, WorkerID: t.WorkerID,
		Attempts: t.Attempts, ExecutionTime: t.ExecutionTime, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
		StartedAt: t.StartedAt, CompletedAt: t.CompletedAt}
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
	Body CreateTaskRequest
}

type createTaskOutput struct {
	Location string `header:"Location" doc:"The URL path of the new task."`
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
}

type listTasksOutput struct {
	Body TaskList
}

func (s *Server) registerTasks() {
	huma.Register(s.api, huma.Operation{
		OperationID:   "create-task",
		Method:        http.MethodPost,
		Path:          "/tasks",
		Summary:       "Create a task",
		Tags:          []string{"tasks"},
		Security:      s.security,
		DefaultStatus: http.StatusCreated,
		MaxBodyBytes:  MaxBodyBytes,
		Errors:        []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity},
	}, s.createTask)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-tasks",
		Method:      http.MethodGet,
		Path:        "/tasks",
		Summary:     "List tasks, newest first",
		Description: "Returns TaskSummary items: no code, no result, prompt and errorMessage cut to 256 bytes. " +
			"view=full returns whole tasks (as GET /tasks/{id} does).",
		Tags:     []string{"tasks"},
		Security: s.security,
		Errors:   []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusUnprocessableEntity},
	}, s.listTasks)
	huma.Register(s.api, huma.Operation{
		OperationID: "task-stats",
		Method:      http.MethodGet,
		Path:        "/tasks/stats",
		Summary:     "Task statistics",
		Tags:        []string{"tasks"},
		Security:    s.security,
		Errors:      []int{http.StatusUnauthorized, http.StatusServiceUnavailable},
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
}

func (s *Server) createTask(ctx context.Context, in *createTaskInput) (*createTaskOutput, error) {
	t, err := s.svc.Create(ctx, task.NewTask{Code: in.Body.Code, Prompt: in.Body.Prompt, Timeout: in.Body.Timeout})
	if err != nil {
		return nil, s.fail(ctx, "create task", err, "body")
	}
	return &createTaskOutput{Location: "/tasks/" + t.ID.String(),
		Body: CreatedTask{ID: t.ID, Status: t.Status, CreatedAt: t.CreatedAt}}, nil
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
	q := task.ListQuery{Limit: in.Limit}
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
