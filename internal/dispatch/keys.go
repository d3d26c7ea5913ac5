package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/agentorch/orchestrator/internal/task"
)

// KeyPurgerOptions configures a KeyPurger. The zero value is valid.
type KeyPurgerOptions struct {
	// Interval is the time between purges. Defaults to 10 minutes.
	Interval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// KeyPurger deletes expired idempotency keys (older than the task
// service's IdempotencyTTL) from the database, periodically. An expired
// key no longer replays even before it is purged; the purge only keeps the
// table small. Several replicas may purge at once.
type KeyPurger struct {
	svc *task.Service
	o   KeyPurgerOptions
	log *slog.Logger
}

// NewKeyPurger returns a KeyPurger of the keys of svc.
func NewKeyPurger(svc *task.Service, o KeyPurgerOptions) (*KeyPurger, error) {
	if svc == nil {
		return nil, errors.New("new key purger: nil service")
	}
	if o.Interval < 0 {
		return nil, errors.New("new key purger: interval must not be negative")
	}
	if o.Interval == 0 {
		o.Interval = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &KeyPurger{svc: svc, o: o, log: o.Logger.With("loop", "idempotency-keys")}, nil
}

// Run purges every Interval until ctx is cancelled, then returns nil.
func (p *KeyPurger) Run(ctx context.Context) error {
	for {
		n, err := p.svc.PurgeIdempotencyKeys(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			p.log.WarnContext(ctx, "purge of expired idempotency keys failed", "err", err)
		case n > 0:
			p.log.InfoContext(ctx, "purged expired idempotency keys", "keys", n)
		}
		if !sleep(ctx, p.o.Interval) {
			return nil
		}
	}
}
