package task

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"time"
)

// Idempotent create: a client sends a key with a create (the HTTP
// Idempotency-Key header) and may send it again, with the same request,
// as often as it likes while the key lives: every time it gets the task
// the first request created. Keys are scoped to the creator (the caller's
// name, "" without one) and enforced by the database (a unique key on
// owner and key), so concurrent duplicates and orchestrator replicas
// create one task.

// DefaultIdempotencyTTL is how long a key is remembered by default.
const DefaultIdempotencyTTL = 24 * time.Hour

// MaxIdempotencyKeyBytes bounds an idempotency key.
const MaxIdempotencyKeyBytes = 255

// ErrIdempotencyMismatch: the key was used, within its lifetime, for a
// request with another body.
var ErrIdempotencyMismatch = errors.New("idempotency key already used for a different request")

// IdempotencyKey is a stored key: Owner and Key identify it, Hash is the
// hash of the request that first used it, CreatedAt when (a key older than
// the TTL is expired and may be claimed again).
type IdempotencyKey struct {
	Owner     string
	Key       string
	Hash      [sha256.Size]byte
	CreatedAt time.Time
}

// ValidateIdempotencyKey checks a key: 1 to MaxIdempotencyKeyBytes
// printable ASCII characters (0x20 to 0x7E). The error is a
// *ValidationError on the field "Idempotency-Key".
func ValidateIdempotencyKey(k string) error {
	bad := func(reason string) error { return &ValidationError{Field: "Idempotency-Key", Reason: reason} }
	if k == "" || len(k) > MaxIdempotencyKeyBytes {
		return bad("must be 1 to 255 characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return bad("must be printable ASCII")
		}
	}
	return nil
}

// requestHash returns the hash of a validated NewTask: two requests with
// the same fields (after defaults; metadata compared as sent, without
// surrounding whitespace) have the same hash.
func requestHash(n NewTask) [sha256.Size]byte {
	b, _ := json.Marshal(struct {
		Code        string          `json:"code"`
		Prompt      string          `json:"prompt"`
		Timeout     int64           `json:"timeout"`
		Priority    *int            `json:"priority"`
		Metadata    json.RawMessage `json:"metadata"`
		CallbackURL string          `json:"callbackUrl"`
	}{n.Code, n.Prompt, n.Timeout, n.Priority, n.Metadata, n.CallbackURL})
	return sha256.Sum256(b)
}
