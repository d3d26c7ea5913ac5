// Package config reads the settings of both binaries from environment
// variables, in one place, and validates them once. The settings both
// share (Redis, queue names, logging) are declared once, in Shared, and
// embedded in Orchestrator and Worker. Only packages under cmd/ call it;
// everything else receives plain values.
//
// Every variable has a documented default (in its field's comment and its
// envDefault tag). Invalid values are rejected with an error that names
// the variable; nothing is silently corrected. Durations take Go syntax
// ("5s", "300ms", "1h") or a plain number of milliseconds; sizes take a
// number of bytes with an optional KiB, MiB, GiB, KB, MB or GB suffix.
package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// load parses environ into a T with the package's parsers, then trims
// blank items from string lists and rewrites env's errors so that they
// name the variable.
func load[T any](environ map[string]string) (T, error) {
	c, err := env.ParseAsWithOptions[T](env.Options{
		Environment: environ,
		FuncMap:     map[reflect.Type]env.ParserFunc{reflect.TypeFor[time.Duration](): parseDuration},
	})
	if err != nil {
		return c, explain[T](err)
	}
	return c, nil
}

// parseDuration reads a Go duration or a plain number of milliseconds.
func parseDuration(v string) (any, error) {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(ms) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return nil, fmt.Errorf("%q is not a duration (like 5s, 300ms or 1h, or milliseconds)", v)
	}
	return d, nil
}

// explain rewrites env's parse errors, which name struct fields, so that
// they name the environment variable of T instead.
func explain[T any](err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("read environment: %w", err)
	}
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			errs = append(errs, fmt.Errorf("%s: invalid value: %w", envName(reflect.TypeFor[T](), pe.Name), pe.Err))
			continue
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// envName returns the environment variable of the field named field of t
// (embedded structs included).
func envName(t reflect.Type, field string) string {
	if f, ok := t.FieldByName(field); ok {
		if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" {
			return name
		}
	}
	return field
}

// problems collects one error per invalid variable.
type problems []error

// add records that variable name is wrong.
func (p *problems) add(name, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
}

// positive records name unless d > 0.
func (p *problems) positive(name string, d time.Duration) {
	if d <= 0 {
		p.add(name, "must be > 0, got %s", d)
	}
}

// atLeast records name unless n >= min.
func (p *problems) atLeast(name string, n, min int) {
	if n < min {
		p.add(name, "must be ≥ %d, got %d", min, n)
	}
}

func (p problems) err() error { return errors.Join(p...) }

// trimList drops blank items and the blanks around the others.
func trimList(items []string) []string {
	out := items[:0]
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
