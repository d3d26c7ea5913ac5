package workerapp

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/sandbox"
)

func TestLoadSandboxConfigDefaults(t *testing.T) {
	c, err := LoadSandboxConfig(lookupMap(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != sandbox.ModeAuto || !slices.Equal(c.AgentPorts, []uint16{443}) || c.AgentEnv != nil || c.AgentRead != nil ||
		c.AgentMemory != 4<<30 || c.AgentPIDs != 1024 {
		t.Errorf("defaults = %+v", c)
	}
	o := c.Options(time.Second)
	if o.Mode != sandbox.ModeAuto || o.KillGrace != time.Second || o.MemoryBytes != 4<<30 || o.MaxTasks != 1024 {
		t.Errorf("options = %+v", o)
	}
}

func TestLoadSandboxConfigValues(t *testing.T) {
	c, err := LoadSandboxConfig(lookupMap(map[string]string{
		"WORKER_SANDBOX": "strict", "WORKER_AGENT_ENV": "GITHUB_TOKEN, NPM_*", "WORKER_AGENT_PORTS": "443, 8443",
		"WORKER_AGENT_READ": "/opt/tools,/srv/data", "WORKER_AGENT_MEMORY": "2GiB", "WORKER_AGENT_PIDS": "256",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != sandbox.ModeStrict || !slices.Equal(c.AgentEnv, []string{"GITHUB_TOKEN", "NPM_*"}) ||
		!slices.Equal(c.AgentPorts, []uint16{443, 8443}) || !slices.Equal(c.AgentRead, []string{"/opt/tools", "/srv/data"}) ||
		c.AgentMemory != 2<<30 || c.AgentPIDs != 256 {
		t.Errorf("config = %+v", c)
	}
	c, err = LoadSandboxConfig(lookupMap(map[string]string{"WORKER_SANDBOX": "OFF", "WORKER_AGENT_PORTS": "none",
		"WORKER_AGENT_MEMORY": "0", "WORKER_AGENT_PIDS": "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != sandbox.ModeOff || c.AgentPorts != nil || c.AgentMemory != 0 || c.AgentPIDs != 0 {
		t.Errorf("config = %+v", c)
	}
}

func TestLoadSandboxConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"WORKER_SANDBOX": "maybe"}, []string{"WORKER_SANDBOX"}},
		{map[string]string{"WORKER_AGENT_ENV": "REDIS_PASSWORD"}, []string{"WORKER_AGENT_ENV"}},
		{map[string]string{"WORKER_AGENT_ENV": "DATABASE_URL"}, []string{"WORKER_AGENT_ENV"}},
		{map[string]string{"WORKER_AGENT_ENV": "WORKER_*"}, []string{"WORKER_AGENT_ENV"}},
		{map[string]string{"WORKER_AGENT_ENV": "*"}, []string{"WORKER_AGENT_ENV"}},
		{map[string]string{"WORKER_AGENT_ENV": "API_KEYS"}, []string{"WORKER_AGENT_ENV"}},
		{map[string]string{"WORKER_AGENT_ENV": "A=B"}, []string{"WORKER_AGENT_ENV"}},
		{map[string]string{"WORKER_AGENT_PORTS": "443,http"}, []string{"WORKER_AGENT_PORTS"}},
		{map[string]string{"WORKER_AGENT_PORTS": "0"}, []string{"WORKER_AGENT_PORTS"}},
		{map[string]string{"WORKER_AGENT_PORTS": "70000"}, []string{"WORKER_AGENT_PORTS"}},
		{map[string]string{"WORKER_AGENT_READ": "relative/path"}, []string{"WORKER_AGENT_READ"}},
		{map[string]string{"WORKER_AGENT_MEMORY": "lots"}, []string{"WORKER_AGENT_MEMORY"}},
		{map[string]string{"WORKER_AGENT_MEMORY": "1MiB"}, []string{"WORKER_AGENT_MEMORY"}},
		{map[string]string{"WORKER_AGENT_MEMORY": "-1"}, []string{"WORKER_AGENT_MEMORY"}},
		{map[string]string{"WORKER_AGENT_PIDS": "-5", "WORKER_SANDBOX": "x"}, []string{"WORKER_AGENT_PIDS", "WORKER_SANDBOX"}},
		{map[string]string{"WORKER_AGENT_PIDS": "3"}, []string{"WORKER_AGENT_PIDS"}},
	}
	for _, tt := range tests {
		_, err := LoadSandboxConfig(lookupMap(tt.env))
		if err == nil {
			t.Errorf("%v: no error", tt.env)
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%v: %v is not a *ConfigError", tt.env, err)
		}
		for _, v := range tt.want {
			if !strings.Contains(err.Error(), v+": ") {
				t.Errorf("%v: error %q does not name %s", tt.env, err, v)
			}
		}
	}
	// LoadConfig reports them too.
	if _, err := LoadConfig(lookupMap(map[string]string{"WORKER_AGENT_PORTS": "x"})); err == nil || !strings.Contains(err.Error(), "WORKER_AGENT_PORTS: ") {
		t.Errorf("LoadConfig error = %v", err)
	}
}
