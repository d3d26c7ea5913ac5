package task_test

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/task"
)

func TestCursorRoundTrip(t *testing.T) {
	zone := time.FixedZone("UTC-7", -7*3600)
	for _, c := range []task.Cursor{
		{CreatedAt: time.Date(2026, 11, 27, 10, 0, 0, 123456000, time.UTC), ID: uuid.New()},
		{CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, zone), ID: uuid.Must(uuid.NewV7())},
		{CreatedAt: time.Unix(0, 0).UTC(), ID: uuid.Nil},
		{CreatedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), ID: uuid.Max},
	} {
		s := c.Encode()
		got, err := task.DecodeCursor(s)
		if err != nil {
			t.Fatalf("DecodeCursor(%q) = %v", s, err)
		}
		if !got.CreatedAt.Equal(c.CreatedAt) || got.ID != c.ID {
			t.Errorf("round trip of %+v gave %+v", c, got)
		}
		if got.CreatedAt.Location() != time.UTC {
			t.Errorf("decoded time in %v, want UTC", got.CreatedAt.Location())
		}
	}
}

func TestCursorTruncatesToMicroseconds(t *testing.T) {
	c := task.Cursor{CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC), ID: uuid.New()}
	got, err := task.DecodeCursor(c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if want := c.CreatedAt.Truncate(time.Microsecond); !got.CreatedAt.Equal(want) {
		t.Fatalf("CreatedAt = %v, want %v", got.CreatedAt, want)
	}
}

func TestDecodeCursorGarbage(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	id := uuid.New().String()
	for _, s := range []string{
		"",
		"!!!",
		"not a cursor",
		enc([]byte("1700000000000000")), // no separator
		enc([]byte("abc." + id)),        // time not a number
		enc([]byte("-5." + id)),         // negative time
		enc([]byte("1700000000000000.not-a-uuid")),                          // bad id
		enc([]byte("1700000000000000.")),                                    // empty id
		enc([]byte("." + id)),                                               // empty time
		base64.URLEncoding.EncodeToString([]byte("1700000000000000." + id)), // padded
		base64.StdEncoding.EncodeToString([]byte("17000000000000.?>" + id)),
	} {
		if c, err := task.DecodeCursor(s); !errors.Is(err, task.ErrInvalidCursor) {
			t.Errorf("DecodeCursor(%q) = %+v, %v; want ErrInvalidCursor", s, c, err)
		}
	}
}
