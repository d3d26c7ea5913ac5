package bullmq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
)

// A worker that processes "email" jobs of queue "mail", five at a time,
// until SIGTERM, then waits up to 30s for the jobs in flight.
func ExampleNewWorker() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()

	w, err := bullmq.NewWorker(client, "mail", func(ctx context.Context, job *bullmq.Job) (any, error) {
		var msg struct{ To, Subject string }
		if err := json.Unmarshal(job.Data, &msg); err != nil {
			// Retrying cannot fix bad data.
			return nil, bullmq.Unrecoverable(fmt.Errorf("decode job %s: %w", job.ID, err))
		}
		if err := job.UpdateProgress(ctx, 50); err != nil {
			return nil, err
		}
		// ... send the mail, honouring ctx ...
		return map[string]string{"sentTo": msg.To}, nil
	}, &bullmq.WorkerOptions{
		Name:             "mailer-1",
		Concurrency:      5,
		RemoveOnComplete: bullmq.KeepLast(1000),
		OnFailed: func(job *bullmq.Job, err error) {
			log.Printf("job %s attempt %d failed: %v", job.ID, job.AttemptsMade, err)
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.Close(closeCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			log.Print(err)
		}
	}()
	if err := w.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}
