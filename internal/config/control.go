package config

import (
	"strings"
	"time"

	"github.com/agentorch/orchestrator/internal/webhook"
)

// Control holds the orchestrator settings of API key ownership, idempotent
// creates and webhooks. It is embedded in Orchestrator.
type Control struct {
	// IdempotencyTTL is how long an Idempotency-Key holds: the same key
	// with the same body within it returns the first task
	// (IDEMPOTENCY_TTL, default 24h), > 0.
	IdempotencyTTL time.Duration `env:"IDEMPOTENCY_TTL" envDefault:"24h"`

	// WebhookURL is the global webhook target: every task created while
	// it is set notifies it when it reaches a final status, unless the
	// task has its own callbackUrl (WEBHOOK_URL, default none). An http or
	// https URL; a loopback, private, link-local or metadata literal
	// address, or localhost, is refused unless WEBHOOK_ALLOW_PRIVATE.
	// Needs WEBHOOK_SECRET.
	WebhookURL string `env:"WEBHOOK_URL"`
	// WebhookSecret signs the notifications (Standard Webhooks):
	// "whsec_" and the base64 of a 24 to 64 byte key (WEBHOOK_SECRET,
	// default none). Without it webhooks are off: no WEBHOOK_URL, and a
	// callbackUrl on create is refused (422).
	WebhookSecret string `env:"WEBHOOK_SECRET"`
	// WebhookKey is WEBHOOK_SECRET decoded, filled by LoadOrchestrator.
	WebhookKey []byte `env:"-"`
	// WebhookAllowPrivate turns off the address policy of webhook targets
	// (at create and at connect time), for tests on loopback and private
	// networks (WEBHOOK_ALLOW_PRIVATE, default false).
	WebhookAllowPrivate bool `env:"WEBHOOK_ALLOW_PRIVATE" envDefault:"false"`
	// WebhookTimeout bounds one delivery attempt (WEBHOOK_TIMEOUT, default
	// 10s), > 0.
	WebhookTimeout time.Duration `env:"WEBHOOK_TIMEOUT" envDefault:"10s"`
	// WebhookAttempts is how many times a notification is tried before its
	// delivery fails (WEBHOOK_ATTEMPTS, default 10), ≥ 1.
	WebhookAttempts int `env:"WEBHOOK_ATTEMPTS" envDefault:"10"`
	// WebhookBackoff is the first delay of the exponential backoff between
	// attempts, then doubled each time (WEBHOOK_BACKOFF, default 2s), > 0.
	WebhookBackoff time.Duration `env:"WEBHOOK_BACKOFF" envDefault:"2s"`
	// WebhookConcurrency is how many notifications are posted at once
	// (WEBHOOK_CONCURRENCY, default 8), ≥ 1.
	WebhookConcurrency int `env:"WEBHOOK_CONCURRENCY" envDefault:"8"`
}

// APIKey is one API_KEYS entry parsed: "key" (a plain key: an admin
// without a name, as keys were before they had names), "name:key" (a key
// that owns the tasks it creates and sees only those) or "name:key:admin"
// (a named key that sees every task).
type APIKey struct {
	Name  string
	Key   string
	Admin bool
}

// Webhooks reports whether webhooks are on (WEBHOOK_SECRET is set).
func (c Control) Webhooks() bool { return len(c.WebhookKey) > 0 }

// parseAPIKeys parses the API_KEYS entries and records what is wrong,
// without echoing a key.
func parseAPIKeys(entries []string, p *problems) []APIKey {
	var keys []APIKey
	seen := map[string]bool{}
	for i, e := range entries {
		parts := strings.Split(e, ":")
		var k APIKey
		switch {
		case len(parts) == 1:
			k = APIKey{Key: parts[0], Admin: true}
		case len(parts) == 2:
			k = APIKey{Name: parts[0], Key: parts[1]}
		case len(parts) == 3 && parts[2] == "admin":
			k = APIKey{Name: parts[0], Key: parts[1], Admin: true}
		default:
			p.add("API_KEYS", "entry %d must be key, name:key or name:key:admin (a key must not contain ':')", i+1)
			continue
		}
		switch {
		case k.Key == "":
			p.add("API_KEYS", "entry %d has an empty key", i+1)
			continue
		case len(parts) > 1 && !validKeyName(k.Name):
			p.add("API_KEYS", "entry %d: the name must be 1 to 64 letters, digits, '.', '_' or '-'", i+1)
			continue
		case seen[k.Key]:
			p.add("API_KEYS", "entry %d repeats the key of an earlier entry", i+1)
			continue
		}
		seen[k.Key] = true
		keys = append(keys, k)
	}
	return keys
}

// validKeyName is the rule of httpapi.ValidKeyName, checked here so that
// a wrong API_KEYS stops the process with the variable's name.
func validKeyName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !keyNameChar(c) {
			return false
		}
	}
	return true
}

// keyNameChar reports whether c may appear in an API key name.
func keyNameChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// validateControl records every control variable that is wrong and
// fills WebhookKey.
func (c *Control) validateControl(p *problems) {
	p.positive("IDEMPOTENCY_TTL", c.IdempotencyTTL)
	p.positive("WEBHOOK_TIMEOUT", c.WebhookTimeout)
	p.positive("WEBHOOK_BACKOFF", c.WebhookBackoff)
	p.atLeast("WEBHOOK_ATTEMPTS", c.WebhookAttempts, 1)
	p.atLeast("WEBHOOK_CONCURRENCY", c.WebhookConcurrency, 1)
	c.WebhookKey = nil
	if c.WebhookSecret != "" {
		key, err := webhook.ParseSecret(c.WebhookSecret)
		if err != nil {
			p.add("WEBHOOK_SECRET", "%v", err)
		}
		c.WebhookKey = key
	}
	if c.WebhookURL != "" {
		if err := webhook.CheckURL(c.WebhookURL, c.WebhookAllowPrivate); err != nil {
			p.add("WEBHOOK_URL", "%v (set WEBHOOK_ALLOW_PRIVATE=true to allow private targets)", err)
		}
		if c.WebhookSecret == "" {
			p.add("WEBHOOK_URL", "needs WEBHOOK_SECRET to sign the notifications")
		}
	}
}
