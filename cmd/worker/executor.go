package main

import (
	"fmt"
	"os/exec"

	"github.com/agentorch/orchestrator/internal/config"
	"github.com/agentorch/orchestrator/internal/executor"
	"github.com/agentorch/orchestrator/internal/sandbox"
)

// newExecutor builds the executor cfg asks for and checks what can be
// checked before any task runs: the claude binary and the command's
// program must exist. The claude and command executors run their programs
// in sb (nil: no sandbox). Errors name the variable to fix.
func newExecutor(cfg config.Worker, sb *sandbox.Sandbox) (executor.Executor, error) {
	proc := executor.ProcessOptions{KillGrace: cfg.KillGrace, MaxOutput: int64(cfg.MaxOutput), Sandbox: sb, AgentEnv: cfg.AgentEnv}
	switch cfg.Executor {
	case config.ExecutorClaude:
		bin, err := executor.LookClaude(cfg.ClaudeBin)
		if err != nil {
			return nil, fmt.Errorf("CLAUDE_BIN: %w", err)
		}
		e, err := executor.NewClaude(executor.ClaudeOptions{
			Bin: bin, Model: cfg.ClaudeModel, PermissionMode: cfg.ClaudePermissionMode,
			ExtraArgs: cfg.ClaudeArgs, Process: proc,
		})
		if err != nil {
			return nil, fmt.Errorf("WORKER_EXECUTOR: %w", err)
		}
		return e, nil
	case config.ExecutorAnthropic:
		e, err := executor.NewAnthropic(executor.AnthropicOptions{
			APIKey: cfg.AnthropicAPIKey, Model: cfg.AnthropicModel, BaseURL: cfg.AnthropicBaseURL,
			MaxTokens: cfg.AnthropicMaxTokens, MaxRetries: cfg.AnthropicMaxRetries, MaxOutput: int64(cfg.MaxOutput),
		})
		if err != nil {
			return nil, fmt.Errorf("ANTHROPIC_API_KEY: %w", err)
		}
		return e, nil
	case config.ExecutorCommand:
		if _, err := exec.LookPath(cfg.Command[0]); err != nil {
			return nil, fmt.Errorf("WORKER_COMMAND: program %q not found: %w", cfg.Command[0], err)
		}
		e, err := executor.NewCommand(cfg.Command, proc)
		if err != nil {
			return nil, fmt.Errorf("WORKER_COMMAND: %w", err)
		}
		return e, nil
	case config.ExecutorNoop:
		return executor.Noop{}, nil
	}
	return nil, fmt.Errorf("WORKER_EXECUTOR: unknown executor %q", cfg.Executor)
}
