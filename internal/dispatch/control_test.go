package dispatch_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/executor"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/webhook"
	"github.com/agentorch/orchestrator/internal/workerapp"
)

func mustUUIDv7(t *testing.T) uuid.UUID {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// execFunc adapts a function to executor.Executor.
type execFunc func(ctx context.Context, in executor.Input) (executor.Output, error)

func (f execFunc) Run(ctx context.Context, in executor.Input) (executor.Output, error) {
	return f(ctx, in)
}

// taskWorker runs our worker (internal/workerapp) on the env's queues with
// the executor until the test ends.
func (e *env) taskWorker(name string, concurrency int, exec executor.Executor) {
	e.t.Helper()
	app, err := workerapp.New(workerapp.Options{Client: e.client, Executor: exec, Logger: e.log,
		Config: &workerapp.Config{Names: e.names, WorkerID: name, Concurrency: concurrency,
			DefaultTimeout: 10 * time.Second, LockDuration: 2 * time.Second, StalledInterval: time.Second}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.run("worker app "+name, app)
	select {
	case <-app.Subscribed():
	case <-time.After(10 * time.Second):
		e.t.Fatal("worker app did not start")
	}
}

// TestRetryContinuesAttempts: a task fails for good after 2 attempts with
// its job kept in Redis' failed set; a retry removes that job, queues a new
// one counting from attempt 3, and our worker's result of that attempt
// (under a new result id) completes the task. The task keeps its id,
// attempts and last error until the new run ends.
func TestRetryContinuesAttempts(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind, dispatch.EnqueuerOptions{Attempts: 2, Backoff: 10 * time.Millisecond})
			e.listener()
			e.consumer(dispatch.ResultsOptions{})
			var healthy atomic.Bool
			e.taskWorker("w1", 1, execFunc(func(ctx context.Context, in executor.Input) (executor.Output, error) {
				if !healthy.Load() {
					return executor.Output{}, errors.New("flaky agent")
				}
				return executor.Output{Result: json.RawMessage(`{"answer":"ok"}`)}, nil
			}))
			tk := e.create(1)[0]
			failed := e.waitTask(tk.ID, "failed after 2 attempts", func(tk *task.Task) bool {
				return tk.Status == task.StatusFailed && tk.Attempts == 2
			})
			if st, err := e.tasks.GetJobState(e.ctx, tk.ID.String()); err != nil || st != bullmq.StateFailed {
				t.Fatalf("old job state = %s, %v; want failed (kept in Redis)", st, err)
			}
			healthy.Store(true)
			retried, err := e.svc.Retry(e.ctx, tk.ID)
			if err != nil {
				t.Fatalf("Retry: %v", err)
			}
			if retried.ID != tk.ID || retried.Retries != 1 || retried.Attempts != 2 || retried.AttemptOffset != 2 ||
				(retried.Status != task.StatusQueued && retried.Status != task.StatusRunning) ||
				!retried.CreatedAt.Equal(failed.CreatedAt) {
				t.Fatalf("retried task = %s", describe(retried))
			}
			if _, err := e.svc.Retry(e.ctx, tk.ID); !errors.Is(err, task.ErrConflict) {
				t.Fatalf("second Retry of a live task: err = %v, want ErrConflict", err)
			}
			done := e.waitStatus(tk.ID, task.StatusCompleted)
			if done.Attempts != 3 || done.Retries != 1 || !sameJSON(done.Result, `{"answer":"ok"}`) {
				t.Fatalf("completed retried task = %s", describe(done))
			}
			// Both runs' results are in the results queue, under distinct ids.
			for _, n := range []int{1, 2} {
				if _, err := e.results.GetJob(e.ctx, taskqueue.ResultJobID(tk.ID.String(), n)); err != nil {
					t.Errorf("result job %d: %v", n, err)
				}
			}
			// A completed task cannot be retried.
			if _, err := e.svc.Retry(e.ctx, tk.ID); !errors.Is(err, task.ErrConflict) {
				t.Fatalf("Retry of a completed task: err = %v, want ErrConflict", err)
			}
		})
	}
}

