package taskqueue

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentorch/orchestrator/bullmq"
)

// Defaults of Names, the values of QUEUE_PREFIX and QUEUE_NAME when unset.
const (
	// DefaultPrefix is BullMQ's own default key prefix, "bull".
	DefaultPrefix = bullmq.DefaultPrefix
	// DefaultQueue is the task queue, "claude-tasks".
	DefaultQueue = "claude-tasks"
)

// Suffixes appended to the task queue's name.
const (
	resultsSuffix        = "-results"
	webhooksSuffix       = "-webhooks"
	cancelSuffix         = ":cancel"
	cancelRequestsSuffix = "-cancel-requests"
)

// Names derives every queue and channel name of a deployment from its key
// prefix and task queue name. The zero value means the defaults.
type Names struct {
	// Prefix is the BullMQ key prefix (QUEUE_PREFIX). Defaults to DefaultPrefix.
	Prefix string
	// Queue is the task queue (QUEUE_NAME). Defaults to DefaultQueue.
	Queue string
}

// WithDefaults returns n with its empty fields set to the defaults.
func (n Names) WithDefaults() Names {
	if n.Prefix == "" {
		n.Prefix = DefaultPrefix
	}
	if n.Queue == "" {
		n.Queue = DefaultQueue
	}
	return n
}

// Validate reports a queue name BullMQ cannot use (one holding ':', which
// separates the parts of its keys).
func (n Names) Validate() error {
	n = n.WithDefaults()
	if strings.Contains(n.Queue, ":") {
		return fmt.Errorf("queue name %q must not contain ':'", n.Queue)
	}
	if strings.TrimSpace(n.Prefix) == "" {
		return errors.New("queue prefix must not be blank")
	}
	return nil
}

// Tasks returns the name of the task queue.
func (n Names) Tasks() string { return n.WithDefaults().Queue }

// Results returns the name of the results queue: the task queue's name
// followed by "-results".
func (n Names) Results() string { return n.WithDefaults().Queue + resultsSuffix }

// Webhooks returns the name of the webhooks queue: the task queue's name
// followed by "-webhooks". Only the orchestrator uses it (it adds and
// delivers the webhook notifications of finished tasks); workers never
// take jobs from it.
func (n Names) Webhooks() string { return n.WithDefaults().Queue + webhooksSuffix }

// CancelChannel returns the Redis Pub/Sub channel on which the orchestrator
// publishes cancel requests for running tasks, "<prefix>:<queue>:cancel".
// Each message is the id of a cancelled task (its job id); workers
// subscribe and stop the task if they run it, once they have checked that
// the orchestrator made the request (see CancelRequests).
func (n Names) CancelChannel() string {
	n = n.WithDefaults()
	return n.Prefix + ":" + n.Queue + cancelSuffix
}

// CancelRequestTTL is how long a cancel request stays in the
// CancelRequests set: long enough for every worker to receive the message
// and check it (a worker also remembers a checked cancel for a minute, for
// a task that starts on it just after).
const CancelRequestTTL = time.Hour

// CancelRequests returns the key of the sorted set in which the
// orchestrator records each cancel request before it publishes it on
// CancelChannel: member the task id, score the request time in Unix
// milliseconds; requests older than CancelRequestTTL are trimmed at each
// request. A worker acts on a cancel message only when its task id is a
// member, so that a message published by anyone else stops nothing. The
// key, "<prefix>:<queue>-cancel-requests", lies outside the task queue's
// keys ("<prefix>:<queue>:*", which workers may write), so that a Redis
// ACL can let workers read it without writing it (docs/redis-acl.md).
func (n Names) CancelRequests() string {
	n = n.WithDefaults()
	return n.Prefix + ":" + n.Queue + cancelRequestsSuffix
}
