package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agentorch/orchestrator/internal/sandbox"
)

// Sandbox are the worker's agent sandbox settings (see package sandbox),
// one block embedded in Worker.
type Sandbox struct {
	// SandboxMode is WORKER_SANDBOX: auto (default: every protection the
	// kernel offers), strict (refuse to start without all of them) or off.
	SandboxMode string `env:"WORKER_SANDBOX" envDefault:"auto"`
	// AgentEnv is WORKER_AGENT_ENV: comma-separated names, or prefixes
	// ending in "*", of the worker's variables passed to agents besides
	// the minimal set (default none). REDIS_*, DATABASE_URL, WORKER_* and
	// API_KEYS, or patterns matching them, are refused.
	AgentEnv List `env:"WORKER_AGENT_ENV"`
	// AgentPorts is WORKER_AGENT_PORTS: comma-separated TCP ports agents
	// may connect to, 1..65535, or "none" (default 443).
	AgentPorts Ports `env:"WORKER_AGENT_PORTS" envDefault:"443"`
	// AgentRead is WORKER_AGENT_READ: comma-separated absolute paths
	// agents may read besides the system directories (default none).
	AgentRead List `env:"WORKER_AGENT_READ"`
	// AgentMemory is WORKER_AGENT_MEMORY, the data limit of each agent
	// process (RLIMIT_DATA): 0 for none, else ≥ 16MiB (default 4GiB).
	AgentMemory Limit `env:"WORKER_AGENT_MEMORY" envDefault:"4GiB"`
	// AgentPIDs is WORKER_AGENT_PIDS, the processes and threads an agent
	// may have at once (RLIMIT_NPROC): 0 for none, else ≥ 8 (default 1024).
	AgentPIDs int64 `env:"WORKER_AGENT_PIDS" envDefault:"1024"`
}

// validateSandbox records every sandbox variable that is wrong.
func (s Sandbox) validateSandbox(p *problems) {
	if _, err := sandbox.ParseMode(s.SandboxMode); err != nil {
		p.add("WORKER_SANDBOX", "%v", err)
	}
	if err := sandbox.ValidateEnvNames(s.AgentEnv); err != nil {
		p.add("WORKER_AGENT_ENV", "%v", err)
	}
	for _, r := range s.AgentRead {
		if !filepath.IsAbs(r) {
			p.add("WORKER_AGENT_READ", "%q is not an absolute path", r)
		}
	}
	if s.AgentMemory != 0 && s.AgentMemory < 16<<20 {
		p.add("WORKER_AGENT_MEMORY", "must be 0 (no limit) or ≥ 16MiB, got %d bytes", s.AgentMemory)
	}
	if s.AgentPIDs < 0 || (s.AgentPIDs > 0 && s.AgentPIDs < 8) {
		p.add("WORKER_AGENT_PIDS", "must be 0 (no limit) or ≥ 8, got %d", s.AgentPIDs)
	}
}

// SandboxOptions returns the sandbox options of these settings, with the
// worker's kill grace.
func (s Sandbox) SandboxOptions(killGrace time.Duration) sandbox.Options {
	mode, _ := sandbox.ParseMode(s.SandboxMode) // validated by LoadWorker
	return sandbox.Options{Mode: mode, Ports: s.AgentPorts, ReadPaths: s.AgentRead,
		MemoryBytes: int64(s.AgentMemory), MaxTasks: s.AgentPIDs, KillGrace: killGrace}
}

// List is a comma-separated list; blank items are dropped.
type List []string

// UnmarshalText splits text at commas and trims the items.
func (l *List) UnmarshalText(text []byte) error {
	*l = trimList(strings.Split(string(text), ","))
	if len(*l) == 0 {
		*l = nil
	}
	return nil
}

// Ports is a comma-separated list of TCP ports, or "none" for no port.
type Ports []uint16

// UnmarshalText parses "443,8443" or "none".
func (ps *Ports) UnmarshalText(text []byte) error {
	v := strings.TrimSpace(string(text))
	*ps = nil
	if strings.EqualFold(v, "none") {
		return nil
	}
	for _, item := range trimList(strings.Split(v, ",")) {
		n, err := strconv.ParseUint(item, 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("%q is not a TCP port (1-65535); use \"none\" for no port", item)
		}
		*ps = append(*ps, uint16(n))
	}
	if len(*ps) == 0 {
		return fmt.Errorf("no port given; use \"none\" for no port")
	}
	return nil
}

// Limit is a size like ByteSize, or 0 for no limit.
type Limit int64

// UnmarshalText parses "0" or a ByteSize.
func (l *Limit) UnmarshalText(text []byte) error {
	if strings.TrimSpace(string(text)) == "0" {
		*l = 0
		return nil
	}
	var b ByteSize
	if err := b.UnmarshalText(text); err != nil {
		return fmt.Errorf("%w, or 0 for no limit", err)
	}
	*l = Limit(b)
	return nil
}