// TestRetryAfterJobCleaned: the old job is gone from Redis (cleaned); the
// retry adds a new one whose attempts start after the task's.
func TestRetryAfterJobCleaned(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind, dispatch.EnqueuerOptions{Attempts: 1})
			e.listener()
			e.consumer(dispatch.ResultsOptions{})
			var healthy atomic.Bool
			e.taskWorker("w1", 1, execFunc(func(ctx context.Context, in executor.Input) (executor.Output, error) {
				if !healthy.Load() {
					return executor.Output{}, errors.New("broken")
				}
				return executor.Output{Result: json.RawMessage(`2`)}, nil
			}))
			tk := e.create(1)[0]
			e.waitTask(tk.ID, "failed", func(tk *task.Task) bool { return tk.Status == task.StatusFailed && tk.Attempts == 1 })
			if err := e.tasks.Remove(e.ctx, tk.ID.String()); err != nil {
				t.Fatal(err)
			}
			healthy.Store(true)
			if _, err := e.svc.Retry(e.ctx, tk.ID); err != nil {
				t.Fatalf("Retry: %v", err)
			}
			done := e.waitStatus(tk.ID, task.StatusCompleted)
			if done.Attempts != 2 || done.Retries != 1 || !sameJSON(done.Result, `2`) {
				t.Fatalf("completed = %s", describe(done))
			}
		})
	}
}

// TestRetryWhileOldJobActive: a task cancelled while its worker still
// holds the job cannot be retried until the job leaves active (409); then
// it can, and the worker's late result of the old run is not taken for the
// new run's.
func TestRetryWhileOldJobActive(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{Attempts: 1})
	e.listener()
	e.consumer(dispatch.ResultsOptions{})
	release := make(chan struct{})
	var runs atomic.Int32
	e.worker("stubborn", 1, func(ctx context.Context, job *bullmq.Job) (any, error) {
		if runs.Add(1) == 1 {
			<-release // ignores the cancel request
			e.postResult(resultOf(t, job, "stubborn", "completed", "old run", ""))
			return "old", nil
		}
		off := taskqueue.ParseAttemptOffset(job.Data)
		r := resultOf(t, job, "stubborn", "completed", "new run", "")
		if _, err := e.results.Add(e.ctx, taskqueue.ResultJobName, r,
			&bullmq.JobOptions{JobID: taskqueue.ResultJobID(r.TaskID, off+job.AttemptsMade)}); err != nil {
			return nil, err
		}
		return "new", nil
	})
	tk := e.create(1)[0]
	e.waitStatus(tk.ID, task.StatusRunning)
	if _, err := e.svc.Cancel(e.ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Retry(e.ctx, tk.ID); !errors.Is(err, task.ErrConflict) {
		t.Fatalf("Retry while the old job is active: err = %v, want ErrConflict", err)
	}
	if got := e.get(tk.ID); got.Status != task.StatusCancelled || got.Retries != 0 {
		t.Fatalf("refused retry changed the task: %s", describe(got))
	}
	close(release)
	e.waitTask(tk.ID, "late result recorded", func(tk *task.Task) bool { return sameJSON(tk.Result, `"old run"`) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := e.svc.Retry(e.ctx, tk.ID)
		if err == nil {
			break
		}
		if !errors.Is(err, task.ErrConflict) || time.Now().After(deadline) {
			t.Fatalf("Retry after the old job finished: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // the job leaves active just after the late result
	}
	done := e.waitStatus(tk.ID, task.StatusCompleted)
	if !sameJSON(done.Result, `"new run"`) || done.Attempts != 2 || done.Retries != 1 {
		t.Fatalf("completed = %s", describe(done))
	}
}

// TestPriorityOrder: tasks queued with priorities (and some without) are
// taken by a single worker (concurrency 1) in BullMQ's order: tasks
// without priority first, in FIFO order, then by priority (1 first),
// FIFO among equal priorities.
func TestPriorityOrder(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) { testPriorityOrder(t, kind) })
	}
}

func testPriorityOrder(t *testing.T, kind string) {
	e := newEnv(t, kind, dispatch.EnqueuerOptions{})
	prio := func(p int) *int { return &p }
	specs := []struct {
		name string
		p    *int
	}{
		{"p5", prio(5)}, {"none-a", nil}, {"p1", prio(1)}, {"max", prio(task.MaxPriority)},
		{"p3-a", prio(3)}, {"none-b", nil}, {"p3-b", prio(3)}, {"p2", prio(2)},
	}
	for _, s := range specs {
		if _, err := e.svc.Create(e.ctx, task.NewTask{Code: "c", Prompt: s.name, Priority: s.p}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu    sync.Mutex
		order []string
	)
	e.worker("single", 1, func(ctx context.Context, job *bullmq.Job) (any, error) {
		mu.Lock()
		order = append(order, jobData(t, job).Prompt)
		mu.Unlock()
		return nil, nil
	})
	want := []string{"none-a", "none-b", "p1", "p2", "p3-a", "p3-b", "p5", "max"}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(order)
		mu.Unlock()
		if n == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker ran %d of %d tasks", n, len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("run order %v, want %v", order, want)
		}
	}
}

