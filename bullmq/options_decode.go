package bullmq

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// This file holds the fast path of JobOptions.UnmarshalJSON. A worker decodes
// the "opts" JSON of every job it fetches, and the generic path (a map of raw
// values, then one json.Unmarshal per key) dominated a worker's CPU. The fast
// path scans the object once and handles the common shapes: flat keys with
// number, bool or string values, and the backoff and removeOn* objects. On
// anything it is not certain to decode exactly as the generic path does
// (escaped strings, duplicate keys, unusual nested shapes, invalid JSON) it
// gives up and the generic path decodes the whole input instead. The fuzz
// test FuzzJobOptionsDecode checks that both paths agree.

// maxFastKeys and maxFastDepth bound what the fast path accepts; larger or
// deeper inputs go to the generic path.
const (
	maxFastKeys  = 32
	maxFastDepth = 32
)

// fastKind is the kind of a JSON value seen by optScanner.
type fastKind uint8

const (
	kindNull fastKind = iota
	kindTrue
	kindFalse
	kindNumber
	kindString    // a string without escapes and with valid UTF-8
	kindStringEsc // any other string
	kindObject
	kindArray
)

// fastResult says what the fast path did with one known key.
type fastResult uint8

const (
	fastDone  fastResult = iota // decoded into its field, or skipped (null)
	fastExtra                   // kept raw in Extra, as the generic path does
	fastBail                    // not sure: decode the whole input generically
)

// optScanner is a minimal validating JSON scanner over one "opts" value.
type optScanner struct {
	b []byte
	i int
}

