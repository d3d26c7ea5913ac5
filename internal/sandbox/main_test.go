//go:build linux

package sandbox

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// helperBin is a copy of this test binary that every user can execute; as
// "helper ACTION" it performs one action a sandboxed program might try.
var helperBin string

func TestMain(m *testing.M) {
	if IsLauncher(os.Args) {
		RunLauncher()
	}
	if len(os.Args) > 2 && os.Args[1] == "helper" {
		os.Exit(helper(os.Args[2]))
	}
	var (
		remove func()
		err    error
	)
	helperBin, remove, err = testenv.CopySelf("sandbox.test")
	if err != nil {
		panic(err)
	}
	code := m.Run()
	remove()
	os.Exit(code)
}

// helper prints the outcome of the system calls the seccomp filter
// judges, one "name: result" line each, or hangs ignoring SIGTERM.
func helper(action string) int {
	switch action {
	case "sockets":
		for _, s := range []struct {
			name           string
			domain, typ, p int
		}{
			{"tcp", unix.AF_INET, unix.SOCK_STREAM, 0},
			{"tcp6", unix.AF_INET6, unix.SOCK_STREAM | unix.SOCK_CLOEXEC, unix.IPPROTO_TCP},
			{"udp", unix.AF_INET, unix.SOCK_DGRAM, 0},
			{"unix", unix.AF_UNIX, unix.SOCK_STREAM, 0},
			{"mptcp", unix.AF_INET, unix.SOCK_STREAM, 262},
			{"mptcp6", unix.AF_INET6, unix.SOCK_STREAM | unix.SOCK_NONBLOCK, 262},
			{"sctp", unix.AF_INET, unix.SOCK_SEQPACKET, unix.IPPROTO_SCTP},
			{"vsock", unix.AF_VSOCK, unix.SOCK_STREAM, 0},
		} {
			fd, err := unix.Socket(s.domain, s.typ, s.p)
			if err == nil {
				unix.Close(fd)
				fmt.Printf("%s: ok\n", s.name)
			} else {
				fmt.Printf("%s: %v\n", s.name, err)
			}
		}
		var params [120]byte
		_, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params)), 0)
		if e == 0 {
			fmt.Println("io_uring: ok")
		} else {
			fmt.Printf("io_uring: %v\n", e)
		}
	case "hang":
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(time.Hour)
	default:
		fmt.Fprintln(os.Stderr, "unknown helper action")
		return 2
	}
	return 0
}
