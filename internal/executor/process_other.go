//go:build !linux

package executor

import "syscall"

// sysProcAttr puts the program in its own process group, so that the
// whole group can be signalled.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
