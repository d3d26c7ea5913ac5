package executor

import "syscall"

// sysProcAttr puts the program in its own process group, so that the
// whole group can be signalled, and has the kernel kill it if the worker
// dies without cleaning up (Pdeathsig), so a SIGKILLed worker leaves no agent
// running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
