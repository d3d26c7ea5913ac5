package workerapp

import (
	"fmt"
	"os/exec"

	"github.com/agentorch/orchestrator/internal/executor"
	"github.com/agentorch/orchestrator/internal/sandbox"
)

// NewSandbox returns the agent sandbox cfg asks for (see SandboxConfig). It
// does no I/O; the caller probes it (Sandbox.Probe) before the first task.
func NewSandbox(cfg *Config) (*sandbox.Sandbox, error) {
	sb, err := sandbox.New(cfg.Sandbox.Options(cfg.KillGrace))
	if err != nil {
		return nil, &ConfigError{Var: "WORKER_SANDBOX", Err: err}
	}
	return sb, nil
}

// UsesSandbox reports whether cfg's executor starts programs, which run in
// the sandbox.
func (c *Config) UsesSandbox() bool {
	return c.Executor == ExecutorClaude || c.Executor == ExecutorCommand
}

// NewExecutor builds the executor cfg asks for and checks what can be
// checked before any task runs: the claude binary and the command's program
// must exist. The claude and command executors run their programs in sb
// (nil: no sandbox). Errors are *ConfigError values naming the variable.
func NewExecutor(cfg *Config, sb *sandbox.Sandbox) (executor.Executor, error) {
	proc := executor.ProcessOptions{KillGrace: cfg.KillGrace, MaxOutput: cfg.MaxOutput, Sandbox: sb, AgentEnv: cfg.Sandbox.AgentEnv}
	switch cfg.Executor {
	case ExecutorClaude:
		bin, err := executor.LookClaude(cfg.ClaudeBin)
		if err != nil {
			return nil, &ConfigError{Var: "CLAUDE_BIN", Err: err}
		}
		e, err := executor.NewClaude(executor.ClaudeOptions{
			Bin: bin, Model: cfg.ClaudeModel, PermissionMode: cfg.ClaudePermissionMode,
			ExtraArgs: cfg.ClaudeArgs, Process: proc,
		})
		if err != nil {
			return nil, &ConfigError{Var: "WORKER_EXECUTOR", Err: err}
		}
		return e, nil
	case ExecutorAnthropic:
		e, err := executor.NewAnthropic(executor.AnthropicOptions{
			APIKey: cfg.AnthropicAPIKey, Model: cfg.AnthropicModel, BaseURL: cfg.AnthropicBaseURL,
			MaxTokens: cfg.AnthropicMaxTokens, MaxRetries: cfg.AnthropicMaxRetries, MaxOutput: cfg.MaxOutput,
		})
		if err != nil {
			return nil, &ConfigError{Var: "ANTHROPIC_API_KEY", Err: err}
		}
		return e, nil
	case ExecutorCommand:
		if len(cfg.Command) == 0 {
			return nil, &ConfigError{Var: "WORKER_COMMAND", Err: fmt.Errorf("is required for WORKER_EXECUTOR=command")}
		}
		if _, err := exec.LookPath(cfg.Command[0]); err != nil {
			return nil, &ConfigError{Var: "WORKER_COMMAND", Err: fmt.Errorf("program %q not found: %w", cfg.Command[0], err)}
		}
		e, err := executor.NewCommand(cfg.Command, proc)
		if err != nil {
			return nil, &ConfigError{Var: "WORKER_COMMAND", Err: err}
		}
		return e, nil
	case ExecutorNoop:
		return executor.Noop{}, nil
	default:
		return nil, &ConfigError{Var: "WORKER_EXECUTOR", Err: fmt.Errorf("unknown executor %q", cfg.Executor)}
	}
}
