package bullmq_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
)

// exampleClient connects to REDIS_URL, or to 127.0.0.1:6379.
func exampleClient() *redis.Client {
	if u := os.Getenv("REDIS_URL"); u != "" {
		if opt, err := redis.ParseURL(u); err == nil {
			return redis.NewClient(opt)
		}
	}
	return redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
}

// exampleQueueName returns a fresh queue name so examples never collide.
func exampleQueueName(base string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return base + "-example-" + hex.EncodeToString(b[:])
}

// Add a job with the options a task orchestrator typically uses, read it
// back, and remove the queue. Needs Redis (REDIS_URL or 127.0.0.1:6379).
func ExampleQueue_Add() {
	ctx := context.Background()
	client := exampleClient()
	defer client.Close()

	queue, err := bullmq.NewQueue(client, exampleQueueName("tasks"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer queue.Obliterate(ctx, true)

	job, err := queue.Add(ctx, "execute-task", map[string]string{"taskId": "t-1"}, &bullmq.JobOptions{
		JobID:            "t-1",
		Attempts:         3,
		Backoff:          &bullmq.Backoff{Type: "exponential", Delay: 2 * time.Second},
		RemoveOnComplete: bullmq.KeepFor(time.Hour, 1000),
	})
	if err != nil {
		log.Fatal(err)
	}
	stored, err := queue.GetJob(ctx, job.ID)
	if err != nil {
		log.Fatal(err)
	}
	state, _ := queue.GetJobState(ctx, job.ID)
	fmt.Println(stored.ID, stored.Name, string(stored.Data), state)
	fmt.Println(stored.Opts.Attempts, stored.Opts.Backoff.Type, stored.Opts.Backoff.Delay)

	// Adding the same id again is a no-op ("duplicated" event).
	_, _ = queue.Add(ctx, "execute-task", nil, &bullmq.JobOptions{JobID: "t-1"})
	n, _ := queue.Count(ctx)
	fmt.Println("jobs waiting:", n)

	// Output:
	// t-1 execute-task {"taskId":"t-1"} waiting
	// 3 exponential 2s
	// jobs waiting: 1
}

// Add many jobs in one round trip and count them by state.
func ExampleQueue_AddBulk() {
	ctx := context.Background()
	client := exampleClient()
	defer client.Close()

	queue, err := bullmq.NewQueue(client, exampleQueueName("bulk"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer queue.Obliterate(ctx, true)

	jobs := []bullmq.BulkJob{
		{Name: "a", Data: 1},
		{Name: "b", Data: 2, Opts: &bullmq.JobOptions{Priority: 1}},
		{Name: "c", Data: 3, Opts: &bullmq.JobOptions{Delay: time.Minute}},
	}
	if _, err := queue.AddBulk(ctx, jobs); err != nil {
		log.Fatal(err)
	}
	counts, err := queue.GetJobCounts(ctx, bullmq.StateWaiting, bullmq.StatePrioritized, bullmq.StateDelayed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(counts[bullmq.StateWaiting], counts[bullmq.StatePrioritized], counts[bullmq.StateDelayed])

	// Output:
	// 1 1 1
}

// Branch on a sentinel error.
func ExampleQueue_Remove() {
	ctx := context.Background()
	client := exampleClient()
	defer client.Close()

	queue, _ := bullmq.NewQueue(client, exampleQueueName("remove"), nil)
	err := queue.Remove(ctx, "no-such-job")
	fmt.Println(errors.Is(err, bullmq.ErrJobNotFound))

	// Output:
	// true
}

// Count jobs by state; with no state given, every state is counted.
func ExampleQueue_GetJobCounts() {
	ctx := context.Background()
	client := exampleClient()
	defer client.Close()

	queue, err := bullmq.NewQueue(client, exampleQueueName("counts"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer queue.Obliterate(ctx, true)

	for i := range 3 {
		if _, err := queue.Add(ctx, "task", map[string]int{"i": i}, nil); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := queue.Add(ctx, "later", nil, &bullmq.JobOptions{Delay: time.Hour}); err != nil {
		log.Fatal(err)
	}
	counts, err := queue.GetJobCounts(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range bullmq.AllStates {
		fmt.Printf("%s=%d\n", s, counts[s])
	}
	n, _ := queue.Count(ctx)
	fmt.Println("not started yet:", n)

	// Output:
	// active=0
	// completed=0
	// delayed=1
	// failed=0
	// paused=0
	// prioritized=0
	// waiting=3
	// waiting-children=0
	// not started yet: 4
}

// Watch a queue's events while a job is added. Run blocks until its context
// is cancelled; the handler sees the events in stream order.
func ExampleQueueEvents() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := exampleClient()
	defer client.Close()

	name := exampleQueueName("events")
	queue, err := bullmq.NewQueue(client, name, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer queue.Obliterate(context.Background(), true)

	// LastID "0" reads the stream from its start, so no event added before
	// Run gets going is missed; "$" (the default) would read only newer ones.
	events, err := bullmq.NewQueueEvents(client, name, &bullmq.QueueEventsOptions{LastID: "0"})
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- events.Run(ctx, func(ctx context.Context, ev bullmq.Event) error {
			switch ev.Type {
			case bullmq.EventAdded:
				fmt.Println(ev.Type, ev.JobID, ev.Name)
			case bullmq.EventDelayed:
				fmt.Println(ev.Type, ev.JobID)
				cancel() // the last event this example waits for
			default:
				fmt.Println(ev.Type, ev.JobID)
			}
			return nil // an error would make Run retry this event
		})
	}()

	if _, err := queue.Add(ctx, "now", nil, &bullmq.JobOptions{JobID: "job-1"}); err != nil {
		log.Fatal(err)
	}
	if _, err := queue.Add(ctx, "later", nil, &bullmq.JobOptions{JobID: "job-2", Delay: time.Hour}); err != nil {
		log.Fatal(err)
	}
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Events.LastID() can be saved to resume after a restart.

	// Output:
	// added job-1 now
	// waiting job-1
	// added job-2 later
	// delayed job-2
}

// Follow a production queue's events, resuming after the last one handled.
// This example is compile-only: it runs until interrupted.
func ExampleQueueEvents_Run() {
	ctx := context.Background()
	client := exampleClient()
	defer client.Close()

	events, err := bullmq.NewQueueEvents(client, "claude-tasks", &bullmq.QueueEventsOptions{
		LastID: "$", // or an id saved from Event.ID to resume after a restart
	})
	if err != nil {
		log.Fatal(err)
	}
	err = events.Run(ctx, func(ctx context.Context, ev bullmq.Event) error {
		switch ev.Type {
		case bullmq.EventCompleted:
			fmt.Println("job", ev.JobID, "returned", string(ev.ReturnValue))
		case bullmq.EventFailed:
			fmt.Println("job", ev.JobID, "failed:", ev.FailedReason)
		}
		return nil // an error would make Run retry this event
	})
	if err != nil {
		log.Fatal(err)
	}
}

// A Go producer, a Go worker and an observer on one queue: the worker runs
// the job and the observer sees its result in the "completed" event.
func ExampleWorker_Run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := exampleClient()
	defer client.Close()

	name := exampleQueueName("worker")
	queue, err := bullmq.NewQueue(client, name, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer queue.Obliterate(context.Background(), true)

	worker, err := bullmq.NewWorker(client, name, func(ctx context.Context, job *bullmq.Job) (any, error) {
		var in struct{ A, B int }
		if err := json.Unmarshal(job.Data, &in); err != nil {
			return nil, bullmq.Unrecoverable(err)
		}
		return map[string]int{"sum": in.A + in.B}, nil
	}, &bullmq.WorkerOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	events, err := bullmq.NewQueueEvents(client, name, &bullmq.QueueEventsOptions{LastID: "0"})
	if err != nil {
		log.Fatal(err)
	}
	completed := make(chan bullmq.Event, 1)
	eventsDone := make(chan error, 1)
	go func() {
		eventsDone <- events.Run(ctx, func(ctx context.Context, ev bullmq.Event) error {
			if ev.Type == bullmq.EventCompleted {
				completed <- ev
			}
			return nil
		})
	}()
	workerDone := make(chan error, 1)
	go func() { workerDone <- worker.Run(ctx) }()

	if _, err := queue.Add(ctx, "add", map[string]int{"A": 2, "B": 3}, &bullmq.JobOptions{JobID: "sum-1"}); err != nil {
		log.Fatal(err)
	}
	select {
	case ev := <-completed:
		fmt.Println(ev.JobID, string(ev.ReturnValue))
	case <-time.After(10 * time.Second):
		fmt.Println("timed out")
	}
	job, err := queue.GetJob(ctx, "sum-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.AttemptsMade, string(job.ReturnValue))

	if err := worker.Close(context.Background()); err != nil {
		log.Fatal(err)
	}
	if err := <-workerDone; err != nil {
		log.Fatal(err)
	}
	cancel()
	if err := <-eventsDone; err != nil {
		log.Fatal(err)
	}

	// Output:
	// sum-1 {"sum":5}
	// 1 {"sum":5}
}

// Retention policies in the three shapes the Node package accepts.
func ExampleKeepJobs() {
	for _, k := range []*bullmq.KeepJobs{bullmq.RemoveAll(), bullmq.KeepAll(), bullmq.KeepLast(100), bullmq.KeepFor(time.Hour, 1000)} {
		b, _ := k.MarshalJSON()
		fmt.Println(string(b))
	}
	// Output:
	// true
	// false
	// 100
	// {"age":3600,"count":1000}
}