func TestMaxPriorityIsBullMQs(t *testing.T) {
	if task.MaxPriority != bullmq.MaxPriority {
		t.Fatalf("task.MaxPriority = %d, bullmq.MaxPriority = %d", task.MaxPriority, bullmq.MaxPriority)
	}
}

// hookReceiver is a loopback webhook target: it answers failFirst
// requests with 503, then 200, and verifies every request's signature
// with the Standard Webhooks reference library.
type hookReceiver struct {
	t         *testing.T
	verifier  *standardwebhooks.Webhook
	failFirst int

	mu       sync.Mutex
	requests []hookRequest
}

type hookRequest struct {
	id, timestamp string
	body          []byte
	verifyErr     error
	status        int
}

func newHookReceiver(t *testing.T, secret string, failFirst int) (*hookReceiver, string) {
	t.Helper()
	v, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{t: t, verifier: v, failFirst: failFirst}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL + "/hooks/tasks"
}

func (r *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	hr := hookRequest{id: req.Header.Get(webhook.HeaderID), timestamp: req.Header.Get(webhook.HeaderTimestamp),
		body: body, verifyErr: r.verifier.Verify(body, req.Header), status: http.StatusOK}
	if len(r.requests) < r.failFirst {
		hr.status = http.StatusServiceUnavailable
	}
	r.requests = append(r.requests, hr)
	w.WriteHeader(hr.status)
}

func (r *hookReceiver) snapshot() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookRequest(nil), r.requests...)
}

// newSecret returns a Standard Webhooks secret and its key.
func newSecret(t *testing.T) (string, []byte) {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return webhook.SecretPrefix + base64.StdEncoding.EncodeToString(key), key
}

// webhookEnv is an env whose service has webhooks and whose webhook relay
// and deliverer run with sender options so.
func webhookEnv(t *testing.T, kind string, so webhook.SenderOptions, wo dispatch.WebhookOptions) *env {
	t.Helper()
	e := newEnv(t, kind, dispatch.EnqueuerOptions{Attempts: 1})
	e.svc = task.NewService(e.store, task.ServiceOptions{Enqueuer: e.enqueuer, Logger: e.log, GlobalWebhook: wo.URL != "",
		CheckCallbackURL: func(u string) error { return webhook.CheckURL(u, so.AllowPrivate) }})
	sender, err := webhook.NewSender(so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sender.Close)
	hooks, err := bullmq.NewQueue(e.client, e.names.Webhooks(), &bullmq.QueueOptions{Prefix: e.names.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hooks.Obliterate(ctx, true)
	})
	wo.Sender, wo.Logger = sender, e.log
	wo.RelayInterval = 50 * time.Millisecond
	relay, err := dispatch.NewWebhookRelay(hooks, e.svc, wo)
	if err != nil {
		t.Fatal(err)
	}
	deliverer, err := dispatch.NewWebhookDeliverer(e.client, e.svc, e.names, wo)
	if err != nil {
		t.Fatal(err)
	}
	e.run("webhook relay", relay)
	e.run("webhook deliverer", deliverer)
	return e
}

