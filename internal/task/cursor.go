package task

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Cursor marks a position in the newest-first listing of tasks: the
// (CreatedAt, ID) of the last task of the previous page. Listing resumes
// strictly after it (keyset pagination).
type Cursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// Encode returns the opaque string form of c given to clients.
func (c Cursor) Encode() string {
	raw := strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "." + c.ID.String()
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeCursor parses a string made by Cursor.Encode, or returns ErrInvalidCursor.
func DecodeCursor(s string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, ErrInvalidCursor
	}
	ts, id, ok := strings.Cut(string(raw), ".")
	if !ok {
		return Cursor{}, ErrInvalidCursor
	}
	micros, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || micros < 0 {
		return Cursor{}, ErrInvalidCursor
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return Cursor{}, ErrInvalidCursor
	}
	return Cursor{CreatedAt: time.UnixMicro(micros).UTC(), ID: u}, nil
}

// ListQuery selects a page of tasks, newest first.
type ListQuery struct {
	Status *Status // nil: every status
	Limit  int     // 1..MaxListLimit; 0 means DefaultListLimit
	After  *Cursor // nil: from the newest task
	// Owner, when set, keeps the tasks of that owner only. The Service
	// sets it from the caller; a client cannot.
	Owner *string
	// Metadata, when set, keeps the tasks whose metadata matches it.
	Metadata *MetadataFilter
}

// Page limits.
const (
	DefaultListLimit = 50
	MaxListLimit     = 200
)

// limit is the page size of q: Limit, or DefaultListLimit when 0.
func (q ListQuery) limit() int {
	if q.Limit <= 0 {
		return DefaultListLimit
	}
	return q.Limit
}

// FetchLimit is how many rows a Store reads for q: one more than the page
// size, to learn whether another page follows.
func (q ListQuery) FetchLimit() int { return q.limit() + 1 }

// Page trims rows read with FetchLimit to q's page size and returns the
// cursor of the next page, nil when rows held no more than a page.
func (q ListQuery) Page(rows []*Task) ([]*Task, *Cursor) {
	n := q.limit()
	if len(rows) <= n {
		return rows, nil
	}
	rows = rows[:n]
	last := rows[n-1]
	return rows, &Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
}
