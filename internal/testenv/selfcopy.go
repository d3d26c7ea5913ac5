package testenv

import (
	"io"
	"os"
	"path/filepath"
)

// CopySelf copies the running (test) binary into a new directory that
// every user may enter and execute from, under name, and returns its path
// and a function that removes the copy. Tests whose programs run as
// another user (a sandboxed agent runs as nobody) use it from TestMain to
// re-execute the test binary as a helper; the original may sit in a
// directory only its owner can read.
func CopySelf(name string) (path string, remove func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "testbin-*")
	if err != nil {
		return "", nil, err
	}
	remove = func() { _ = os.RemoveAll(dir) }
	if err := os.Chmod(dir, 0o755); err != nil {
		remove()
		return "", nil, err
	}
	path = filepath.Join(dir, name)
	if err := copyFile(self, path); err != nil {
		remove()
		return "", nil, err
	}
	return path, remove, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
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
