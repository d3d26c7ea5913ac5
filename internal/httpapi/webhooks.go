package httpapi

import (
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/agentorch/orchestrator/internal/task"
)

// describeWebhook adds the webhook notification the orchestrator sends to
// the OpenAPI document's webhooks (OpenAPI 3.1), with its Standard
// Webhooks headers.
func (s *Server) describeWebhook() {
	oapi := s.api.OpenAPI()
	body := oapi.Components.Schemas.Schema(reflect.TypeFor[task.Notification](), true, "Notification")
	if data := oapi.Components.Schemas.Map()["NotificationTask"]; data != nil && data.Properties["metadata"] != nil {
		data.Properties["metadata"].Type = "object"
		data.Properties["metadata"].Nullable = true
	}
	header := func(name, doc string) *huma.Param {
		return &huma.Param{Name: name, In: "header", Required: true, Description: doc, Schema: &huma.Schema{Type: "string"}}
	}
	if oapi.Webhooks == nil {
		oapi.Webhooks = map[string]*huma.PathItem{}
	}
	oapi.Webhooks["taskFinished"] = &huma.PathItem{Post: &huma.Operation{
		OperationID: "task-finished",
		Summary:     "A task reached a final status",
		Description: "Sent to the task's callbackUrl, or else to the server's WEBHOOK_URL, once per final status " +
			"(again after a retry), signed per the Standard Webhooks spec with WEBHOOK_SECRET. Retried with " +
			"exponential backoff on errors, timeouts and non-2xx answers, up to WEBHOOK_ATTEMPTS; at least once: " +
			"drop duplicates by webhook-id. The delivery's state is the task's webhook field.",
		Tags: []string{"webhooks"},
		Parameters: []*huma.Param{
			header("webhook-id", "The notification's id, <taskId>-webhook-<retries>-<status>: the same on every attempt."),
			header("webhook-timestamp", "Unix seconds when this attempt was sent."),
			header("webhook-signature", "v1,<base64 HMAC-SHA256 of \"<webhook-id>.<webhook-timestamp>.<body>\" keyed with the base64 part of WEBHOOK_SECRET (whsec_<base64>)>."),
		},
		RequestBody: &huma.RequestBody{Required: true,
			Content: map[string]*huma.MediaType{"application/json": {Schema: body}}},
		Responses: map[string]*huma.Response{
			"2XX":     {Description: "Delivered."},
			"default": {Description: "Not delivered: the notification is sent again after a backoff."},
		},
	}}
}
