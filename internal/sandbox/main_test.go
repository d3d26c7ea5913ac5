//go:build linux

package sandbox

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
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
	dir, err := os.MkdirTemp("", "sandbox-test-bin-*")
	if err != nil {
		panic(err)
	}
	helperBin = filepath.Join(dir, "sandbox.test")
	if err := copyFile(helperBin); err != nil {
		panic(err)
	}
	_ = os.Chmod(dir, 0o755)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func copyFile(to string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	in, err := os.Open(self)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
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
