package dispatch_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/testenv"
	"github.com/agentorch/orchestrator/internal/webhook"
)

// TestLoopsStop: every loop returns nil soon after its context is
// cancelled, and leaves no goroutine behind.
func TestLoopsStop(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{})
	before := runtime.NumGoroutine()
	relay, err := dispatch.NewRelay(e.svc, dispatch.RelayOptions{Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	events, err := dispatch.NewEventsListener(e.client, e.tasks, e.svc, e.names, dispatch.EventsOptions{Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := dispatch.NewReconciler(e.tasks, e.results, e.svc, dispatch.ReconcilerOptions{Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	res, err := dispatch.NewResultConsumer(e.client, e.svc, e.names, dispatch.ResultsOptions{Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := dispatch.NewCleaner([]*bullmq.Queue{e.tasks, e.results}, dispatch.CleanerOptions{Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	sender, err := webhook.NewSender(webhook.SenderOptions{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	wo := dispatch.WebhookOptions{Sender: sender, Logger: e.log}
	wrelay, err := dispatch.NewWebhookRelay(e.tasks, e.svc, wo)
	if err != nil {
		t.Fatal(err)
	}
	deliverer, err := dispatch.NewWebhookDeliverer(e.client, e.svc, e.names, wo)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := dispatch.NewKeyPurger(e.svc, dispatch.KeyPurgerOptions{Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	loops := []interface{ Run(context.Context) error }{relay, events, rec, res, cl, wrelay, deliverer, keys}
	errs := make(chan error, len(loops))
	for _, l := range loops {
		go func() { errs <- l.Run(ctx) }()
	}
	e.create(3) // some work while they run
	cancel()
	deadline := time.After(10 * time.Second)
	for range loops {
		select {
		case err := <-errs:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-deadline:
			t.Fatal("a loop did not stop within 10s of cancel")
		}
	}
	// Goroutines of the loops are gone (allow the client's own).
	testenv.Eventually(t, 5*time.Second, "the loops' goroutines to end", func() error {
		if n := runtime.NumGoroutine(); n > before+2 {
			buf := make([]byte, 1<<16)
			return fmt.Errorf("%d before, %d after stop\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		return nil
	})
}