// TestWebhookRetriedUntilDelivered: a receiver that fails twice (503) and
// then answers 200 gets the notification three times, with one webhook-id
// and a valid signature each time; the delivery state on the task follows.
func TestWebhookRetriedUntilDelivered(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			secret, key := newSecret(t)
			rcv, url := newHookReceiver(t, secret, 2)
			e := webhookEnv(t, kind, webhook.SenderOptions{Key: key, Timeout: 5 * time.Second, AllowPrivate: true},
				dispatch.WebhookOptions{Attempts: 5, Backoff: 20 * time.Millisecond})
			e.listener()
			e.consumer(dispatch.ResultsOptions{})
			e.taskWorker("w1", 1, execFunc(func(ctx context.Context, in executor.Input) (executor.Output, error) {
				return executor.Output{Result: json.RawMessage(`{"answer":42}`)}, nil
			}))
			tk, err := e.svc.Create(e.ctx, task.NewTask{Code: "c", Prompt: "p", CallbackURL: url,
				Metadata: json.RawMessage(`{"ticket":"AAI-003"}`)})
			if err != nil {
				t.Fatal(err)
			}
			if tk.Webhook == nil || tk.Webhook.State != task.WebhookWaiting {
				t.Fatalf("created task webhook = %+v, want waiting", tk.Webhook)
			}
			got := e.waitTask(tk.ID, "webhook delivered", func(tk *task.Task) bool {
				return tk.Webhook != nil && tk.Webhook.State == task.WebhookDelivered
			})
			w := got.Webhook
			if w.Attempts != 3 || w.LastStatus == nil || *w.LastStatus != 200 || w.LastError != nil || w.DeliveredAt == nil {
				t.Fatalf("delivery state = %+v", w)
			}
			reqs := rcv.snapshot()
			if len(reqs) != 3 {
				t.Fatalf("receiver got %d requests, want 3", len(reqs))
			}
			wantID := dispatch.WebhookJobID(tk.ID, 0, task.StatusCompleted)
			for i, r := range reqs {
				if r.verifyErr != nil || r.id != wantID || string(r.body) != string(reqs[0].body) {
					t.Errorf("request %d: id %q (want %q), signature %v, same body %v", i, r.id, wantID, r.verifyErr,
						string(r.body) == string(reqs[0].body))
				}
			}
			var msg task.Notification
			if err := json.Unmarshal(reqs[2].body, &msg); err != nil {
				t.Fatal(err)
			}
			d := msg.Data
			if msg.Type != "task.completed" || d.ID != tk.ID || d.Status != task.StatusCompleted || !sameJSON(d.Result, `{"answer":42}`) ||
				d.ErrorMessage != nil || d.Attempts != 1 || d.ExecutionTime == nil || !sameJSON(d.Metadata, `{"ticket":"AAI-003"}`) ||
				d.CompletedAt == nil || !msg.Timestamp.Equal(*d.CompletedAt) {
				t.Fatalf("notification = %s", reqs[2].body)
			}
		})
	}
}

