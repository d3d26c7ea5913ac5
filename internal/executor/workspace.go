package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Limits of a workspace snapshot. Files past them are not diffed but still
// named in the diff.
const (
	maxSnapshotFiles    = 2000
	maxSnapshotFileSize = 1 << 20
)

// skippedDirs are not walked: version control, the agent's own settings,
// and dependency caches.
var skippedDirs = map[string]bool{".git": true, ".claude": true, "node_modules": true, ".venv": true, "__pycache__": true}

// snapshot is the content of every regular file in a workspace, by slash
// path relative to it. Files too large to keep map to nil and are listed
// in big.
type snapshot struct {
	files map[string][]byte
	big   map[string]int64 // size of files not kept
}

// takeSnapshot reads the files under dir.
func takeSnapshot(dir string) (snapshot, error) {
	s := snapshot{files: map[string][]byte{}, big: map[string]int64{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && skippedDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if len(s.files) >= maxSnapshotFiles {
			return errTooManyFiles
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > maxSnapshotFileSize {
			s.files[rel] = nil
			s.big[rel] = info.Size()
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		s.files[rel] = b
		return nil
	})
	if err != nil && !errors.Is(err, errTooManyFiles) {
		return s, fmt.Errorf("snapshot %s: %w", dir, err)
	}
	return s, nil
}

var errTooManyFiles = errors.New("too many files")

// diffSnapshots returns the unified diff from before to after, files in
// path order.
func diffSnapshots(before, after snapshot) string {
	names := map[string]bool{}
	for n := range before.files {
		names[n] = true
	}
	for n := range after.files {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	var b strings.Builder
	for _, n := range sorted {
		old, inOld := before.files[n]
		cur, inNew := after.files[n]
		_, oldBig := before.big[n]
		_, newBig := after.big[n]
		if oldBig || newBig {
			if oldBig && newBig && before.big[n] == after.big[n] {
				continue // cannot tell; assume unchanged
			}
			fmt.Fprintf(&b, "diff --git a/%s b/%s\nFiles differ (larger than %d bytes, not diffed)\n", n, n, maxSnapshotFileSize)
			continue
		}
		oldName, newName := n, n
		if !inOld {
			oldName = ""
		}
		if !inNew {
			newName = ""
		}
		b.WriteString(unifiedDiff(oldName, newName, old, cur))
	}
	return b.String()
}

// codeFileName guesses a file name for a task's code from its content, so
// that the agent and its tools see a familiar extension.
func codeFileName(code string) string {
	for _, g := range fileGuesses {
		if g.re.MatchString(code) {
			return g.name
		}
	}
	return "main.txt"
}

var fileGuesses = []struct {
	re   *regexp.Regexp
	name string
}{
	{regexp.MustCompile(`(?m)^#!.*\b(ba|z)?sh\b`), "main.sh"},
	{regexp.MustCompile(`(?m)^#!.*\bpython`), "main.py"},
	{regexp.MustCompile(`(?m)^#!.*\bnode\b`), "main.js"},
	{regexp.MustCompile(`(?m)^package\s+\w+\s*$`), "main.go"},
	{regexp.MustCompile(`(?m)^\s*fn\s+\w+\s*\(|^\s*use\s+std::`), "main.rs"},
	{regexp.MustCompile(`(?m)^\s*#include\s*[<"]`), "main.c"},
	{regexp.MustCompile(`(?m)^\s*(public\s+)?(final\s+)?class\s+\w+.*\{|^import\s+java\.`), "Main.java"},
	{regexp.MustCompile(`(?m)^\s*(def\s+\w+\s*\(.*\)\s*:|from\s+\w[\w.]*\s+import\s|import\s+\w+\s*$|class\s+\w+.*:\s*$)`), "main.py"},
	{regexp.MustCompile(`(?m)\b(interface|type)\s+\w+\s*(=|\{)|:\s*(string|number|boolean)\b`), "main.ts"},
	{regexp.MustCompile(`(?m)\b(console\.log|function\s*\w*\s*\(|const\s+\w+\s*=|let\s+\w+\s*=|require\(|=>)`), "main.js"},
}

// workspace is a task's private directory tree: the program runs in work
// (which holds the task's code for the claude executor), with HOME in home
// and TMPDIR in tmp. The sandbox lets the program write nowhere else.
type workspace struct {
	root, work, home, tmp string
}

// newWorkspace creates a workspace under tempDir ("" means os.TempDir()).
func newWorkspace(tempDir string) (*workspace, error) {
	root, err := os.MkdirTemp(tempDir, "agent-task-*")
	if err != nil {
		return nil, fmt.Errorf("create workspace: %w", err)
	}
	w := &workspace{root: root, work: filepath.Join(root, "work"), home: filepath.Join(root, "home"), tmp: filepath.Join(root, "tmp")}
	for _, d := range []string{w.work, w.home, w.tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			w.remove()
			return nil, fmt.Errorf("create workspace: %w", err)
		}
	}
	return w, nil
}

// handOver gives the workspace to the user sandboxed programs run as,
// when that is not the worker's (a root worker's programs run as nobody).
func (w *workspace) handOver(o ProcessOptions) error {
	if !o.sandboxed() {
		return nil
	}
	uid, gid, chown := o.Sandbox.WorkspaceOwner()
	if !chown {
		return nil
	}
	return filepath.WalkDir(w.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// remove deletes the workspace and everything in it.
func (w *workspace) remove() {
	if err := os.RemoveAll(w.root); err != nil {
		// A program may have left a directory without write permission.
		_ = filepath.WalkDir(w.root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(path, 0o755)
			}
			return nil
		})
		_ = os.RemoveAll(w.root)
	}
}
