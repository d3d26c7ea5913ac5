package sqlite

import (
	"fmt"
	"net/url"
	"strings"
)

// location is a parsed data source: where the database lives and the
// caller's query parameters.
type location struct {
	base   string     // path, or a file: URI without its query
	path   string     // file system path, "" for an in-memory database
	query  url.Values // caller's parameters, kept as given
	memory bool
}

// parseLocation accepts a plain path ("data/tasks.db", "/var/lib/x.db"), a
// sqlite URL ("sqlite:///abs/path.db", "sqlite://rel/path.db",
// "sqlite:rel.db"), a SQLite file: URI ("file:tasks.db?cache=shared") or
// ":memory:". Query parameters are kept and passed to the driver.
func parseLocation(dsn string) (location, error) {
	if dsn == "" {
		return location{}, fmt.Errorf("empty sqlite data source")
	}
	rest, rawQuery, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return location{}, fmt.Errorf("parse sqlite data source query: %w", err)
	}
	loc := location{query: q, memory: q.Get("mode") == "memory"}
	switch {
	case strings.HasPrefix(rest, "sqlite://"):
		loc.base = strings.TrimPrefix(rest, "sqlite://")
	case strings.HasPrefix(rest, "sqlite:"):
		loc.base = strings.TrimPrefix(rest, "sqlite:")
	case strings.HasPrefix(rest, "file:"):
		loc.base = rest
		p := strings.TrimPrefix(rest, "file:")
		if strings.HasPrefix(p, "//") { // file://host/path or file:///path
			p = p[2:]
			if i := strings.IndexByte(p, '/'); i >= 0 {
				p = p[i:]
			} else {
				p = ""
			}
		}
		if up, err := url.PathUnescape(p); err == nil {
			p = up
		}
		loc.path = p
		if p == "" || p == ":memory:" {
			loc.memory = true
		}
		if loc.memory {
			loc.path = ""
		}
		return loc, nil
	default:
		loc.base = rest
	}
	if loc.base == "" {
		return location{}, fmt.Errorf("sqlite data source %q names no file", dsn)
	}
	if loc.base == ":memory:" {
		loc.memory = true
	}
	if !loc.memory {
		loc.path = loc.base
	}
	return loc, nil
}

// dsn returns the driver data source for loc with the extra parameters
// added to the caller's.
func (l location) dsn(extra url.Values) string {
	q := url.Values{}
	for k, v := range l.query {
		q[k] = append([]string(nil), v...)
	}
	for k, v := range extra {
		q[k] = append(q[k], v...)
	}
	if len(q) == 0 {
		return l.base
	}
	return l.base + "?" + q.Encode()
}
