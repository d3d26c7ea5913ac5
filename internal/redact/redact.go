// Package redact masks passwords before they reach a log line or an error
// message. It is the one place that knows where a password hides in a
// connection string: URL masks a URL (REDIS_URL in every scheme, a
// PostgreSQL URL), DSN masks a PostgreSQL data source (a URL or key=value
// pairs). Secrets collects the passwords of a process's connection strings
// and masks them wherever they appear in free text: error messages of
// libraries, and every log line through Secrets.Handler.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask is what a password is replaced with.
const Mask = "xxxxx"

// MinSecretLen is the length under which Secrets does not mask a value in
// free text (masking every "pw" of a log line would garble it, and such a
// password protects nothing). URL and DSN mask passwords of any length.
const MinSecretLen = 4

// URL returns raw with its passwords replaced by Mask: the password of the
// user information (everything between the first ':' after "://" and the
// last '@' of the authority, so that a password holding '@', '/' or '?'
// and the comma-separated host lists of redis-sentinel:// and
// redis-cluster:// are covered), and the value of every query parameter
// whose name contains "pass", "pwd", "secret" or "token" (password=,
// sentinel_password=, …). It works on malformed URLs too, masking more
// rather than less when unsure. User names and hosts stay readable.
func URL(raw string) string { return mask(raw, urlSpans(raw)) }

// DSN returns a PostgreSQL data source with its passwords replaced by
// Mask: a URL (postgres://…) as URL does, or key=value pairs
// ("host=db password='a b'") with the value of every key that contains
// "pass", "pwd", "secret" or "token" masked.
func DSN(raw string) string { return mask(raw, dsnSpans(raw)) }

// span is a byte range [start, end) of a password in a string.
type span struct{ start, end int }

// mask replaces the spans (in order, not overlapping) of s by Mask.
func mask(s string, spans []span) string {
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		b.WriteString(s[last:sp.start])
		b.WriteString(Mask)
		last = sp.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// secretName reports whether a parameter name names a secret.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"pass", "pwd", "secret", "token"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// urlSpans finds the passwords of a URL, well-formed or not.
func urlSpans(raw string) []span {
	var spans []span
	queryFrom := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		from := i + 3
		rest := raw[from:]
		// The user information ends at the last '@' before the query; a
		// '?' may also sit in a password, so when no '@' precedes the
		// first '?', the last '@' of all is taken.
		at := -1
		if q := strings.IndexByte(rest, '?'); q >= 0 {
			at = strings.LastIndexByte(rest[:q], '@')
		}
		if at < 0 {
			at = strings.LastIndexByte(rest, '@')
		}
		if at >= 0 {
			if c := strings.IndexByte(rest[:at], ':'); c >= 0 && c+1 < at {
				spans = append(spans, span{from + c + 1, from + at})
			}
			queryFrom = from + at + 1
		} else {
			queryFrom = from
		}
	}
	q := strings.IndexByte(raw[queryFrom:], '?')
	if q < 0 {
		return spans
	}
	pos := queryFrom + q + 1
	end := len(raw)
	if h := strings.IndexByte(raw[pos:], '#'); h >= 0 {
		end = pos + h
	}
	for pos < end {
		next := strings.IndexAny(raw[pos:end], "&;")
		pairEnd := end
		if next >= 0 {
			pairEnd = pos + next
		}
		if eq := strings.IndexByte(raw[pos:pairEnd], '='); eq >= 0 {
			name := raw[pos : pos+eq]
			if un, err := url.QueryUnescape(name); err == nil {
				name = un
			}
			if secretName(name) && pos+eq+1 < pairEnd {
				spans = append(spans, span{pos + eq + 1, pairEnd})
			}
		}
		pos = pairEnd + 1
	}
	return spans
}

// keyValue matches one key=value pair of a PostgreSQL data source: a
// single-quoted value (backslash escapes, possibly unterminated) or a run
// of non-blank characters.
var keyValue = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'?|[^\s']*)`)

// dsnSpans finds the passwords of a data source.
func dsnSpans(raw string) []span {
	if strings.Contains(raw, "://") {
		return urlSpans(raw)
	}
	var spans []span
	for _, m := range keyValue.FindAllStringSubmatchIndex(raw, -1) {
		if secretName(raw[m[2]:m[3]]) && m[5] > m[4] {
			spans = append(spans, span{m[4], m[5]})
		}
	}
	return spans
}
