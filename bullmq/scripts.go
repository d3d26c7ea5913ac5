package bullmq

import (
	"context"
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// luaFS holds the package's own Lua scripts. Each file names its KEYS and
// ARGV in a header comment. Files under lua/include hold shared helper
// functions that loadScript prepends to the scripts that ask for them.
//
//go:embed lua/*.lua lua/include/*.lua
var luaFS embed.FS

// script is one embedded Lua script. It runs with EVALSHA and falls back to
// EVAL (which also caches it on the server) when Redis answers NOSCRIPT, so
// it survives a SCRIPT FLUSH, a restart or a failover to a replica that never
// saw it. A script is safe for concurrent use.
type script struct {
	name string
	src  string
	sha  string
}

// loadScript returns the embedded script lua/<name>.lua, with the text of
// lua/include/<inc>.lua prepended for each include, in order. A missing file
// is a programming error, so it panics.
func loadScript(name string, includes ...string) *script {
	var src []byte
	for _, inc := range includes {
		b, err := luaFS.ReadFile("lua/include/" + inc + ".lua")
		if err != nil {
			panic(fmt.Sprintf("bullmq: embedded include %s: %v", inc, err))
		}
		src = append(src, b...)
		src = append(src, '\n')
	}
	b, err := luaFS.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(fmt.Sprintf("bullmq: embedded script %s: %v", name, err))
	}
	src = append(src, b...)
	sum := sha1.Sum(src)
	return &script{name: name, src: string(src), sha: hex.EncodeToString(sum[:])}
}

// isNoScript reports whether err is Redis's NOSCRIPT reply.
func isNoScript(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT")
}

// run executes the script on c (a client, a Conn or a transaction-less
// client) with EVALSHA, falling back to EVAL on NOSCRIPT.
func (s *script) run(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd {
	cmd := c.EvalSha(ctx, s.sha, keys, args...)
	if isNoScript(cmd.Err()) {
		return c.Eval(ctx, s.src, keys, args...)
	}
	return cmd
}

// scriptCall is one script invocation queued for runScripts.
type scriptCall struct {
	s    *script
	keys []string
	args []any
	// Cmd holds the reply once runScripts returns.
	cmd *redis.Cmd
}

// runScripts sends all calls in one pipeline (one round trip) with EVALSHA.
// Calls that fail with NOSCRIPT did not run; they are sent again, in their
// original order, with EVAL in a second pipeline. Each call's reply is in
// call.cmd; the error returned is only a transport error of the pipeline
// (per-call script errors are left in call.cmd for the caller).
func runScripts(ctx context.Context, c redis.UniversalClient, calls []*scriptCall) error {
	if len(calls) == 0 {
		return nil
	}
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, call := range calls {
			call.cmd = p.EvalSha(ctx, call.s.sha, call.keys, call.args...)
		}
		return nil
	})
	if err != nil && !isScriptReplyError(err) {
		return err
	}
	var retry []*scriptCall
	for _, call := range calls {
		if isNoScript(call.cmd.Err()) {
			retry = append(retry, call)
		}
	}
	if len(retry) == 0 {
		return nil
	}
	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, call := range retry {
			call.cmd = p.Eval(ctx, call.s.src, call.keys, call.args...)
		}
		return nil
	})
	if err != nil && !isScriptReplyError(err) {
		return err
	}
	return nil
}

// isScriptReplyError reports whether err is an error reply from Redis (such
// as NOSCRIPT or a Lua runtime error) rather than a transport failure.
func isScriptReplyError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
