package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// taskJobOpts are the job options of the seed's orchestrator queue.
var taskJobOpts = map[string]any{
	"attempts":         3,
	"backoff":          map[string]any{"type": "exponential", "delay": 2000},
	"removeOnComplete": map[string]any{"age": 3600, "count": 1000},
}

// TestTaskWorker proves that our task worker binary (cmd/worker) is a
// drop-in BullMQ worker: it runs "execute-task" jobs added by the official
// Node Queue, posts one result per task on "<queue>-results", leaves the task
// jobs completed as the official Queue sees them, and shares a queue with an
// official Node Worker, every job processed exactly once.
func TestTaskWorker(t *testing.T) {
	testenv.NodeDir(t)
	testenv.RedisAddr(t)
	bin := buildTaskWorker(t)
	for _, v := range versions {
		t.Run("NodeProducer/v"+v, func(t *testing.T) { testTaskWorkerNodeProducer(t, bin, v) })
		t.Run("SharedQueue/v"+v, func(t *testing.T) { testTaskWorkerSharedQueue(t, bin, v) })
	}
}

// testTaskWorkerNodeProducer: the official Queue adds 20 tasks; the Go task
// worker runs them with /bin/cat (which echoes the job data as the result).
func testTaskWorkerNodeProducer(t *testing.T, bin, version string) {
	const n = 20
	e := newEnv(t)
	name := e.queue("taskw")
	results := name + "-results"
	e.cleanupQueue(results)
	workerID := "go-task-" + version

	tasks, ids := taskJobs(n)
	added := e.ops(name, version, op("addBulk", "jobs", tasks))
	var got []string
	mustUnmarshal(t, added[0], &got)
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("Node addBulk ids = %v, want the task ids %v", got, ids)
	}

	w := startTaskWorker(t, bin, e, name, workerID, 2)
	w.waitMsg(15*time.Second, "worker started", 1)
	ctx := ctxT(t)
	testenv.Eventually(t, 20*time.Second, "task jobs completed and results posted", func() error {
		done, err := e.rdb.ZCard(ctx, e.key(name, "completed")).Result()
		if err != nil {
			return err
		}
		posted, err := e.rdb.LLen(ctx, e.key(results, "wait")).Result()
		if err != nil {
			return err
		}
		if done != n || posted != n {
			return fmt.Errorf("completed %d, results %d, want %d", done, posted, n)
		}
		return nil
	})

	// Exactly one result job per task, with the agreed id.
	posted, err := e.rdb.LRange(ctx, e.key(results, "wait"), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	wantResults := make([]string, n)
	for i, id := range ids {
		wantResults[i] = id + "-result-0"
	}
	sort.Strings(posted)
	sorted := append([]string(nil), wantResults...)
	sort.Strings(sorted)
	if strings.Join(posted, ",") != strings.Join(sorted, ",") {
		t.Errorf("result job ids = %v\nwant %v", posted, sorted)
	}
	if starts := w.taskStarts(); len(starts) != n {
		t.Errorf("Go task worker started %d runs, want %d: %v", len(starts), n, starts)
	}

	// The official Queue reads the task jobs as completed by our worker.
	states, jobs, counts := e.nodeView(name, version, ids)
	for i, id := range ids {
		j := jobs[id]
		if states[id] != "completed" || j == nil {
			t.Errorf("task %s: Node state %q, job %+v; want completed", id, states[id], j)
			continue
		}
		if j.ProcessedBy != workerID || j.AttemptsMade != 1 || j.FinishedOn == 0 || j.Name != "execute-task" {
			t.Errorf("task %s: Node sees processedBy %q attemptsMade %d finishedOn %d name %q", id, j.ProcessedBy, j.AttemptsMade, j.FinishedOn, j.Name)
		}
		var opts struct {
			Attempts int `json:"attempts"`
			Backoff  struct {
				Type  string `json:"type"`
				Delay int    `json:"delay"`
			} `json:"backoff"`
		}
		if err := json.Unmarshal(j.Opts, &opts); err != nil || opts.Attempts != 3 || opts.Backoff.Type != "exponential" || opts.Backoff.Delay != 2000 {
			t.Errorf("task %s: opts %s (%v), want the seed's attempts and backoff", id, j.Opts, err)
		}
		var rv struct {
			TaskID        string `json:"taskId"`
			ResultJobID   string `json:"resultJobId"`
			ExecutionTime *int64 `json:"executionTime"`
		}
		if err := json.Unmarshal(j.ReturnValue, &rv); err != nil || rv.TaskID != id || rv.ResultJobID != wantResults[i] || rv.ExecutionTime == nil {
			t.Errorf("task %s: returnvalue %s (%v)", id, j.ReturnValue, err)
		}
	}
	checkOnlyCompleted(t, counts, n)

	// The official Queue reads the result jobs, in the agreed shape.
	var ops []map[string]any
	for _, rid := range wantResults {
		ops = append(ops, op("getJob", "id", rid))
	}
	res := e.ops(results, version, ops...)
	for i, raw := range res {
		var j nodeJob
		mustUnmarshal(t, raw, &j)
		if j.ID != wantResults[i] || j.Name != "task-result" {
			t.Errorf("result %s: Node getJob id %q name %q", wantResults[i], j.ID, j.Name)
			continue
		}
		var data map[string]json.RawMessage
		mustUnmarshal(t, j.Data, &data)
		var keys []string
		for k := range data {
			if k != "usage" && k != "sandbox" { // optional keys of taskqueue.Result
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		if got := strings.Join(keys, ","); got != "errorMessage,executionTime,result,status,taskId,workerId" {
			t.Errorf("result %s: data keys %s", j.ID, got)
		}
		var r struct {
			TaskID        string          `json:"taskId"`
			WorkerID      string          `json:"workerId"`
			Status        string          `json:"status"`
			Result        json.RawMessage `json:"result"`
			ErrorMessage  json.RawMessage `json:"errorMessage"`
			ExecutionTime *int64          `json:"executionTime"`
		}
		mustUnmarshal(t, j.Data, &r)
		wantData := mustJSON(t, tasks[i]["data"])
		if r.TaskID != ids[i] || r.WorkerID != workerID || r.Status != "completed" ||
			string(r.ErrorMessage) != "null" || r.ExecutionTime == nil || *r.ExecutionTime < 0 ||
			!jsonEqual(r.Result, wantData) {
			t.Errorf("result %s: data %s\nwant taskId %s, workerId %s, status completed, errorMessage null, result %s",
				j.ID, j.Data, ids[i], workerID, wantData)
		}
	}
}

// testTaskWorkerSharedQueue: the Go task worker and an official Node Worker
// on one queue share 200 tasks added by the official Queue; each runs once.
func testTaskWorkerSharedQueue(t *testing.T, bin, version string) {
	const n = 200
	e := newEnv(t)
	name := e.queue("taskshare")
	results := name + "-results"
	e.cleanupQueue(results)

	nw := e.startNode(t, "worker.js", e.cfg(name, version, map[string]any{
		"concurrency": 4, "behave": map[string]any{"sleepMs": 5},
	}))
	w := startTaskWorker(t, bin, e, name, "go-share-"+version, 4)
	nw.waitEv(15*time.Second, "ready", "")
	w.waitMsg(15*time.Second, "worker started", 1)

	tasks, ids := taskJobs(n)
	e.ops(name, version, op("addBulk", "jobs", tasks))
	ctx := ctxT(t)
	testenv.Eventually(t, 25*time.Second, "all tasks completed", func() error {
		done, err := e.rdb.ZCard(ctx, e.key(name, "completed")).Result()
		if err != nil || done != n {
			return fmt.Errorf("completed %d (%v), want %d", done, err, n)
		}
		return nil
	})

	// Jobs are completed in Redis before the workers' output reaches us:
	// wait until every start has been read.
	testenv.Eventually(t, 10*time.Second, "every start read", func() error {
		if got := nw.count(func(l line) bool { return l.Ev == "start" }) + len(w.taskStarts()); got < n {
			return fmt.Errorf("%d starts read, want %d", got, n)
		}
		return nil
	})
	runs := map[string]int{}
	by := map[string]int{}
	for _, l := range nw.snapshot() {
		if l.Ev == "start" {
			runs[l.ID]++
			by["node"]++
		}
	}
	goRuns := w.taskStarts()
	for _, id := range goRuns {
		runs[id]++
		by["go"]++
	}
	for _, id := range ids {
		if runs[id] != 1 {
			t.Errorf("task %s ran %d times", id, runs[id])
		}
	}
	if len(runs) != n {
		t.Errorf("%d distinct jobs ran, want %d", len(runs), n)
	}
	if by["go"] == 0 || by["node"] == 0 {
		t.Errorf("the queue was not shared: runs by worker %v", by)
	}
	t.Logf("runs by worker: %v", by)

	// One result per task the Go worker ran; none for the Node worker's.
	posted, err := e.rdb.LRange(ctx, e.key(results, "wait"), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, 0, len(goRuns))
	for _, id := range goRuns {
		want = append(want, id+"-result-0")
	}
	sort.Strings(want)
	sort.Strings(posted)
	if strings.Join(posted, ",") != strings.Join(want, ",") {
		t.Errorf("%d result jobs posted, want %d (one per Go run)", len(posted), len(want))
	}

	res := e.ops(name, version, op("getJobCounts"))
	var counts map[string]int64
	mustUnmarshal(t, res[0], &counts)
	checkOnlyCompleted(t, counts, n)
}

// checkOnlyCompleted checks Node's getJobCounts: n completed, nothing in any
// other state.
func checkOnlyCompleted(t *testing.T, counts map[string]int64, n int64) {
	t.Helper()
	for state, c := range counts {
		want := int64(0)
		if state == "completed" {
			want = n
		}
		if c != want {
			t.Errorf("Node getJobCounts: %s = %d, want %d (all counts %v)", state, c, want, counts)
		}
	}
	if _, ok := counts["completed"]; !ok {
		t.Errorf("Node getJobCounts has no completed count: %v", counts)
	}
}

// taskJobs returns n addBulk entries shaped like the orchestrator's task jobs
// (job id = task id) and their ids.
func taskJobs(n int) ([]map[string]any, []string) {
	jobs := make([]map[string]any, n)
	ids := make([]string, n)
	for i := range jobs {
		id := uuid.NewString()
		opts := map[string]any{"jobId": id}
		for k, v := range taskJobOpts {
			opts[k] = v
		}
		jobs[i] = map[string]any{
			"name": "execute-task",
			"data": map[string]any{
				"taskId":  id,
				"code":    fmt.Sprintf("print(%d)", i),
				"prompt":  fmt.Sprintf("task %d: say hello", i),
				"timeout": 10000,
			},
			"opts": opts,
		}
		ids[i] = id
	}
	return jobs, ids
}

// buildTaskWorker builds cmd/worker (with -race when the suite runs with
// -race) into a temporary directory removed at the end of t.
func buildTaskWorker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "worker")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/agentorch/orchestrator/cmd/worker")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput(); err != nil {
		t.Fatalf("build cmd/worker: %v\n%s", err, out)
	}
	return bin
}

