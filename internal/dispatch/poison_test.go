package dispatch_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// postRaw posts data (a result as raw JSON bytes) under the contract's
// result job id of job, as a worker named by the data does.
func (e *env) postRaw(job *bullmq.Job, data string) {
	e.t.Helper()
	rid := taskqueue.ResultJobID(job.ID, job.AttemptsMade)
	if _, err := e.results.Add(e.ctx, taskqueue.ResultJobName, json.RawMessage(data), &bullmq.JobOptions{JobID: rid, Attempts: 3}); err != nil {
		e.t.Fatalf("post result: %v", err)
	}
}

// TestPoisonDoesNotStall: on both stores, results and failures that carry
// bytes PostgreSQL refuses (a NUL in the error message and in the job's
// failedReason, \u0000 in result JSON, invalid UTF-8), a result too large
// to store, among normal tasks: every task reaches a final status with a
// readable reason, the poison is stored sanitised, and a task created
// afterwards completes. (Before the fix, on PostgreSQL, the task with a
// NUL in its error message stayed running: SQLSTATE 22021 was retried for
// ever by the result consumer and the events listener.)
func TestPoisonDoesNotStall(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind, dispatch.EnqueuerOptions{Attempts: 1})
			e.listener()
			e.consumer(dispatch.ResultsOptions{})
			r, err := dispatch.NewReconciler(e.tasks, e.results, e.svc, dispatch.ReconcilerOptions{
				Interval: 200 * time.Millisecond, MinAge: time.Millisecond, ResultGrace: 500 * time.Millisecond, Logger: e.log})
			if err != nil {
				t.Fatal(err)
			}
			e.run("reconciler", r)

			huge := `"` + strings.Repeat("x", task.MaxResultBytes+1) + `"`
			poison := map[string]func(job *bullmq.Job) (any, error){
				"nul in error": func(job *bullmq.Job) (any, error) {
					e.postRaw(job, `{"taskId":"`+job.ID+`","workerId":"w","status":"failed","result":null,"errorMessage":"boom\u0000here"}`)
					return nil, bullmq.Unrecoverable(errText("boom\x00here"))
				},
				"nul in failure only": func(job *bullmq.Job) (any, error) {
					return nil, bullmq.Unrecoverable(errText("exit 1: \x00\xff"))
				},
				"nul escape in json": func(job *bullmq.Job) (any, error) {
					e.postRaw(job, `{"taskId":"`+job.ID+`","workerId":"w","status":"completed","result":{"out":"a\u0000b"}}`)
					return "done", nil
				},
				"invalid utf8": func(job *bullmq.Job) (any, error) {
					e.postRaw(job, "{\"taskId\":\""+job.ID+"\",\"workerId\":\"w\",\"status\":\"completed\",\"result\":\"caf\xc3 \\u0000\"}")
					return "done", nil
				},
				"too large": func(job *bullmq.Job) (any, error) {
					e.postRaw(job, `{"taskId":"`+job.ID+`","workerId":"w","status":"completed","result":`+huge+`}`)
					return "done", nil
				},
			}
			byTask := map[string]string{}
			var normal []uuid.UUID
			for name := range poison {
				tk := e.create(1)[0]
				byTask[tk.ID.String()] = name
				for range 4 {
					normal = append(normal, e.create(1)[0].ID)
				}
			}
			e.worker("w", 8, func(ctx context.Context, job *bullmq.Job) (any, error) {
				if name, ok := byTask[job.ID]; ok {
					return poison[name](job)
				}
				e.postRaw(job, `{"taskId":"`+job.ID+`","workerId":"w","status":"completed","result":"ok"}`)
				return "done", nil
			})
			for _, id := range normal {
				if got := e.waitTask(id, "completed", func(tk *task.Task) bool { return tk.Status.Terminal() }); got.Status != task.StatusCompleted {
					t.Errorf("normal task = %s", describe(got))
				}
			}
			for id, name := range byTask {
				got := e.waitTask(uuid.MustParse(id), "final", func(tk *task.Task) bool { return tk.Status.Terminal() })
				switch name {
				case "nul in error", "nul in failure only":
					if got.Status != task.StatusFailed || got.ErrorMessage == nil || strings.ContainsRune(*got.ErrorMessage, 0) ||
						!strings.Contains(*got.ErrorMessage, "boomhere") && !strings.Contains(*got.ErrorMessage, "exit 1") || !got.Sanitized {
						t.Errorf("%s: %s", name, describe(got))
					}
				case "nul escape in json":
					if got.Status != task.StatusCompleted || !sameJSON(got.Result, `{"out":"ab"}`) || !got.Sanitized {
						t.Errorf("%s: %s", name, describe(got))
					}
				case "invalid utf8":
					if got.Status != task.StatusCompleted || !sameJSON(got.Result, `"caf\ufffd "`) || !got.Sanitized {
						t.Errorf("%s: %s", name, describe(got))
					}
				case "too large":
					if got.Status != task.StatusFailed || got.ErrorMessage == nil ||
						!strings.HasPrefix(*got.ErrorMessage, task.UnstorableReason) || got.Result != nil {
						t.Errorf("%s: %s", name, describe(got))
					}
					rj, err := e.results.GetJob(e.ctx, taskqueue.ResultJobID(id, 0))
					if err != nil {
						t.Fatal(err)
					}
					if st, _ := e.results.GetJobState(e.ctx, rj.ID); st != bullmq.StateFailed || !strings.Contains(rj.FailedReason, "invalid data") {
						t.Errorf("too large result job: %s, reason %q; want failed, kept for inspection", st, rj.FailedReason)
					}
				}
			}
			// The pipeline still moves: a task created now completes.
			after := e.create(1)[0]
			e.waitStatus(after.ID, task.StatusCompleted)
		})
	}
}

type errText string

func (e errText) Error() string { return string(e) }
