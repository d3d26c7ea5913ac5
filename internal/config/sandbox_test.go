package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/sandbox"
)

func TestLoadWorkerSandboxDefaults(t *testing.T) {
	c, err := LoadWorker(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	o := c.SandboxOptions(time.Second)
	if o.Mode != sandbox.ModeAuto || !slices.Equal(o.Ports, []uint16{443}) || o.ReadPaths != nil || o.MemoryBytes != 4<<30 ||
		o.MaxTasks != 1024 || o.KillGrace != time.Second || c.AgentEnv != nil {
		t.Errorf("defaults = %+v / %+v", c.Sandbox, o)
	}
}

func TestLoadWorkerSandboxValues(t *testing.T) {
	c, err := LoadWorker(map[string]string{
		"WORKER_SANDBOX": "strict", "WORKER_AGENT_ENV": "GITHUB_TOKEN, NPM_*", "WORKER_AGENT_PORTS": "443, 8443",
		"WORKER_AGENT_READ": "/opt/tools,/srv/data", "WORKER_AGENT_MEMORY": "2GiB", "WORKER_AGENT_PIDS": "256",
	})
	if err != nil {
		t.Fatal(err)
	}
	o := c.SandboxOptions(0)
	if o.Mode != sandbox.ModeStrict || !slices.Equal(c.AgentEnv, List{"GITHUB_TOKEN", "NPM_*"}) || !slices.Equal(o.Ports, []uint16{443, 8443}) ||
		!slices.Equal(o.ReadPaths, []string{"/opt/tools", "/srv/data"}) || o.MemoryBytes != 2<<30 || o.MaxTasks != 256 {
		t.Errorf("config = %+v", o)
	}
	c, err = LoadWorker(map[string]string{"WORKER_SANDBOX": "OFF", "WORKER_AGENT_PORTS": "none", "WORKER_AGENT_MEMORY": "0", "WORKER_AGENT_PIDS": "0"})
	if err != nil {
		t.Fatal(err)
	}
	if o := c.SandboxOptions(0); o.Mode != sandbox.ModeOff || o.Ports != nil || o.MemoryBytes != 0 || o.MaxTasks != 0 {
		t.Errorf("config = %+v", o)
	}
}

func TestLoadWorkerSandboxErrorsNameTheVariable(t *testing.T) {
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
		{map[string]string{"WORKER_AGENT_PORTS": " , "}, []string{"WORKER_AGENT_PORTS"}},
		{map[string]string{"WORKER_AGENT_READ": "relative/path"}, []string{"WORKER_AGENT_READ"}},
		{map[string]string{"WORKER_AGENT_MEMORY": "lots"}, []string{"WORKER_AGENT_MEMORY"}},
		{map[string]string{"WORKER_AGENT_MEMORY": "1MiB"}, []string{"WORKER_AGENT_MEMORY"}},
		{map[string]string{"WORKER_AGENT_MEMORY": "-1"}, []string{"WORKER_AGENT_MEMORY"}},
		{map[string]string{"WORKER_AGENT_PIDS": "-5", "WORKER_SANDBOX": "x"}, []string{"WORKER_AGENT_PIDS", "WORKER_SANDBOX"}},
		{map[string]string{"WORKER_AGENT_PIDS": "3"}, []string{"WORKER_AGENT_PIDS"}},
		{map[string]string{"WORKER_AGENT_PIDS": "many"}, []string{"WORKER_AGENT_PIDS"}},
	}
	for _, tt := range tests {
		_, err := LoadWorker(tt.env)
		if err == nil {
			t.Errorf("%v: no error", tt.env)
			continue
		}
		for _, v := range tt.want {
			if !strings.Contains(err.Error(), v+": ") {
				t.Errorf("%v: error %q does not name %s", tt.env, err, v)
			}
		}
	}
}
