// Package sandbox boxes in the agent processes a worker starts: the programs
// run by the claude and command executors, which act on prompts and code
// from clients and must be treated as untrusted.
//
// A [Sandbox] starts a program through a small launcher: the worker binary
// re-executed as "sandbox-exec" (see [IsLauncher] and [RunLauncher], which
// cmd/worker calls first thing in main). Where the kernel allows it, the
// launcher enters new user, PID, mount and IPC namespaces (and a network
// namespace when no TCP port is allowed) and builds a read-only view of the
// system with only the task's workspace writable. Then, as PID 1 of the new
// PID namespace, on the thread that starts the program, it drops every
// capability and sets no_new_privs, a seccomp filter and Landlock rules
// (filesystem, TCP connect/bind by port, signal and abstract-socket
// scoping), all inherited by the program, which it stops at its first
// instruction (ptrace) to give it its resource limits (prlimit). The launcher reaps every process of the namespace
// and, when the program exits, is stopped or times out, kills all of them;
// the kernel kills them too when the launcher dies, so a SIGKILLed worker
// leaves no agent behind.
//
// Each protection is named by a [Protection]. In [ModeAuto] the sandbox uses
// every protection the kernel offers and reports which, in [ModeStrict] it
// refuses to run unless all are available, and [ModeOff] runs programs
// without it. The environment the program gets is the caller's business;
// [AgentEnv] builds the minimal one the executors use.
//
// docs/sandbox.md explains the design and what it does and does not
// guarantee.
package sandbox
