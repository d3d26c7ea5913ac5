package interop

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq"
)

// TestPriorityLimit pins our bullmq.MaxPriority to the official package's
// PRIORITY_LIMIT (2^21 - 1; its documentation says 2,097,152, but its Job
// refuses any priority above 2,097,151): Node accepts MaxPriority and
// refuses MaxPriority+1, as our Queue does, and a job Node added at the
// limit reads back in Go with that priority.
func TestPriorityLimit(t *testing.T) {
	e := newEnv(t)
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			q := e.queue("prio")
			p := e.startNode(t, "queue.js", e.cfg(q, v, map[string]any{"ops": []map[string]any{
				op("add", "name", "max", "data", map[string]any{}, "opts", map[string]any{"priority": bullmq.MaxPriority, "jobId": "at-max"}),
				op("add", "name", "over", "data", map[string]any{}, "opts", map[string]any{"priority": bullmq.MaxPriority + 1}),
			}}))
			var res []struct {
				Result json.RawMessage `json:"result"`
				Error  string          `json:"error"`
			}
			for _, l := range p.waitN(30*time.Second, "op results", 2, func(l line) bool { return l.Op != "" }) {
				var r struct {
					Result json.RawMessage `json:"result"`
					Error  string          `json:"error"`
				}
				l.decode(t, &r)
				res = append(res, r)
			}
			if res[0].Error != "" {
				t.Fatalf("node refused priority %d: %s", bullmq.MaxPriority, res[0].Error)
			}
			if !strings.Contains(res[1].Error, "Priority should be between 0 and") {
				t.Fatalf("node priority %d: result %s, error %q; want refused", bullmq.MaxPriority+1, res[1].Result, res[1].Error)
			}
			gq, err := bullmq.NewQueue(e.rdb, q, &bullmq.QueueOptions{Prefix: e.prefix})
			if err != nil {
				t.Fatal(err)
			}
			defer gq.Close()
			job, err := gq.GetJob(ctxT(t), "at-max")
			if err != nil || job.Priority != bullmq.MaxPriority {
				t.Fatalf("Go reads node's job at the limit: %+v, %v", job, err)
			}
			if _, err := gq.Add(ctxT(t), "over", nil, &bullmq.JobOptions{Priority: bullmq.MaxPriority + 1}); !errors.Is(err, bullmq.ErrInvalidOptions) {
				t.Fatalf("Go Add at MaxPriority+1: err = %v, want ErrInvalidOptions", err)
			}
		})
	}
}
