package task

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on the data from outside (a worker's result, an error message, a
// worker id) that a Change carries.
const (
	// MaxResultBytes bounds a task's result (JSON). A larger result cannot
	// be stored: Service.Apply refuses the change with ErrInvalidData.
	MaxResultBytes = 8 << 20 // 8 MiB
	// MaxErrorMessageBytes bounds an error message; a longer one is cut.
	MaxErrorMessageBytes = 64 << 10 // 64 KiB
	// MaxWorkerIDBytes bounds a worker id; a longer one is cut.
	MaxWorkerIDBytes = 256
)

// truncatedMark ends a text cut to its limit.
const truncatedMark = "… [truncated]"

// The sanitising rules. Every Change built by this package carries text
// that came from outside the orchestrator (a worker's result JSON, its
// error message, its worker id, a job's failedReason or processedBy) only
// after it went through these rules, so that every store can store it as
// is (PostgreSQL text and jsonb refuse NUL and invalid UTF-8: SQLSTATE
// 22021, 22P05) and every client can read it:
//
//   - text (error message, worker id): NUL bytes are removed, each invalid
//     UTF-8 sequence becomes U+FFFD, and text over its limit is cut at a
//     character boundary and ends with "… [truncated]";
//   - result JSON: inside string literals (keys included), \u0000 escapes
//     are removed, unpaired UTF-16 surrogate escapes (\ud800…\udfff alone)
//     become \ufffd, and invalid UTF-8 bytes become U+FFFD; everything
//     else is kept byte for byte (numbers, key order, spacing). A result
//     that is not valid JSON is stored as a JSON string of its sanitised
//     text.
//
// When a rule changed anything, the Change's Sanitized is true and the
// task's Sanitized flag is set (it stays set). A result over
// MaxResultBytes is not cut (JSON cannot be cut); Service.Apply refuses it
// with ErrInvalidData, and the loops then fail the task with
// UnstorableReason.

// SanitizeText applies the text rules to s with the limit max (bytes, 0
// for none) and reports whether it changed anything.
func SanitizeText(s string, max int) (string, bool) {
	changed := false
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
		changed = true
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
		changed = true
	}
	if max > 0 && len(s) > max {
		cut := max - len(truncatedMark)
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + truncatedMark
		changed = true
	}
	return s, changed
}

// SanitizeJSON applies the result rules to raw and reports whether it
// changed anything. An empty raw stays empty (no result).
func SanitizeJSON(raw json.RawMessage) (json.RawMessage, bool) {
	if len(raw) == 0 {
		return raw, false
	}
	if !json.Valid(raw) {
		text, _ := SanitizeText(string(raw), 0)
		b, _ := json.Marshal(text) // a valid UTF-8 string: cannot fail
		return b, true
	}
	if utf8.Valid(raw) && !bytes.Contains(raw, []byte(`\u`)) {
		return raw, false // the usual case: nothing to look at
	}
	return sanitizeJSONStrings(raw)
}

// sanitizeJSONStrings rewrites the string literals of valid JSON b as the
// result rules say. Outside strings, valid JSON holds only ASCII, which is
// copied.
func sanitizeJSONStrings(b []byte) (json.RawMessage, bool) {
	out := make([]byte, 0, len(b))
	changed := false
	inString := false
	for i := 0; i < len(b); {
		c := b[i]
		if !inString {
			if c == '"' {
				inString = true
			}
			out = append(out, c)
			i++
			continue
		}
		switch {
		case c == '"':
			inString = false
			out = append(out, c)
			i++
		case c == '\\' && i+1 < len(b) && b[i+1] == 'u' && i+6 <= len(b):
			r := hex4(b[i+2 : i+6])
			switch {
			case r == 0:
				changed = true // \u0000: dropped
				i += 6
			case r >= 0xD800 && r <= 0xDBFF && i+12 <= len(b) && b[i+6] == '\\' && b[i+7] == 'u' &&
				hex4(b[i+8:i+12]) >= 0xDC00 && hex4(b[i+8:i+12]) <= 0xDFFF:
				out = append(out, b[i:i+12]...) // a surrogate pair: kept
				i += 12
			case r >= 0xD800 && r <= 0xDFFF:
				out = append(out, `\ufffd`...)
				changed = true
				i += 6
			default:
				out = append(out, b[i:i+6]...)
				i += 6
			}
		case c == '\\':
			out = append(out, b[i], b[i+1]) // any other escape: two bytes
			i += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				out = append(out, "\uFFFD"...)
				changed = true
			} else {
				out = append(out, b[i:i+size]...)
			}
			i += size
		}
	}
	if !changed {
		return b, false
	}
	return out, true
}

// hex4 decodes 4 hex digits (valid JSON guarantees them after \u).
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// sanitize applies the rules to the outside data of c.
func (c *Change) sanitize() {
	if len(c.Result) > 0 {
		var changed bool
		if c.Result, changed = SanitizeJSON(c.Result); changed {
			c.Sanitized = true
		}
	}
	if c.ErrorMessage != nil {
		if s, changed := SanitizeText(*c.ErrorMessage, MaxErrorMessageBytes); changed {
			c.ErrorMessage, c.Sanitized = &s, true
		}
	}
	if c.WorkerID != nil {
		if s, changed := SanitizeText(*c.WorkerID, MaxWorkerIDBytes); changed {
			c.WorkerID, c.Sanitized = &s, true
		}
	}
}

// validate reports data of c that no store may hold, as ErrInvalidData.
func (c Change) validate() error {
	if len(c.Result) > MaxResultBytes {
		return fmt.Errorf("%w: result is %d bytes, more than %d", ErrInvalidData, len(c.Result), MaxResultBytes)
	}
	return nil
}

// UnstorableReason is the start of the error message of a task whose
// outcome could not be stored (see MarkUnstorable).
const UnstorableReason = "result could not be stored: "

// MarkUnstorable is the change that replaces c when a store refused c's
// data for good (ErrInvalidData, err), so that the task still moves on
// without the refused data (result, error message, worker id are
// dropped; attempts, execution time and times are kept). A completing
// change becomes failed; a failing change, and a late result on a
// cancelled task, keep their status; each records the error message
// UnstorableReason + err. A change that does not finish the task (running,
// retrying) keeps its status and records no message.
func MarkUnstorable(c Change, err error) Change {
	u := c
	u.Result, u.WorkerID, u.ErrorMessage, u.Sanitized = nil, nil, nil, true
	if c.To.Terminal() {
		msg, _ := SanitizeText(UnstorableReason+err.Error(), MaxErrorMessageBytes)
		u.ErrorMessage = &msg
		if c.To == StatusCompleted {
			u.To = StatusFailed
		}
	}
	return u
}
