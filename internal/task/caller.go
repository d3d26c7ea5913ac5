package task

import "context"

// Caller is who asks the Service for something: the API key of an HTTP
// request. A context without a Caller (background loops, an API without
// keys) acts for the system and sees every task.
//
// Ownership rules, enforced by the Service:
//   - a task belongs to the Name of the caller that created it ("" without
//     a caller, or for a caller without a name);
//   - an admin caller sees and acts on every task;
//   - any other caller sees only the tasks it owns: Get, Cancel and Retry of
//     another owner's task fail with ErrNotFound (not ErrForbidden, so that
//     task ids do not leak), and List and Stats count only its own tasks.
type Caller struct {
	// Name is the caller's name (the API key's name); "" for none.
	Name string
	// Admin callers see every task.
	Admin bool
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the Caller ctx carries, and false when it carries none.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// ownerScope returns the owner whose tasks the caller of ctx may see, and
// false when it may see every task (no caller, or an admin).
func ownerScope(ctx context.Context) (string, bool) {
	c, ok := CallerFrom(ctx)
	if !ok || c.Admin {
		return "", false
	}
	return c.Name, true
}

// ownerOf returns the owner of a task created in ctx: the caller's name,
// "" without a caller.
func ownerOf(ctx context.Context) string {
	c, _ := CallerFrom(ctx)
	return c.Name
}

// Visible reports whether the caller of ctx may see t (see Caller).
func Visible(ctx context.Context, t *Task) bool {
	owner, scoped := ownerScope(ctx)
	return !scoped || t.Owner == owner
}
