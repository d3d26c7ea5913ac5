package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// systemDirs are readable (and executable) by every sandboxed program.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"}

// devFiles are the device files a sandboxed program may use.
var devFiles = []string{"null", "zero", "full", "random", "urandom", "tty"}

// shmSize and tmpSize bound the private /dev/shm and /tmp (memory).
const (
	shmSize = "64m"
	tmpSize = "256m"
)

// readPathsResolved returns the extra read paths with symlinks resolved,
// the missing ones dropped, plus what /etc/resolv.conf points to when it
// leaves /etc (DNS needs it). Each entry is {path as given, real path}.
func readPathsResolved(paths []string) [][2]string {
	var out [][2]string
	if real, err := filepath.EvalSymlinks("/etc/resolv.conf"); err == nil && !strings.HasPrefix(real, "/etc/") {
		out = append(out, [2]string{real, real})
	}
	for _, p := range paths {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue
		}
		out = append(out, [2]string{filepath.Clean(p), real})
	}
	return out
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// buildRoot replaces the root of the launcher's (new, private) mount
// namespace with a tmpfs holding read-only binds of the system directories
// and the read paths, a writable bind of the workspace (also on /tmp when
// it has a tmp directory), a /proc of the PID namespace and a minimal
// /dev. It reports whether /proc is the namespace's own.
func buildRoot(spec launchSpec) (privateProc bool, err error) {
	ws, err := filepath.EvalSymlinks(spec.Workspace)
	if err != nil {
		return false, fmt.Errorf("workspace: %w", err)
	}
	reads := readPathsResolved(spec.ReadPaths)

	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return false, fmt.Errorf("make / private: %w", err)
	}
	// A scratch tmpfs becomes the root for a moment, with the old root
	// under /oldroot, so that every source is reachable while the final
	// root is built in /newroot.
	base := "/tmp"
	if err := unix.Mount("tmpfs", base, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m"); err != nil {
		return false, fmt.Errorf("scratch tmpfs: %w", err)
	}
	if err := os.Mkdir(base+"/oldroot", 0o755); err != nil {
		return false, err
	}
	if err := unix.PivotRoot(base, base+"/oldroot"); err != nil {
		return false, fmt.Errorf("pivot_root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return false, err
	}
	const nr = "/newroot"
	if err := os.Mkdir(nr, 0o755); err != nil {
		return false, err
	}
	if err := unix.Mount("tmpfs", nr, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=4m"); err != nil {
		return false, fmt.Errorf("root tmpfs: %w", err)
	}

	// A private /tmp first: the paths bound below may be inside it.
	if err := os.Mkdir(nr+"/tmp", 0o1777); err != nil {
		return false, err
	}
	if err := unix.Mount("tmpfs", nr+"/tmp", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size="+tmpSize); err != nil {
		return false, fmt.Errorf("tmpfs /tmp: %w", err)
	}

	var bound []string
	for _, d := range systemDirs {
		src := "/oldroot" + d
		fi, err := os.Lstat(src)
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(src)
			if err != nil {
				return false, err
			}
			if err := os.Symlink(target, nr+d); err != nil {
				return false, err
			}
			continue
		}
		if err := bindReadOnly(src, nr+d, true); err != nil {
			return false, err
		}
		bound = append(bound, d)
	}
	for _, rp := range reads {
		given, real := rp[0], rp[1]
		if slices.ContainsFunc(bound, func(b string) bool { return under(real, b) }) || under(real, ws) {
			// Already in the view; a symlink to it may still be needed.
		} else {
			fi, err := os.Stat("/oldroot" + real)
			if err != nil {
				continue
			}
			if err := bindReadOnly("/oldroot"+real, nr+real, fi.IsDir()); err != nil {
				return false, err
			}
			bound = append(bound, real)
		}
		if given != real && !slices.ContainsFunc(bound, func(b string) bool { return under(given, b) }) {
			if err := os.MkdirAll(filepath.Dir(nr+given), 0o755); err != nil {
				return false, err
			}
			_ = os.Symlink(real, nr+given)
		}
	}

	// The workspace, writable, at its own path (which may be in /tmp).
	if err := os.MkdirAll(nr+ws, 0o755); err != nil {
		return false, err
	}
	if err := unix.Mount("/oldroot"+ws, nr+ws, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return false, fmt.Errorf("bind workspace: %w", err)
	}
	if err := remount(nr+ws, unix.MS_NOSUID|unix.MS_NODEV); err != nil {
		return false, err
	}

	// /proc of the new PID namespace; the host's (read-only) if the kernel
	// refuses a new one (as in some containers).
	if err := os.Mkdir(nr+"/proc", 0o555); err != nil {
		return false, err
	}
	if err := unix.Mount("proc", nr+"/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err == nil {
		privateProc = true
	} else if err := bindReadOnly("/oldroot/proc", nr+"/proc", true); err != nil {
		return false, fmt.Errorf("proc: %w", err)
	}

	if err := buildDev(nr); err != nil {
		return false, fmt.Errorf("dev: %w", err)
	}

	if err := unix.Unmount("/oldroot", unix.MNT_DETACH); err != nil {
		return false, fmt.Errorf("detach old root: %w", err)
	}
	if err := os.Chdir(nr); err != nil {
		return false, err
	}
	// Stack the new root on top of the scratch one and drop the latter.
	if err := unix.PivotRoot(".", "."); err != nil {
		return false, fmt.Errorf("pivot_root to the new root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return false, fmt.Errorf("detach scratch root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return false, err
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return false, fmt.Errorf("read-only root: %w", err)
	}
	return privateProc, nil
}

