package bullmq_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
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

// Follow a queue's events, resuming after the last one handled. This example
// is compile-only: it runs until interrupted.
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