func (s *optScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// eat consumes c if it is the next byte.
func (s *optScanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str scans a string starting at the opening quote.
func (s *optScanner) str() (fastKind, bool) {
	if !s.eat('"') {
		return 0, false
	}
	start, kind, high := s.i, kindString, false
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			if high && kind == kindString && !utf8.Valid(s.b[start:s.i]) {
				kind = kindStringEsc
			}
			s.i++
			return kind, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			kind = kindStringEsc
			s.i++
			if s.i >= len(s.b) {
				return 0, false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+4 >= len(s.b) {
					return 0, false
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !isHex(h) {
						return 0, false
					}
				}
				s.i += 5
			default:
				return 0, false
			}
		default:
			if c >= utf8.RuneSelf {
				high = true
			}
			s.i++
		}
	}
	return 0, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// digits consumes one or more digits.
func (s *optScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && isDigit(s.b[s.i]) {
		s.i++
	}
	return s.i > start
}

// number scans a number with the JSON grammar.
func (s *optScanner) number() bool {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.eat('.') && !s.digits() {
		return false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// literal consumes word.
func (s *optScanner) literal(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// value scans one JSON value at s.i (no leading whitespace) and reports its
// kind; false means invalid or too deep.
func (s *optScanner) value(depth int) (fastKind, bool) {
	if s.i >= len(s.b) {
		return 0, false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.str()
	case c == '{', c == '[':
		if depth >= maxFastDepth {
			return 0, false
		}
		s.i++
		closing, kind := byte('}'), kindObject
		if c == '[' {
			closing, kind = ']', kindArray
		}
		s.ws()
		if s.eat(closing) {
			return kind, true
		}
		for {
			s.ws()
			if kind == kindObject {
				if _, ok := s.str(); !ok {
					return 0, false
				}
				s.ws()
				if !s.eat(':') {
					return 0, false
				}
				s.ws()
			}
			if _, ok := s.value(depth + 1); !ok {
				return 0, false
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat(closing) {
				return kind, true
			}
			return 0, false
		}
	case c == 't':
		return kindTrue, s.literal("true")
	case c == 'f':
		return kindFalse, s.literal("false")
	case c == 'n':
		return kindNull, s.literal("null")
	case c == '-' || isDigit(c):
		return kindNumber, s.number()
	}
	return 0, false
}

// members scans the object at s.i and calls f with each key (a string
// without escapes) and its value, both as raw bytes, the key unquoted.
// It returns false when the object is invalid, a key has escapes, a key
// repeats, or f returns false.
func (s *optScanner) members(depth int, f func(key, val []byte, kind fastKind) bool) bool {
	if !s.eat('{') {
		return false
	}
	s.ws()
	if s.eat('}') {
		return true
	}
	var seen [maxFastKeys][]byte
	n := 0
	for {
		s.ws()
		ks := s.i + 1
		if kind, ok := s.str(); !ok || kind != kindString {
			return false
		}
		key := s.b[ks : s.i-1]
		if n == len(seen) {
			return false
		}
		for _, k := range seen[:n] {
			if bytes.Equal(k, key) {
				return false // duplicate: the generic path keeps the last one
			}
		}
		seen[n] = key
		n++
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		vs := s.i
		kind, ok := s.value(depth + 1)
		if !ok || !f(key, s.b[vs:s.i], kind) {
			return false
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return true
		}
		return false
	}
}

// decodeFast decodes b into o (reset first) and reports true when b is in
// the common form; it returns false, with o in an unspecified state, when
// the generic path must decode b instead.
func (o *JobOptions) decodeFast(b []byte) bool {
	*o = JobOptions{}
	s := optScanner{b: b}
	s.ws()
	var clone []byte // copy of b that Extra values point into
	ok := s.members(0, func(key, val []byte, kind fastKind) bool {
		switch o.decodeKnownFast(key, val, kind) {
		case fastBail:
			return false
		case fastExtra:
			if clone == nil {
				clone = bytes.Clone(b)
			}
			end := s.i // val ends where the scanner is
			if o.Extra == nil {
				o.Extra = make(map[string]json.RawMessage)
			}
			o.Extra[string(key)] = json.RawMessage(clone[end-len(val) : end : end])
		}
		return true
	})
	if !ok {
		return false
	}
	s.ws()
	return s.i == len(b)
}

// decodeKnownFast is decodeKnown of the fast path: it decodes known key k
// with raw value v of the given kind, or says to keep it raw (unknown keys,
// unusable shapes), or to give up.
func (o *JobOptions) decodeKnownFast(k, v []byte, kind fastKind) fastResult {
	if kind == kindNull {
		if isKnownOptKey(string(k)) {
			return fastDone
		}
		return fastExtra
	}
	switch string(k) {
	case "attempts", "delay", "priority", "timestamp":
		f, r := fastNumber(v, kind)
		if r != fastDone {
			return r
		}
		switch string(k) {
		case "attempts":
			o.Attempts = int(f)
		case "delay":
			o.Delay = msDuration(f)
		case "priority":
			o.Priority = int(f)
		default:
			o.Timestamp = time.UnixMilli(int64(f))
		}
	case "jobId":
		switch kind {
		case kindString:
			o.JobID = string(v[1 : len(v)-1])
		case kindStringEsc:
			return fastBail
		default:
			return fastExtra
		}
	case "lifo":
		if kind != kindTrue {
			return fastExtra // false or not a bool, as decodeKnown
		}
		o.LIFO = true
	case "backoff":
		return o.decodeBackoffFast(v, kind)
	case "removeOnComplete", "removeOnFail":
		kj, r := decodeKeepFast(v, kind)
		if r != fastDone {
			return r
		}
		if string(k) == "removeOnComplete" {
			o.RemoveOnComplete = kj
		} else {
			o.RemoveOnFail = kj
		}
	default:
		return fastExtra
	}
	return fastDone
}

// fastNumber is jsonNumber for a value already scanned as kind. A result
// other than fastDone means jsonNumber would fail (fastExtra) or the value
// has escapes (fastBail).
func fastNumber(v []byte, kind fastKind) (float64, fastResult) {
	switch kind {
	case kindNumber:
	case kindString:
		v = v[1 : len(v)-1]
	case kindStringEsc:
		return 0, fastBail
	default:
		return 0, fastExtra
	}
	if f, ok := smallInt(v); ok {
		return f, fastDone
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return 0, fastExtra
	}
	return f, fastDone
}

// smallInt parses an optionally negative run of at most 15 digits, which a
// float64 holds exactly, giving what strconv.ParseFloat gives.
func smallInt(v []byte) (float64, bool) {
	i := 0
	if len(v) > 0 && v[0] == '-' {
		i = 1
	}
	if len(v)-i < 1 || len(v)-i > 15 {
		return 0, false
	}
	var n int64
	for _, c := range v[i:] {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	f := float64(n)
	if i == 1 {
		f = -f
	}
	return f, true
}

// decodeBackoffFast is Backoff.UnmarshalJSON for the fast path.
func (o *JobOptions) decodeBackoffFast(v []byte, kind fastKind) fastResult {
	switch kind {
	case kindObject:
	case kindNumber, kindString, kindStringEsc:
		f, r := fastNumber(v, kind)
		if r != fastDone {
			return r
		}
		o.Backoff = &Backoff{Type: "fixed", Delay: msDuration(f)}
		return fastDone
	default:
		return fastExtra
	}
	var bo Backoff
	s := optScanner{b: v}
	ok := s.members(1, func(key, val []byte, kind fastKind) bool {
		switch string(key) {
		case "type":
			switch kind {
			case kindString:
				// The usual types need no new string.
				switch t := val[1 : len(val)-1]; string(t) {
				case "exponential":
					bo.Type = "exponential"
				case "fixed":
					bo.Type = "fixed"
				default:
					bo.Type = string(t)
				}
			case kindNull:
			default:
				return false
			}
		case "delay", "jitter":
			if kind == kindNull {
				return true
			}
			f, r := fastNumber(val, kind)
			if r != fastDone {
				return false
			}
			if string(key) == "delay" {
				bo.Delay = msDuration(f)
			} else {
				bo.Jitter = f
			}
		default:
			return false // other keys match fields case-insensitively
		}
		return true
	})
	if !ok {
		return fastBail
	}
	o.Backoff = &bo
	return fastDone
}

// decodeKeepFast is KeepJobs.UnmarshalJSON for the fast path.
func decodeKeepFast(v []byte, kind fastKind) (*KeepJobs, fastResult) {
	switch kind {
	case kindTrue:
		return &KeepJobs{shape: keepBool}, fastDone
	case kindFalse:
		return &KeepJobs{Keep: true, shape: keepBool}, fastDone
	case kindObject:
	default:
		f, r := fastNumber(v, kind)
		if r != fastDone {
			return nil, r
		}
		return &KeepJobs{Count: int(f), shape: keepNumber}, fastDone
	}
	k := &KeepJobs{shape: keepObject}
	s := optScanner{b: v}
	ok := s.members(1, func(key, val []byte, kind fastKind) bool {
		switch string(key) {
		case "age", "count", "limit":
		default:
			return true // ignored, as the generic path does
		}
		if kind == kindNull {
			return true
		}
		f, r := fastNumber(val, kind)
		if r != fastDone {
			return false
		}
		switch string(key) {
		case "age":
			k.Age = time.Duration(f * float64(time.Second))
		case "count":
			k.Count, k.countSet = int(f), true
		default:
			k.Limit = int(f)
		}
		return true
	})
	if !ok {
		return nil, fastBail
	}
	return k, fastDone
}