// TestWebhookGlobalTargetAndFailure: a task without callback goes to the
// global URL; a target that keeps failing ends failed after the attempts,
// with the last status and error on the task; a cancelled task notifies
// too.
func TestWebhookGlobalTargetAndFailure(t *testing.T) {
	secret, key := newSecret(t)
	rcv, url := newHookReceiver(t, secret, 1000)
	e := webhookEnv(t, "sqlite", webhook.SenderOptions{Key: key, Timeout: 5 * time.Second, AllowPrivate: true},
		dispatch.WebhookOptions{URL: url, Attempts: 3, Backoff: 10 * time.Millisecond})
	tk, err := e.svc.Create(e.ctx, task.NewTask{Code: "c", Prompt: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Cancel(e.ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	got := e.waitTask(tk.ID, "webhook failed", func(tk *task.Task) bool {
		return tk.Webhook != nil && tk.Webhook.State == task.WebhookFailed
	})
	if w := got.Webhook; w.Attempts != 3 || w.LastStatus == nil || *w.LastStatus != 503 || w.LastError == nil || w.DeliveredAt != nil {
		t.Fatalf("failed delivery state = %+v", w)
	}
	reqs := rcv.snapshot()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	var msg task.Notification
	if err := json.Unmarshal(reqs[0].body, &msg); err != nil || msg.Type != "task.cancelled" || !sameJSON(msg.Data.Result, `null`) {
		t.Fatalf("notification %s (%v)", reqs[0].body, err)
	}
}

// TestWebhookRefusedAtConnect: without WEBHOOK_ALLOW_PRIVATE, a callback
// URL that names a host resolving to loopback (here "localhost", which the
// create-time check would refuse too; the connect-time check is what
// stops a DNS name that rebinds) is refused when the deliverer connects:
// the delivery fails at once and the receiver gets nothing.
func TestWebhookRefusedAtConnect(t *testing.T) {
	secret, key := newSecret(t)
	rcv, url := newHookReceiver(t, secret, 0)
	e := webhookEnv(t, "sqlite", webhook.SenderOptions{Key: key, Timeout: 5 * time.Second},
		dispatch.WebhookOptions{Attempts: 5, Backoff: 10 * time.Millisecond})
	port := url[len("http://127.0.0.1"):]
	// The create-time check refuses loopback names and addresses…
	for _, u := range []string{url, "http://localhost" + port} {
		if _, err := e.svc.Create(e.ctx, task.NewTask{Code: "c", Prompt: "p", CallbackURL: u}); !errors.Is(err, task.ErrInvalid) {
			t.Fatalf("Create with callback %s: err = %v, want a validation error", u, err)
		}
	}
	// …so store one directly, as a name that resolved elsewhere at create
	// time and to loopback when delivering would be.
	at := time.Now()
	cb := "http://localhost" + port
	tk := &task.Task{ID: mustUUIDv7(t), Code: "c", Prompt: "p", Timeout: 1000, Status: task.StatusPending,
		CreatedAt: at, UpdatedAt: at, CallbackURL: &cb, Webhook: &task.WebhookDelivery{State: task.WebhookWaiting}}
	if err := e.store.Create(e.ctx, tk); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Apply(e.ctx, task.MarkFailed(tk.ID, task.Outcome{ErrorMessage: "x"}, at)); err != nil {
		t.Fatal(err)
	}
	got := e.waitTask(tk.ID, "webhook refused", func(tk *task.Task) bool {
		return tk.Webhook != nil && tk.Webhook.State == task.WebhookFailed
	})
	if w := got.Webhook; w.Attempts != 1 || w.LastStatus != nil || w.LastError == nil {
		t.Fatalf("refused delivery state = %+v", w)
	}
	if n := len(rcv.snapshot()); n != 0 {
		t.Fatalf("the loopback receiver got %d requests", n)
	}
}

// TestWebhookNoTarget: a due delivery with no callback and no global URL
// fails at once with NoTargetReason.
func TestWebhookNoTarget(t *testing.T) {
	_, key := newSecret(t)
	e := webhookEnv(t, "sqlite", webhook.SenderOptions{Key: key}, dispatch.WebhookOptions{})
	at := time.Now()
	tk := &task.Task{ID: mustUUIDv7(t), Code: "c", Prompt: "p", Timeout: 1000, Status: task.StatusQueued,
		CreatedAt: at, UpdatedAt: at, Webhook: &task.WebhookDelivery{State: task.WebhookWaiting}}
	if err := e.store.Create(e.ctx, tk); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Cancel(e.ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	got := e.waitTask(tk.ID, "webhook failed", func(tk *task.Task) bool {
		return tk.Webhook != nil && tk.Webhook.State == task.WebhookFailed
	})
	if got.Webhook.LastError == nil || *got.Webhook.LastError != dispatch.NoTargetReason {
		t.Fatalf("delivery state = %+v", got.Webhook)
	}
}

// TestOldRunEventsAfterRetry drives, by hand and in the worst order, the
// events and results of a run that a retry replaced: they arrive after the
// task was marked retried, with the old job still in Redis, with the new
// job added, or with no job at all (between the old job's removal and the
// new one's add). None of them touches the new run; a result of the new
// run still applies.
func TestOldRunEventsAfterRetry(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind, dispatch.EnqueuerOptions{Attempts: 1})
			l, err := dispatch.NewEventsListener(e.client, e.tasks, e.svc, e.names, dispatch.EventsOptions{Logger: e.log})
			if err != nil {
				t.Fatal(err)
			}
			consumer, err := dispatch.NewResultConsumer(e.client, e.svc, e.names, dispatch.ResultsOptions{Logger: e.log})
			if err != nil {
				t.Fatal(err)
			}
			// The first run fails for good on a worker.
			tk := e.create(1)[0]
			w, err := bullmq.NewWorker(e.client, e.names.Tasks(), func(ctx context.Context, job *bullmq.Job) (any, error) {
				return nil, errors.New("boom")
			}, &bullmq.WorkerOptions{Prefix: e.names.Prefix, Name: "w1", Logger: e.log})
			if err != nil {
				t.Fatal(err)
			}
			wctx, stopWorker := context.WithCancel(e.ctx)
			stopped := make(chan error, 1)
			go func() { stopped <- w.Run(wctx) }()
			deadline := time.Now().Add(10 * time.Second)
			for {
				if st, _ := e.tasks.GetJobState(e.ctx, tk.ID.String()); st == bullmq.StateFailed {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the job never failed")
				}
				time.Sleep(20 * time.Millisecond)
			}
			stopWorker() // the new run's job must stay waiting
			if err := <-stopped; err != nil {
				t.Fatal(err)
			}
			failedEv := bullmq.Event{ID: "1-0", Type: bullmq.EventFailed, JobID: tk.ID.String(), FailedReason: "boom"}
			if out, err := l.Apply(e.ctx, failedEv); err != nil || out != dispatch.EventApplied {
				t.Fatalf("failed event of the first run: %s, %v", out, err)
			}
			oldResult := func(id string) *bullmq.Job {
				msg := "boom"
				data, _ := json.Marshal(taskqueue.Result{TaskID: tk.ID.String(), WorkerID: "w1", Status: taskqueue.ResultFailed, ErrorMessage: &msg})
				return &bullmq.Job{ID: id, Data: data}
			}
			expectQueued := func(step string) {
				t.Helper()
				if got := e.get(tk.ID); got.Status != task.StatusQueued || got.Retries != 1 {
					t.Fatalf("%s: the new run changed: %s", step, describe(got))
				}
			}
			// Marked retried, the old job still in Redis (the add comes next).
			e.svc = task.NewService(e.store, task.ServiceOptions{Logger: e.log}) // no enqueuer: stays pending
			if _, err := e.svc.Retry(e.ctx, tk.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.Apply(e.ctx, task.MarkQueued(tk.ID, time.Now())); err != nil {
				t.Fatal(err)
			}
			if out, err := l.Apply(e.ctx, failedEv); err != nil || out != dispatch.EventStale {
				t.Fatalf("old failed event, old job in Redis: %s, %v; want stale", out, err)
			}
			// Old results are not applied (dropped as stale, or rejected as
			// not matching the job: a dead letter); which does not matter.
			_, _ = consumer.Process(e.ctx, oldResult("auto-1"))
			expectQueued("old job in Redis")
			// No job at all.
			if err := e.tasks.Remove(e.ctx, tk.ID.String()); err != nil {
				t.Fatal(err)
			}
			if out, err := l.Apply(e.ctx, failedEv); err != nil || out != dispatch.EventGone {
				t.Fatalf("old failed event, no job: %s, %v; want gone", out, err)
			}
			for _, id := range []string{"auto-2", taskqueue.ResultJobID(tk.ID.String(), 0)} {
				_, _ = consumer.Process(e.ctx, oldResult(id))
			}
			expectQueued("no job")
			// The new run's job is added: old events read it and stay stale.
			fresh := e.get(tk.ID)
			if err := e.enqueuer.Enqueue(e.ctx, fresh); err != nil {
				t.Fatal(err)
			}
			if out, err := l.Apply(e.ctx, failedEv); err != nil || out != dispatch.EventStale {
				t.Fatalf("old failed event, new job: %s, %v; want stale", out, err)
			}
			_, _ = consumer.Process(e.ctx, oldResult("auto-3"))
			expectQueued("new job")
			// The new run: a worker takes the new job and posts its result
			// under the contract's id, which continues the task's attempts.
			resultID := make(chan string, 1)
			w2, err := bullmq.NewWorker(e.client, e.names.Tasks(), func(ctx context.Context, job *bullmq.Job) (any, error) {
				off := taskqueue.ParseAttemptOffset(job.Data)
				id := taskqueue.ResultJobID(tk.ID.String(), off+job.AttemptsMade)
				r := taskqueue.Result{TaskID: tk.ID.String(), WorkerID: "w2", Status: taskqueue.ResultCompleted, Result: json.RawMessage(`7`)}
				if _, err := e.results.Add(ctx, taskqueue.ResultJobName, r, &bullmq.JobOptions{JobID: id}); err != nil {
					return nil, err
				}
				resultID <- id
				return taskqueue.ReturnValue{TaskID: tk.ID.String(), ResultJobID: id}, nil
			}, &bullmq.WorkerOptions{Prefix: e.names.Prefix, Name: "w2", Logger: e.log})
			if err != nil {
				t.Fatal(err)
			}
			e.run("worker w2", w2)
			var rid string
			select {
			case rid = <-resultID:
			case <-time.After(10 * time.Second):
				t.Fatal("the new run's job was not taken")
			}
			if rid != taskqueue.ResultJobID(tk.ID.String(), 1) {
				t.Fatalf("new run's result id %s, want attempt offset 1 + attemptsMade 0", rid)
			}
			rj, err := e.results.GetJob(e.ctx, rid)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := consumer.Process(e.ctx, rj); err != nil {
				t.Fatal(err)
			}
			if got := e.get(tk.ID); got.Status != task.StatusCompleted || got.Attempts != 2 || !sameJSON(got.Result, `7`) {
				t.Fatalf("new run's result: %s", describe(got))
			}
		})
	}
}
