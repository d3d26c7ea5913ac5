package bullmq

import (
	"encoding/base64"
	"strings"
)

// DefaultPrefix is the key prefix used when no prefix is given, the same as
// the official Node package ("bull").
const DefaultPrefix = "bull"

// keys holds every Redis key string of one queue. It is the only place in the
// package where key strings are built. Keys are "prefix:queue:suffix"; job keys
// are the queue base ("prefix:queue:") followed by the job id. Hash tags for
// Redis Cluster are never added here: they come only from the prefix or queue
// name the user chose, exactly as the Node package does.
type keys struct {
	prefix string // P
	queue  string // Q
	base   string // "P:Q:"

	wait            string
	paused          string
	active          string
	prioritized     string
	pc              string
	delayed         string
	waitingChildren string
	completed       string
	failed          string
	id              string
	meta            string
	events          string
	marker          string
	stalled         string
	stalledCheck    string
	limiter         string
	repeat          string
	delay           string // legacy key, only ever deleted
	metricsComp     string
	metricsFail     string
	metricsCompData string
	metricsFailData string
}

// newKeys builds the keys of queue name under prefix ("" means DefaultPrefix).
func newKeys(prefix, name string) *keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	base := prefix + ":" + name + ":"
	return &keys{
		prefix:          prefix,
		queue:           name,
		base:            base,
		wait:            base + "wait",
		paused:          base + "paused",
		active:          base + "active",
		prioritized:     base + "prioritized",
		pc:              base + "pc",
		delayed:         base + "delayed",
		waitingChildren: base + "waiting-children",
		completed:       base + "completed",
		failed:          base + "failed",
		id:              base + "id",
		meta:            base + "meta",
		events:          base + "events",
		marker:          base + "marker",
		stalled:         base + "stalled",
		stalledCheck:    base + "stalled-check",
		limiter:         base + "limiter",
		repeat:          base + "repeat",
		delay:           base + "delay",
		metricsComp:     base + "metrics:completed",
		metricsFail:     base + "metrics:failed",
		metricsCompData: base + "metrics:completed:data",
		metricsFailData: base + "metrics:failed:data",
	}
}

// queueKey is "P:Q" (no trailing colon), the form used in a job's parent
// reference.
func (k *keys) queueKey() string { return strings.TrimSuffix(k.base, ":") }

// job is the hash key of job id: "P:Q:<id>".
func (k *keys) job(id string) string { return k.base + id }

// lock is the lock key of job id: "P:Q:<id>:lock".
func (k *keys) lock(id string) string { return k.base + id + ":lock" }

// logs is the log list key of job id: "P:Q:<id>:logs".
func (k *keys) logs(id string) string { return k.base + id + ":logs" }

// dependencies is the flow dependency set of job id.
func (k *keys) dependencies(id string) string { return k.base + id + ":dependencies" }

// processed is the flow hash of children results of job id.
func (k *keys) processed(id string) string { return k.base + id + ":processed" }

// failedChildren is the flow hash of ignored child failures of job id.
func (k *keys) failedChildren(id string) string { return k.base + id + ":failed" }

// unsuccessful is the flow zset of failed children of job id.
func (k *keys) unsuccessful(id string) string { return k.base + id + ":unsuccessful" }

// dedup is the deduplication owner key of deduplication id dedupID.
func (k *keys) dedup(dedupID string) string { return k.base + "de:" + dedupID }

// dedupNext is the stored "next job" hash of deduplication id dedupID.
func (k *keys) dedupNext(dedupID string) string { return k.base + "dn:" + dedupID }

// scheduler is the hash of job scheduler id.
func (k *keys) scheduler(id string) string { return k.base + "repeat:" + id }

// state returns the key holding jobs in state s, or "" for a state that has
// no key of its own.
func (k *keys) state(s JobState) string {
	switch s {
	case StateWaiting:
		return k.wait
	case StatePaused:
		return k.paused
	case StateActive:
		return k.active
	case StatePrioritized:
		return k.prioritized
	case StateDelayed:
		return k.delayed
	case StateWaitingChildren:
		return k.waitingChildren
	case StateCompleted:
		return k.completed
	case StateFailed:
		return k.failed
	}
	return ""
}

// connName is the CLIENT SETNAME value the Node package uses for a
// connection of this queue: "P:<base64(Q)>" followed by suffix (for example
// ":qe" for QueueEvents, ":w:<name>" for a named worker, "" for an unnamed one).
func (k *keys) connName(suffix string) string {
	return k.prefix + ":" + base64.StdEncoding.EncodeToString([]byte(k.queue)) + suffix
}
