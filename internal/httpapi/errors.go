package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agentorch/orchestrator/internal/task"
)

// problemFor is the one table that turns a domain error into an HTTP
// problem. loc is where the input that the error may be about comes from
// ("body" or "query"); it prefixes the field of a task.ValidationError.
// Errors it does not know become a 500 whose detail hides the cause; the
// caller logs it.
func problemFor(err error, loc string) huma.StatusError {
	var (
		ve *task.ValidationError
		ce *task.ConflictError
	)
	switch {
	case errors.As(err, &ve):
		return huma.Error422UnprocessableEntity("validation failed",
			&huma.ErrorDetail{Location: loc + "." + ve.Field, Message: ve.Reason})
	case errors.Is(err, task.ErrIdempotencyMismatch):
		return huma.Error422UnprocessableEntity("validation failed", &huma.ErrorDetail{Location: "header.Idempotency-Key",
			Message: "this key was used within the last 24 hours for a request with another body; use a new key"})
	case errors.Is(err, task.ErrNotFound):
		return huma.Error404NotFound("task not found")
	case errors.As(err, &ce):
		return huma.Error409Conflict(ce.Reason)
	case errors.Is(err, task.ErrConflict):
		return huma.Error409Conflict("task state does not allow this change")
	case errors.Is(err, task.ErrUnavailable):
		return huma.Error503ServiceUnavailable("the task queue cannot be reached; nothing was changed, try again")
	case errors.Is(err, task.ErrInvalidCursor):
		return huma.Error422UnprocessableEntity("validation failed",
			&huma.ErrorDetail{Location: "query.cursor", Message: "invalid cursor: use a nextCursor returned by this API"})
	case errors.Is(err, task.ErrInvalidStatus):
		return huma.Error422UnprocessableEntity("validation failed",
			&huma.ErrorDetail{Location: "query.status", Message: "unknown status"})
	case errors.Is(err, context.DeadlineExceeded):
		return huma.Error503ServiceUnavailable("the database did not answer in time")
	}
	return huma.Error500InternalServerError("internal error")
}

// writeProblem writes a problem+json response outside huma (middleware,
// router errors), with the same shape huma uses.
func writeProblem(w http.ResponseWriter, status int, detail string, errs ...*huma.ErrorDetail) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(&huma.ErrorModel{Status: status, Title: http.StatusText(status), Detail: detail, Errors: errs})
	body := buf.Bytes()
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// maxEchoedValue bounds the input echoed back in a problem's errors[].value,
// so that a rejected 1 MiB field is not sent back whole.
const maxEchoedValue = 256

// echoed returns s cut to maxEchoedValue bytes, for errors[].value.
func echoed(s string) string {
	if len(s) > maxEchoedValue {
		return s[:maxEchoedValue] + "…"
	}
	return s
}

// tidyProblem is a huma transformer for validation problems: a missing
// required property is located at the property ("body.code"), not at the
// object holding it, and echoed values are kept short (objects and arrays
// are not echoed at all), and the detail names the first failing field.
func tidyProblem(_ huma.Context, _ string, v any) (any, error) {
	em, ok := v.(*huma.ErrorModel)
	if !ok {
		return v, nil
	}
	for _, d := range em.Errors {
		if d == nil {
			continue
		}
		if rest, ok := strings.CutPrefix(d.Message, "expected required property "); ok {
			if name, ok := strings.CutSuffix(rest, " to be present"); ok && d.Location != "" {
				d.Location += "." + name
			}
		}
		switch val := d.Value.(type) {
		case string:
			d.Value = echoed(val)
		case nil, bool, float64, int, int64:
		default:
			d.Value = nil
		}
	}
	if len(em.Errors) > 0 && em.Errors[0] != nil && em.Errors[0].Location != "" && em.Detail == "validation failed" {
		em.Detail += ": " + em.Errors[0].Location + ": " + em.Errors[0].Message
	}
	return v, nil
}