// taskWorker is a running cmd/worker process whose JSON log lines (on
// stderr) are collected.
type taskWorker struct {
	t      testing.TB
	cmd    *exec.Cmd
	exited chan struct{}

	mu      sync.Mutex
	logs    []map[string]any
	raw     strings.Builder
	changed chan struct{} // closed and replaced when a line arrives or the process ends
	eof     bool
}

// startTaskWorker runs bin on queue with the command executor /bin/cat and
// the given WORKER_ID and concurrency. It is stopped (SIGTERM, then SIGKILL
// after 5 s) at cleanup.
func startTaskWorker(tb testing.TB, bin string, e *env, queue, workerID string, concurrency int) *taskWorker {
	tb.Helper()
	var environ []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "WORKER_") || strings.HasPrefix(k, "QUEUE_") || strings.HasPrefix(k, "REDIS_") ||
			strings.HasPrefix(k, "LOG_") || strings.HasPrefix(k, "CLAUDE_") || strings.HasPrefix(k, "ANTHROPIC_") {
			continue
		}
		environ = append(environ, kv)
	}
	environ = append(environ,
		"REDIS_URL="+e.url,
		"QUEUE_NAME="+queue,
		"QUEUE_PREFIX="+e.prefix,
		"WORKER_EXECUTOR=command",
		"WORKER_COMMAND=/bin/cat",
		"WORKER_ID="+workerID,
		fmt.Sprintf("WORKER_CONCURRENCY=%d", concurrency),
		"WORKER_SHUTDOWN_TIMEOUT=3s",
		"LOG_FORMAT=json",
		"LOG_LEVEL=info",
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = environ
	stderr, err := cmd.StderrPipe()
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	w := &taskWorker{t: tb, cmd: cmd, exited: make(chan struct{}), changed: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("start cmd/worker: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var rec map[string]any
			_ = json.Unmarshal(sc.Bytes(), &rec) // non-JSON lines (a race report) are kept raw only
			w.mu.Lock()
			w.raw.Write(sc.Bytes())
			w.raw.WriteByte('\n')
			if rec != nil {
				w.logs = append(w.logs, rec)
			}
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
		}
		_ = cmd.Wait()
		w.mu.Lock()
		w.eof = true
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
		close(w.exited)
		cancel()
	}()
	tb.Cleanup(func() {
		w.stop()
		out := w.output()
		if strings.Contains(out, "WARNING: DATA RACE") {
			tb.Errorf("cmd/worker reported a data race")
		}
		if tb.Failed() {
			tb.Logf("cmd/worker %s log:\n%s", workerID, testenv.Tail(out, 4000))
		}
	})
	return w
}

