package sandbox

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// LandlockABI returns the Landlock ABI version the kernel offers, 0 when
// it offers none.
func LandlockABI() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return v
}

// applyLandlock restricts the calling thread (locked by the caller):
// reading and executing only the system directories, /proc and the read
// paths, writing only the workspace (and, in a private filesystem view,
// /tmp and /dev/shm), TCP connect only to the allowed ports and TCP bind
// only to ephemeral ports, and no signals or abstract UNIX sockets across
// the sandbox boundary. It returns the protections applied and those the
// kernel's ABI lacks; an error means a rule could not be built.
func applyLandlock(spec launchSpec) ([]Protection, []Missing, error) {
	abi := LandlockABI()
	if abi < 1 {
		reason := "Landlock not offered by this kernel"
		return nil, []Missing{{ProtectionLandlockFS, reason}, {ProtectionLandlockNet, reason}, {ProtectionLandlockScope, reason}}, nil
	}
	var rules []landlock.Rule
	rules = append(rules, landlock.RODirs(systemDirs...).IgnoreIfMissing(), landlock.RODirs("/proc").IgnoreIfMissing())
	for _, rp := range readPathsResolved(spec.ReadPaths) {
		fi, err := os.Stat(rp[1])
		if err != nil {
			continue
		}
		if fi.IsDir() {
			rules = append(rules, landlock.RODirs(rp[1]))
		} else {
			rules = append(rules, landlock.ROFiles(rp[1]))
		}
	}
	ws := landlock.RWDirs(spec.Workspace)
	if abi >= 2 {
		ws = ws.WithRefer()
	}
	rules = append(rules, ws)
	devs := make([]string, len(devFiles))
	for i, n := range devFiles {
		devs[i] = "/dev/" + n
	}
	dev := landlock.RWFiles(devs...).IgnoreIfMissing()
	if abi >= 5 {
		dev = dev.WithIoctlDev()
	}
	rules = append(rules, dev)
	if spec.Namespaces {
		rules = append(rules, landlock.RWDirs("/tmp", "/dev/shm").IgnoreIfMissing())
		// Listing directories reveals nothing in the private view.
		rules = append(rules, landlock.PathAccess(ll.AccessFSReadDir, "/"))
	}
	for _, p := range spec.Ports {
		rules = append(rules, landlock.ConnectTCP(p))
	}
	rules = append(rules, landlock.BindTCP(0))

	cfg := landlock.V6.BestEffort()
	fd, flags, err := cfg.NewRulesetFD(rules...)
	if err != nil {
		return nil, nil, err
	}
	if fd < 0 {
		return nil, nil, fmt.Errorf("no ruleset built at ABI %d", abi)
	}
	defer unix.Close(fd)
	if err := ll.LandlockRestrictSelf(fd, flags); err != nil {
		return nil, nil, fmt.Errorf("landlock_restrict_self: %w", err)
	}
	applied := []Protection{ProtectionLandlockFS}
	var missing []Missing
	if abi >= 4 {
		applied = append(applied, ProtectionLandlockNet)
	} else {
		missing = append(missing, Missing{ProtectionLandlockNet, fmt.Sprintf("Landlock ABI %d < 4", abi)})
	}
	if abi >= 6 {
		applied = append(applied, ProtectionLandlockScope)
	} else {
		missing = append(missing, Missing{ProtectionLandlockScope, fmt.Sprintf("Landlock ABI %d < 6", abi)})
	}
	return applied, missing, nil
}

// Classic BPF opcodes for the seccomp filter.
const (
	bpfLdW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJge = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	bpfAnd = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	bpfRet = unix.BPF_RET | unix.BPF_K

	// Offsets in struct seccomp_data.
	offNr   = 0
	offArch = 4
	offArg0 = 16 // low 32 bits on little-endian machines
	offArg1 = 24
	offArg2 = 32

	seccompRetAllow = 0x7fff0000
	seccompRetErrno = 0x00050000
	ipprotoMPTCP    = 262
	sockTypeMask    = 0xf
)

// auditArch returns the AUDIT_ARCH value of the running architecture, and
// whether the filter supports it.
func auditArch() (uint32, bool) {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64, true
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64, true
	}
	return 0, false
}

