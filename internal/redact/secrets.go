package redact

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
)

// Secrets is a set of secret values (the passwords of a process's
// connection strings, keys) to mask wherever they appear in free text:
// error messages that quote a connection string, log lines. The zero value
// is an empty set, ready to use. A Secrets must not be changed once it is
// shared; reading it is safe for concurrent use.
type Secrets struct {
	whole  []replacement // connection strings, replaced by their masked form
	values []string      // longest first, so that a secret holding another is masked whole
}

// replacement is a connection string and its masked form.
type replacement struct{ raw, masked string }

// Add records secret values. Values shorter than MinSecretLen are ignored.
func (s *Secrets) Add(values ...string) {
	for _, v := range values {
		if len(v) < MinSecretLen || slices.Contains(s.values, v) {
			continue
		}
		s.values = append(s.values, v)
	}
	slices.SortStableFunc(s.values, func(a, b string) int { return len(b) - len(a) })
}

// AddURL records a URL: quoted whole, it is replaced by URL(raw) (its
// passwords masked, whatever their length); its passwords (those URL
// masks), as written and unescaped, and the pieces of a password that a
// malformed URL splits at '/', '?' or '#' (a parser's error may quote
// such a piece) are masked wherever they appear.
func (s *Secrets) AddURL(raw string) { s.addSpans(raw, urlSpans(raw)) }

// AddDSN records a PostgreSQL data source (see DSN) as AddURL does.
func (s *Secrets) AddDSN(raw string) { s.addSpans(raw, dsnSpans(raw)) }

func (s *Secrets) addSpans(raw string, spans []span) {
	if len(spans) > 0 {
		s.whole = append(s.whole, replacement{raw: raw, masked: mask(raw, spans)})
		slices.SortStableFunc(s.whole, func(a, b replacement) int { return len(b.raw) - len(a.raw) })
	}
	for _, sp := range spans {
		v := raw[sp.start:sp.end]
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(strings.ReplaceAll(v[1:len(v)-1], `\'`, `'`), `\\`, `\`)
		}
		s.Add(v)
		if un, err := url.PathUnescape(v); err == nil {
			s.Add(un)
		}
		s.Add(strings.FieldsFunc(v, func(r rune) bool { return r == '/' || r == '?' || r == '#' })...)
	}
}

// Empty reports whether there is nothing to mask.
func (s *Secrets) Empty() bool { return s == nil || len(s.values)+len(s.whole) == 0 }

// String returns text with every recorded connection string masked and
// every secret replaced by Mask.
func (s *Secrets) String(text string) string {
	if s.Empty() {
		return text
	}
	for _, w := range s.whole {
		if strings.Contains(text, w.raw) {
			text = strings.ReplaceAll(text, w.raw, w.masked)
		}
	}
	for _, v := range s.values {
		if strings.Contains(text, v) {
			text = strings.ReplaceAll(text, v, Mask)
		}
	}
	return text
}

// Error returns err with every secret masked in its message, or err itself
// when its message holds none (nil stays nil). errors.Is and errors.As
// still see err through the result.
func (s *Secrets) Error(err error) error {
	if err == nil || s.Empty() {
		return err
	}
	msg := err.Error()
	if masked := s.String(msg); masked != msg {
		return &maskedError{msg: masked, err: err}
	}
	return err
}

// URLError returns err with the passwords of the URL raw masked in its
// message (see Secrets.AddURL): for errors from parsing or using raw.
func URLError(err error, raw string) error {
	var s Secrets
	s.AddURL(raw)
	return s.Error(err)
}

// DSNError returns err with the passwords of the data source raw masked in
// its message (see Secrets.AddDSN).
func DSNError(err error, raw string) error {
	var s Secrets
	s.AddDSN(raw)
	return s.Error(err)
}

// maskedError is an error whose message has its secrets masked.
type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }

// Handler returns a slog.Handler that masks every secret in the message
// and in the attribute values (strings, errors, fmt.Stringers, groups) of
// each record before h handles it. With no secrets it returns h.
func (s *Secrets) Handler(h slog.Handler) slog.Handler {
	if s.Empty() {
		return h
	}
	return &handler{next: h, s: s}
}

type handler struct {
	next slog.Handler
	s    *Secrets
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.s.String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.s.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	masked := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		masked[i] = h.s.attr(a)
	}
	return &handler{next: h.next.WithAttrs(masked), s: h.s}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), s: h.s}
}

// attr returns a with its secrets masked.
func (s *Secrets) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, s.String(v.String()))
	case slog.KindGroup:
		group := v.Group()
		masked := make([]slog.Attr, len(group))
		for i, g := range group {
			masked[i] = s.attr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(masked...)}
	case slog.KindAny:
		var text string
		switch x := v.Any().(type) {
		case error:
			text = x.Error()
		case fmt.Stringer:
			text = x.String()
		default:
			return slog.Attr{Key: a.Key, Value: v}
		}
		if masked := s.String(text); masked != text {
			return slog.String(a.Key, masked)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
