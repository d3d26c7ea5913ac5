package workerapp

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agentorch/orchestrator/internal/sandbox"
)

// SandboxConfig is the agent sandbox's part of the worker configuration
// (see package sandbox). LoadSandboxConfig fills it from the environment;
// it is self-contained so that it can move to another loader as a unit.
type SandboxConfig struct {
	// Mode is WORKER_SANDBOX: "auto" (default), "strict" or "off".
	Mode sandbox.Mode
	// AgentEnv is WORKER_AGENT_ENV: comma-separated names (or prefixes
	// ending in "*") of the worker's variables passed to agents besides
	// the minimal set. REDIS_*, DATABASE_URL, WORKER_* and API_KEYS are
	// refused. Defaults to none.
	AgentEnv []string
	// AgentPorts is WORKER_AGENT_PORTS: comma-separated TCP ports agents
	// may connect to, or "none". Defaults to 443.
	AgentPorts []uint16
	// AgentRead is WORKER_AGENT_READ: comma-separated absolute paths
	// agents may read besides the system directories. Defaults to none.
	AgentRead []string
	// AgentMemory is WORKER_AGENT_MEMORY in bytes, the data limit of each
	// agent process (RLIMIT_DATA); 0 means none. Defaults to 4 GiB.
	AgentMemory int64
	// AgentPIDs is WORKER_AGENT_PIDS, the processes and threads an agent
	// may have at once (RLIMIT_NPROC); 0 means none. Defaults to 1024.
	AgentPIDs int64
}

// Defaults of SandboxConfig.
const (
	DefaultAgentPort   = 443
	DefaultAgentMemory = 4 << 30
	DefaultAgentPIDs   = 1024
)

// LoadSandboxConfig reads the WORKER_SANDBOX and WORKER_AGENT_* variables
// from lookup and validates them. Errors are *ConfigError values, joined,
// one per wrong variable.
func LoadSandboxConfig(lookup func(string) (string, bool)) (SandboxConfig, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	var errs []error
	fail := func(name string, err error) { errs = append(errs, &ConfigError{Var: name, Err: err}) }
	c := SandboxConfig{Mode: sandbox.ModeAuto, AgentPorts: []uint16{DefaultAgentPort}, AgentMemory: DefaultAgentMemory, AgentPIDs: DefaultAgentPIDs}

	if v := get("WORKER_SANDBOX"); v != "" {
		m, err := sandbox.ParseMode(v)
		if err != nil {
			fail("WORKER_SANDBOX", err)
		}
		c.Mode = m
	}
	c.AgentEnv = splitList(get("WORKER_AGENT_ENV"))
	if err := sandbox.ValidateEnvNames(c.AgentEnv); err != nil {
		fail("WORKER_AGENT_ENV", err)
	}
	if v := get("WORKER_AGENT_PORTS"); v != "" {
		c.AgentPorts = nil
		if !strings.EqualFold(v, "none") {
			for _, p := range splitList(v) {
				n, err := strconv.ParseUint(p, 10, 16)
				if err != nil || n == 0 {
					fail("WORKER_AGENT_PORTS", fmt.Errorf("%q is not a TCP port (1-65535); use \"none\" for no port", p))
					continue
				}
				c.AgentPorts = append(c.AgentPorts, uint16(n))
			}
		}
	}
	c.AgentRead = splitList(get("WORKER_AGENT_READ"))
	for _, p := range c.AgentRead {
		if !filepath.IsAbs(p) {
			fail("WORKER_AGENT_READ", fmt.Errorf("%q is not an absolute path", p))
		}
	}
	if v := get("WORKER_AGENT_MEMORY"); v != "" {
		n, err := parseByteSize(v)
		if err != nil {
			fail("WORKER_AGENT_MEMORY", err)
		}
		c.AgentMemory = n
	}
	if v := get("WORKER_AGENT_PIDS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || (n > 0 && n < 8) {
			fail("WORKER_AGENT_PIDS", fmt.Errorf("%q is not 0 (no limit) or an integer >= 8", v))
		}
		c.AgentPIDs = n
	}
	return c, errors.Join(errs...)
}

// Options returns the sandbox options for c, with the worker's kill grace.
func (c SandboxConfig) Options(killGrace time.Duration) sandbox.Options {
	return sandbox.Options{Mode: c.Mode, Ports: c.AgentPorts, ReadPaths: c.AgentRead,
		MemoryBytes: c.AgentMemory, MaxTasks: c.AgentPIDs, KillGrace: killGrace}
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parseByteSize parses "0" (no limit), a byte count, or a number with a
// KiB, MiB, GiB, KB, MB or GB suffix; below 16 MiB is refused, as no
// agent runtime starts with less.
func parseByteSize(v string) (int64, error) {
	num, mult := v, int64(1)
	for _, s := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}} {
		if strings.HasSuffix(v, s.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(v, s.suffix)), s.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size (bytes, or with KiB, MiB, GiB, KB, MB, GB; 0 for no limit)", v)
	}
	if n*mult != 0 && n*mult < 16<<20 {
		return 0, fmt.Errorf("%s is below the minimum 16MiB (0 means no limit)", v)
	}
	return n * mult, nil
}