// seccompFilter builds the filter: system calls of another architecture
// (32-bit compat, x32) and io_uring_setup fail with ENOSYS; socket() is
// allowed for AF_UNIX and AF_NETLINK, and for AF_INET/AF_INET6 only as
// TCP (stream, protocol 0 or TCP), UDP or ICMP (datagram): MPTCP and SCTP
// connections are not seen by Landlock's TCP rules, so they are refused
// with EPROTONOSUPPORT (callers such as Go fall back to TCP); other
// families fail with EAFNOSUPPORT.
func seccompFilter() ([]unix.SockFilter, error) {
	arch, ok := auditArch()
	if !ok {
		return nil, fmt.Errorf("no seccomp filter for %s", runtime.GOARCH)
	}
	errno := func(e unix.Errno) uint32 { return seccompRetErrno | uint32(e) }
	type insn = unix.SockFilter
	stmt := func(code uint16, k uint32) insn { return insn{Code: code, K: k} }
	jump := func(code uint16, k uint32, jt, jf uint8) insn { return insn{Code: code, K: k, Jt: jt, Jf: jf} }
	prog := []insn{
		/* 0 */ stmt(bpfLdW, offArch),
		/* 1 */ jump(bpfJeq, arch, 1, 0),
		/* 2 */ stmt(bpfRet, errno(unix.ENOSYS)),
		/* 3 */ stmt(bpfLdW, offNr),
		/* 4 */ jump(bpfJge, 0x40000000, 0, 1), // x32 system calls
		/* 5 */ stmt(bpfRet, errno(unix.ENOSYS)),
		/* 6 */ jump(bpfJeq, unix.SYS_IO_URING_SETUP, 0, 1),
		/* 7 */ stmt(bpfRet, errno(unix.ENOSYS)),
		/* 8 */ jump(bpfJeq, unix.SYS_SOCKET, 1, 0),
		/* 9 */ stmt(bpfRet, seccompRetAllow),
		// socket(domain, type, protocol)
		/* 10 */ stmt(bpfLdW, offArg0),
		/* 11 */ jump(bpfJeq, unix.AF_UNIX, 4, 0),
		/* 12 */ jump(bpfJeq, unix.AF_NETLINK, 3, 0),
		/* 13 */ jump(bpfJeq, unix.AF_INET, 3, 0),
		/* 14 */ jump(bpfJeq, unix.AF_INET6, 2, 0),
		/* 15 */ stmt(bpfRet, errno(unix.EAFNOSUPPORT)),
		/* 16 */ stmt(bpfRet, seccompRetAllow),
		/* 17 */ stmt(bpfLdW, offArg1),
		/* 18 */ stmt(bpfAnd, sockTypeMask),
		/* 19 */ jump(bpfJeq, unix.SOCK_STREAM, 2, 0),
		/* 20 */ jump(bpfJeq, unix.SOCK_DGRAM, 5, 0),
		/* 21 */ stmt(bpfRet, errno(unix.EPROTONOSUPPORT)),
		// stream: protocol 0 or TCP
		/* 22 */ stmt(bpfLdW, offArg2),
		/* 23 */ jump(bpfJeq, 0, 7, 0),
		/* 24 */ jump(bpfJeq, unix.IPPROTO_TCP, 6, 0),
		/* 25 */ stmt(bpfRet, errno(unix.EPROTONOSUPPORT)),
		// datagram: protocol 0, UDP, ICMP or ICMPv6
		/* 26 */ stmt(bpfLdW, offArg2),
		/* 27 */ jump(bpfJeq, 0, 3, 0),
		/* 28 */ jump(bpfJeq, unix.IPPROTO_UDP, 2, 0),
		/* 29 */ jump(bpfJeq, unix.IPPROTO_ICMP, 1, 0),
		/* 30 */ jump(bpfJeq, unix.IPPROTO_ICMPV6, 0, 1),
		/* 31 */ stmt(bpfRet, seccompRetAllow),
		/* 32 */ stmt(bpfRet, errno(unix.EPROTONOSUPPORT)),
	}
	return prog, nil
}

// applySeccomp installs the filter on the calling thread (locked by the
// caller, with no_new_privs set); the program inherits it.
func applySeccomp() error {
	prog, err := seccompFilter()
	if err != nil {
		return err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return fmt.Errorf("seccomp: %w", e)
	}
	return nil
}