func (w *taskWorker) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.raw.String()
}

// waitMsg waits until n log records with message msg have been seen.
func (w *taskWorker) waitMsg(timeout time.Duration, msg string, n int) {
	w.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		got := 0
		for _, r := range w.logs {
			if r["msg"] == msg {
				got++
			}
		}
		changed, eof := w.changed, w.eof
		w.mu.Unlock()
		if got >= n {
			return
		}
		if eof {
			w.t.Fatalf("cmd/worker exited while waiting for %d %q (%d seen); log:\n%s", n, msg, got, testenv.Tail(w.output(), 3000))
		}
		select {
		case <-changed:
		case <-deadline.C:
			w.t.Fatalf("cmd/worker: %d of %d %q within %s", got, n, msg, timeout)
		}
	}
}

// taskStarts returns the job ids of the "task started" records so far, one
// per run.
func (w *taskWorker) taskStarts() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ids []string
	for _, r := range w.logs {
		if r["msg"] == "task started" {
			id, _ := r["job_id"].(string)
			ids = append(ids, id)
		}
	}
	return ids
}

// stop sends SIGTERM and kills the process if it has not ended within 5 s.
func (w *taskWorker) stop() {
	select {
	case <-w.exited:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
	case <-time.After(5 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.exited
	}
}
