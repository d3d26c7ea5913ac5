package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestLoadErrorsHideSecrets: whatever variable is wrong, the error names
// it and never quotes a password or key of the environment.
func TestLoadErrorsHideSecrets(t *testing.T) {
	const pw = "S3cretPw"
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"REDIS_URL": "redis://:" + pw + "@h:1/0?dial_timeout=" + pw}, "REDIS_URL"},
		{map[string]string{"REDIS_URL": "redis://:Sl4sh/" + pw + "@h:1"}, "REDIS_URL"},
		{map[string]string{"REDIS_PASSWORD": pw, "REDIS_PORT": pw}, "REDIS_PORT"},
		{map[string]string{"DATABASE_URL": "postgres://u:" + pw + "%zz@h/db"}, "DATABASE_URL"},
		{map[string]string{"DATABASE_URL": "host=h password=" + pw}, "DATABASE_URL"},
		{map[string]string{"DATABASE_URL": "postgres://u@h/db?password=" + pw, "PORT": pw}, "PORT"},
		{map[string]string{"API_KEYS": "key-" + pw, "PORT": "key-" + pw}, "PORT"},
	}
	for _, tt := range tests {
		_, err := LoadOrchestrator(tt.env)
		if err == nil || !strings.Contains(err.Error(), tt.want+":") {
			t.Errorf("LoadOrchestrator(%v) = %v, want an error naming %s", tt.env, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "Sl4sh") {
			t.Errorf("LoadOrchestrator error holds a secret: %v", err)
		}
	}
	_, err := LoadWorker(map[string]string{"ANTHROPIC_API_KEY": "sk-" + pw, "WORKER_CONCURRENCY": "sk-" + pw})
	if err == nil || strings.Contains(err.Error(), pw) {
		t.Errorf("LoadWorker error %v: want one without the key", err)
	}
}

// TestLoggersHideSecrets: the loggers of both binaries mask their secrets.
func TestLoggersHideSecrets(t *testing.T) {
	const pw = "S3cretPw"
	o, err := LoadOrchestrator(map[string]string{"REDIS_URL": "redis://:" + pw + "@h:1/0",
		"DATABASE_URL": "postgres://u:Db" + pw + "@h/db", "API_KEYS": "Key" + pw})
	if err != nil {
		t.Fatal(err)
	}
	w, err := LoadWorker(map[string]string{"REDIS_PASSWORD": "Rp" + pw, "ANTHROPIC_API_KEY": "sk-" + pw})
	if err != nil {
		t.Fatal(err)
	}
	var buf testenv.Buffer
	o.NewLogger(&buf).Error("connect redis://:"+pw+"@h:1/0 failed", "err", errors.New("auth Db"+pw), "key", "Key"+pw)
	w.NewLogger(&buf).Warn("retry", "err", errors.New("password Rp"+pw+" and key sk-"+pw))
	if out := buf.String(); strings.Contains(out, pw) || strings.Count(out, "xxxxx") != 5 {
		t.Errorf("log lines hold a secret or miss a mask:\n%s", out)
	}
	// Without secrets, the logger writes what it is given.
	buf = testenv.Buffer{}
	var none Orchestrator
	none.LogFormat = "json"
	none.NewLogger(&buf).Info("plain S3cretPw")
	if !strings.Contains(buf.String(), "plain S3cretPw") {
		t.Errorf("logger without secrets changed the line: %s", buf.String())
	}
}
