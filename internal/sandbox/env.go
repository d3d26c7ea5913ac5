package sandbox

import (
	"fmt"
	"sort"
	"strings"
)

// baseEnvNames are passed from the worker's environment to every agent.
var baseEnvNames = []string{"PATH", "LANG", "LANGUAGE", "LC_*", "TZ", "TERM"}

// forbiddenEnv are never passed to an agent, whatever is asked: the
// worker's own secrets and settings.
var forbiddenEnv = []string{"REDIS_*", "DATABASE_URL", "WORKER_*", "API_KEYS"}

// matchEnvName reports whether name matches pattern: an exact name, or a
// prefix followed by "*".
func matchEnvName(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	return pattern == name
}

// ForbiddenEnvName reports whether name (or, for a pattern ending in "*",
// some name it matches) is one that never reaches an agent: REDIS_*,
// DATABASE_URL, WORKER_*, API_KEYS.
func ForbiddenEnvName(name string) bool {
	for _, f := range forbiddenEnv {
		if matchEnvName(f, name) {
			return true
		}
		// A pattern such as "RED*" or "*" would match forbidden names.
		if p, ok := strings.CutSuffix(name, "*"); ok && strings.HasPrefix(strings.TrimSuffix(f, "*"), p) {
			return true
		}
	}
	return false
}

// ValidateEnvNames checks names to pass to agents: each is a variable name
// or a prefix ending in "*", and none is forbidden (ForbiddenEnvName).
func ValidateEnvNames(names []string) error {
	for _, n := range names {
		base := strings.TrimSuffix(n, "*")
		if base == "" || strings.ContainsAny(base, "=* \t") {
			return fmt.Errorf("%q is not a variable name (or a prefix ending in *)", n)
		}
		if ForbiddenEnvName(n) {
			return fmt.Errorf("%q is never passed to agents (REDIS_*, DATABASE_URL, WORKER_*, API_KEYS)", n)
		}
	}
	return nil
}

// AgentEnv returns an agent's environment: from environ (the worker's, as
// os.Environ returns it) only PATH, LANG, LANGUAGE, LC_*, TZ, TERM and the
// variables pass names (exact names, or prefixes ending in "*"), then set,
// which wins. Forbidden names (ForbiddenEnvName) are dropped from environ
// whatever pass says; set is taken as is. The result is sorted by name.
func AgentEnv(environ, pass []string, set map[string]string) []string {
	vars := map[string]string{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" || ForbiddenEnvName(name) {
			continue
		}
		for _, group := range [][]string{baseEnvNames, pass} {
			for _, p := range group {
				if matchEnvName(p, name) {
					vars[name] = value
				}
			}
		}
	}
	for k, v := range set {
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
