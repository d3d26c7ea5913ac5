package task

import "time"

// WebhookState is where the webhook notification of a task's run stands.
type WebhookState string

// The webhook states. A task created with a webhook target starts in
// WebhookWaiting; the change that gives it a final status makes the
// delivery WebhookDue (Change.Notify, in the same update); the webhook
// relay adds a delivery job and marks it WebhookQueued; the delivery worker
// ends it WebhookDelivered or WebhookFailed. A retry (MarkRetried) starts
// over at WebhookWaiting.
const (
	// WebhookWaiting: the task has not reached a final status yet.
	WebhookWaiting WebhookState = "waiting"
	// WebhookDue: the task reached a final status; its notification is
	// about to be queued for delivery.
	WebhookDue WebhookState = "due"
	// WebhookQueued: the notification is in the webhooks queue, being
	// delivered or waiting for its next attempt.
	WebhookQueued WebhookState = "queued"
	// WebhookDelivered: the target answered 2xx.
	WebhookDelivered WebhookState = "delivered"
	// WebhookFailed: every attempt failed, or the target was refused.
	WebhookFailed WebhookState = "failed"
)

// WebhookStates lists every webhook state, in life-cycle order.
var WebhookStates = []WebhookState{WebhookWaiting, WebhookDue, WebhookQueued, WebhookDelivered, WebhookFailed}

// Valid reports whether s is one of WebhookStates.
func (s WebhookState) Valid() bool {
	for _, v := range WebhookStates {
		if s == v {
			return true
		}
	}
	return false
}

// WebhookDelivery is the state of the webhook notification of a task's
// current run (one notification per final status).
type WebhookDelivery struct {
	State WebhookState `json:"state" enum:"waiting,due,queued,delivered,failed" doc:"waiting: the task is not finished; due: finished, about to be queued; queued: being delivered (see attempts); delivered; failed: attempts exhausted or target refused."`
	// Attempts is the number of delivery attempts made so far.
	Attempts int `json:"attempts" doc:"Delivery attempts made so far."`
	// LastStatus is the HTTP status of the last attempt, nil when none
	// came back (or no attempt was made).
	LastStatus *int `json:"lastStatus" doc:"HTTP status answered to the last attempt; null when none."`
	// LastError says why the last attempt failed, nil when it did not.
	LastError *string `json:"lastError" doc:"Why the last attempt failed; null when it did not."`
	// DeliveredAt is when a 2xx answer came, nil until then.
	DeliveredAt *time.Time `json:"deliveredAt" doc:"When the target answered 2xx."`
}
