package sandbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestSmoke(t *testing.T) {
	s, err := New(Options{Ports: []uint16{443}, MemoryBytes: 1 << 30, MaxTasks: 100})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Probe(context.Background())
	t.Logf("probe: %v err %v", rep, err)
	ws, _ := os.MkdirTemp("", "ws-*")
	defer os.RemoveAll(ws)
	os.Mkdir(filepath.Join(ws, "tmp"), 0o777)
	if uid, gid, ok := s.WorkspaceOwner(); ok {
		os.Chown(ws, uid, gid)
		os.Chown(filepath.Join(ws, "tmp"), uid, gid)
	}
	c := s.Command(Spec{Argv: []string{"/bin/sh", "-c", "id; pwd; ls /; ls /tmp; env; cat /proc/self/status | grep -i cap; ps ax 2>&1 | head; echo hi > x; ls -la"}, Dir: ws, Workspace: ws, Env: []string{"PATH=/usr/bin:/bin"}})
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	res, err := c.Wait()
	t.Logf("res %+v err %v\n%s", res, err, out.String())
}