// buildDev makes root/dev a tmpfs with binds of devFiles, the usual
// symlinks and a private /dev/shm.
func buildDev(root string) error {
	dev := root + "/dev"
	if err := os.Mkdir(dev, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
		return err
	}
	for _, n := range devFiles {
		src := "/oldroot/dev/" + n
		if _, err := os.Stat(src); err != nil {
			continue
		}
		f, err := os.OpenFile(dev+"/"+n, os.O_CREATE|os.O_WRONLY, 0o666)
		if err != nil {
			return err
		}
		f.Close()
		if err := unix.Mount(src, dev+"/"+n, "", unix.MS_BIND, ""); err != nil {
			if n == "tty" {
				os.Remove(dev + "/" + n)
				continue
			}
			return fmt.Errorf("bind %s: %w", n, err)
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, dev+"/"+name); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dev+"/shm", 0o1777); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev+"/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size="+shmSize); err != nil {
		return fmt.Errorf("shm: %w", err)
	}
	return nil
}

// bindReadOnly binds src on dst (created as a directory or an empty file)
// and makes the bind read-only and nosuid.
func bindReadOnly(src, dst string, dir bool) error {
	if dir {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		f.Close()
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", strings.TrimPrefix(src, "/oldroot"), err)
	}
	return remount(dst, unix.MS_RDONLY|unix.MS_NOSUID)
}

// remount adds flags to the bind mount at dst, keeping the flags the
// kernel locks in a user namespace (nodev, noexec, atime…).
func remount(dst string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dst, &st); err != nil {
		return err
	}
	keep := uintptr(0)
	for _, f := range []struct{ st, ms uintptr }{
		{unix.ST_RDONLY, unix.MS_RDONLY}, {unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_SYNCHRONOUS, unix.MS_SYNCHRONOUS}, {unix.ST_MANDLOCK, unix.MS_MANDLOCK},
		{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(st.Flags)&f.st != 0 {
			keep |= f.ms
		}
	}
	if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|flags|keep, ""); err != nil {
		return fmt.Errorf("remount %s: %w", dst, errors.Join(err))
	}
	return nil
}
