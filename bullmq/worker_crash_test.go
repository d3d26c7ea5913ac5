package bullmq

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

// crashQueueEnv names the queue the crash-test child worker consumes; when it
// is set, TestCrashWorkerProcess runs as that child instead of as a test.
const crashQueueEnv = "BULLMQ_CRASH_TEST_QUEUE"

// TestCrashWorkerProcess is the child side of TestWorkerCrashRecovery: a Go
// worker process that prints "START <id>" for each job, works 300ms on it,
// and runs until it is killed.
func TestCrashWorkerProcess(t *testing.T) {
	queue := os.Getenv(crashQueueEnv)
	if queue == "" {
		t.Skip("child process of TestWorkerCrashRecovery")
	}
	client := redis.NewClient(bullmqtest.RedisOptions(t))
	w, err := NewWorker(client, queue, func(ctx context.Context, j *Job) (any, error) {
		fmt.Printf("START %s\n", j.ID)
		select {
		case <-time.After(300 * time.Millisecond):
			return "child", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, &WorkerOptions{Concurrency: 2, LockDuration: 500 * time.Millisecond, StalledInterval: 150 * time.Millisecond,
		Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = w.Run(ctx)
}

// TestWorkerCrashRecovery kills a worker process with SIGKILL while it runs
// jobs and checks that another worker completes every job exactly once.
func TestWorkerCrashRecovery(t *testing.T) {
	if os.Getenv(crashQueueEnv) != "" {
		t.Skip("in the child process")
	}
	t.Parallel()
	e := newWorkerEnv(t, "w-crash")
	const n = 12
	var ids []string
	for i := range n {
		ids = append(ids, e.add("n", i, nil).ID)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWorkerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashQueueEnv+"="+e.name)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	started := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "START "); ok {
				started <- id
			}
		}
		close(started)
	}()
	// Let the child finish a few jobs, then kill it while it is mid-job.
	childStarted := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for len(childStarted) < 5 {
		select {
		case id, ok := <-started:
			if !ok {
				t.Fatal("child worker exited early")
			}
			childStarted[id] = true
		case <-deadline:
			t.Fatal("child worker did not start 5 jobs")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	ctx := context.Background()
	active, _ := e.client.LRange(ctx, e.k.active, 0, -1).Result()
	if len(active) == 0 {
		t.Fatal("no job was active when the child was killed")
	}
	t.Logf("killed child with jobs %v active", active)

	var runs atomic.Int32
	e.startWorker(func(ctx context.Context, j *Job) (any, error) {
		runs.Add(1)
		return "survivor", nil
	}, &WorkerOptions{Concurrency: 3, StalledInterval: 150 * time.Millisecond})
	for _, id := range ids {
		e.waitState(id, StateCompleted, 10*time.Second)
	}
	for _, id := range ids {
		if c := len(e.eventsOf("completed", id)); c != 1 {
			t.Errorf("job %s completed %d times", id, c)
		}
	}
	for _, id := range active {
		j := e.job(id)
		if string(j.ReturnValue) != `"survivor"` || j.StalledCount != 1 || j.AttemptsMade != 1 {
			t.Errorf("recovered job %s: returnvalue %s stc %d atm %d", id, j.ReturnValue, j.StalledCount, j.AttemptsMade)
		}
	}
	counts, err := e.q.GetJobCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[StateCompleted] != n || counts[StateActive] != 0 || counts[StateWaiting] != 0 || counts[StateFailed] != 0 {
		t.Errorf("counts after recovery %v", counts)
	}
}
