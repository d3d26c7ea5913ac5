package sandbox

import (
	"encoding/json"
	"os"
	"slices"
	"sync"
)

// launcherArg is the first argument that makes the worker binary act as the
// sandbox launcher.
const launcherArg = "sandbox-exec"

// IsLauncher reports whether args (os.Args) ask the binary to act as the
// sandbox launcher. cmd/worker checks it before anything else in main and
// then calls RunLauncher; so do tests whose binary starts sandboxed
// programs, in TestMain.
func IsLauncher(args []string) bool { return len(args) > 2 && args[1] == launcherArg }

// reportFD is the descriptor on which the launcher writes its report
// lines to the worker.
const reportFD = 3

// launchSpec is what the worker tells the launcher, as JSON in its second
// argument. The program's environment is the launcher's own.
type launchSpec struct {
	Probe  bool `json:"probe,omitempty"`
	Strict bool `json:"strict,omitempty"`
	// Namespaces: the launcher runs in new user, PID, mount and IPC
	// namespaces; NetNS: and a network namespace.
	Namespaces bool `json:"namespaces,omitempty"`
	NetNS      bool `json:"netns,omitempty"`

	Argv      []string `json:"argv,omitempty"`
	Dir       string   `json:"dir"`
	Workspace string   `json:"workspace"`
	ReadPaths []string `json:"readPaths,omitempty"`
	Ports     []uint16 `json:"ports,omitempty"`

	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	MaxTasks    int64 `json:"maxTasks,omitempty"`
	KillGraceMs int64 `json:"killGraceMs"`
}

// message is one report line from the launcher.
type message struct {
	Applied []Protection `json:"applied,omitempty"`
	Missing []Missing    `json:"missing,omitempty"`
	Error   string       `json:"error,omitempty"`
	Exit    *exitInfo    `json:"exit,omitempty"`
}

// exitInfo is how the program ended, as the launcher saw it.
type exitInfo struct {
	Code          int    `json:"code"`
	Signal        string `json:"signal,omitempty"`
	PeakTasks     int64  `json:"peakTasks,omitempty"`
	PeakDataBytes int64  `json:"peakDataBytes,omitempty"`
}

// reporter writes report lines, each in one write.
type reporter struct {
	mu sync.Mutex
	f  *os.File
}

func (r *reporter) send(m message) {
	if r == nil || r.f == nil {
		return
	}
	b, _ := json.Marshal(m)
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.f.Write(append(b, '\n'))
}

// protectionOrder is the order protections are listed in.
var protectionOrder = []Protection{
	ProtectionEnv, ProtectionUserNS, ProtectionPIDNS, ProtectionMountNS, ProtectionIPCNS, ProtectionNetNS,
	ProtectionLandlockFS, ProtectionLandlockNet, ProtectionLandlockScope, ProtectionSeccomp,
	ProtectionNoNewPrivs, ProtectionSubreaper, ProtectionMemoryLimit, ProtectionPIDsLimit,
}

// sortProtections returns ps deduplicated, in protectionOrder.
func sortProtections(ps []Protection) []Protection {
	out := make([]Protection, 0, len(ps))
	for _, p := range protectionOrder {
		if slices.Contains(ps, p) {
			out = append(out, p)
		}
	}
	return out
}

// WithProtection returns ps with p added, in the fixed order.
func WithProtection(ps []Protection, p Protection) []Protection {
	return sortProtections(append(slices.Clone(ps), p))
}
