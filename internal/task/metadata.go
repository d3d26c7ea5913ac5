package task

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of a metadata filter of the task list.
const (
	MaxMetadataKeyBytes   = 256
	MaxMetadataValueBytes = 1024
)

// MetadataFilter selects the tasks whose metadata holds Key with the JSON
// string value Value (only string values match: {"n": 3} is not matched
// by Value "3").
type MetadataFilter struct {
	Key   string
	Value string
}

// Validate checks the filter's bounds: a key of 1 to MaxMetadataKeyBytes
// bytes, a value of at most MaxMetadataValueBytes, both valid UTF-8
// without NUL. The error is a *ValidationError on the field
// "metadata.<key>".
func (f MetadataFilter) Validate() error {
	field := "metadata." + f.Key
	if len(field) > MaxMetadataKeyBytes+len("metadata.") {
		field = field[:MaxMetadataKeyBytes] + "…"
	}
	bad := func(reason string) error { return &ValidationError{Field: field, Reason: reason} }
	switch {
	case f.Key == "":
		return bad("the metadata key after \"metadata.\" must not be empty")
	case len(f.Key) > MaxMetadataKeyBytes:
		return bad(fmt.Sprintf("the metadata key must be at most %d bytes", MaxMetadataKeyBytes))
	case len(f.Value) > MaxMetadataValueBytes:
		return bad(fmt.Sprintf("the value must be at most %d bytes", MaxMetadataValueBytes))
	case !utf8.ValidString(f.Key) || !utf8.ValidString(f.Value):
		return bad("must be valid UTF-8")
	case strings.IndexByte(f.Key, 0) >= 0 || strings.IndexByte(f.Value, 0) >= 0:
		return bad("must not contain NUL characters")
	}
	return nil
}

// JSON returns the filter as the JSON object {Key: Value}, for stores that
// match it by containment.
func (f MetadataFilter) JSON() string {
	b, _ := json.Marshal(map[string]string{f.Key: f.Value})
	return string(b)
}

// checkMetadata checks a task's metadata: a JSON object (keys are strings
// by JSON's rules) of at most MaxMetadataBytes, without NUL characters in
// its strings (PostgreSQL's jsonb cannot hold them; refused for every
// store alike). It returns the metadata without surrounding whitespace.
func checkMetadata(m json.RawMessage) (json.RawMessage, error) {
	bad := func(reason string) error { return &ValidationError{Field: "metadata", Reason: reason} }
	m = bytes.TrimSpace(m)
	if len(m) > MaxMetadataBytes {
		return nil, bad(fmt.Sprintf("must be at most %d bytes (16 KiB)", MaxMetadataBytes))
	}
	if bytes.Equal(m, []byte("null")) {
		return nil, nil
	}
	if len(m) == 0 || m[0] != '{' {
		return nil, bad("must be a JSON object")
	}
	var v map[string]any
	if err := json.Unmarshal(m, &v); err != nil {
		return nil, bad("must be a valid JSON object")
	}
	if hasNUL(v) {
		return nil, bad("must not contain NUL (\\u0000) characters")
	}
	return m, nil
}

// hasNUL reports whether a decoded JSON value holds a NUL in a string or key.
func hasNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.IndexByte(x, 0) >= 0
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 || hasNUL(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasNUL(e) {
				return true
			}
		}
	}
	return false
}
