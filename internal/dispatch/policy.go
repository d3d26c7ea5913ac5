package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrEvictionPolicy means Redis' maxmemory-policy is not noeviction and the
// operator did not accept it (AllowEviction, REDIS_ALLOW_EVICTION): Redis
// may evict queue keys under memory pressure and lose jobs (BullMQ's own
// requirement), so the orchestrator adds no job to it.
var ErrEvictionPolicy = errors.New("redis maxmemory-policy is not noeviction")

// Policy re-check periods: a good policy is trusted this long, a bad one
// (or an unknown one) is read again after this long, so that fixing it
// with CONFIG SET takes effect without a restart.
const (
	policyGoodFor = 30 * time.Second
	policyBadFor  = 5 * time.Second
)

// policyGate checks Redis' maxmemory-policy and refuses job adds while it
// is not noeviction, unless eviction is allowed. It caches what it read
// (see policyGoodFor, policyBadFor). Safe for concurrent use.
//
// The rule: at start the orchestrator reads the policy and refuses to
// start when it is bad (CheckEvictionPolicy); when Redis does not answer
// at start, it starts (tasks are accepted as pending) and the policy is
// read when Redis answers: while it is bad, no job is added (tasks stay
// pending, the relay retries them), /health is unhealthy and says why,
// and the loops that follow existing jobs (events, results, reconciler,
// cleaner) keep running. Once the policy is noeviction, adds resume.
type policyGate struct {
	client redis.UniversalClient
	allow  bool
	now    func() time.Time

	mu        sync.Mutex
	policy    string // "" when unknown
	checkedAt time.Time
}

func newPolicyGate(client redis.UniversalClient, allow bool) *policyGate {
	return &policyGate{client: client, allow: allow, now: time.Now}
}

// read reads the policy from Redis (INFO memory) and caches it.
func (g *policyGate) read(ctx context.Context) (string, error) {
	info, err := g.client.Info(ctx, "memory").Result()
	if err != nil {
		return "", fmt.Errorf("read redis maxmemory-policy: %w", err)
	}
	policy := infoField(info, "maxmemory_policy")
	g.mu.Lock()
	g.policy, g.checkedAt = policy, g.now()
	g.mu.Unlock()
	return policy, nil
}

// verdict says whether policy may be used: nil, or ErrEvictionPolicy.
func (g *policyGate) verdict(policy string) error {
	if policy == "" || policy == "noeviction" || g.allow {
		return nil
	}
	return fmt.Errorf("%w (it is %s): Redis may evict queue keys and lose jobs; set maxmemory-policy noeviction, "+
		"or REDIS_ALLOW_EVICTION=true to accept the risk", ErrEvictionPolicy, policy)
}

// Check reads the policy now and returns its verdict, or the error of a
// Redis that does not answer.
func (g *policyGate) Check(ctx context.Context) error {
	policy, err := g.read(ctx)
	if err != nil {
		return err
	}
	return g.verdict(policy)
}

// Allow is the Enqueuer's gate: ErrEvictionPolicy while the cached policy
// is bad, nil when it is good or allowed. A stale or unknown policy is read
// first; a Redis that does not answer is let through (the add fails on its
// own).
func (g *policyGate) Allow(ctx context.Context) error {
	if g.allow {
		return nil
	}
	g.mu.Lock()
	policy, age := g.policy, g.now().Sub(g.checkedAt)
	g.mu.Unlock()
	fresh := (policy == "noeviction" && age < policyGoodFor) || (policy != "" && policy != "noeviction" && age < policyBadFor)
	if !fresh {
		var err error
		if policy, err = g.read(ctx); err != nil {
			return nil
		}
	}
	return g.verdict(policy)
}
