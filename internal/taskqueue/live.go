package taskqueue

// Live reporting while a task runs. A worker writes what its agent does as
// BullMQ job log lines (job.log: the job's "logs" list, which Bull Board and
// Node's getJobLogs show) and reports running totals as the job's progress
// (updateProgress with a Progress object, which BullMQ also announces as a
// "progress" event on the queue's events stream). The orchestrator follows
// the progress events and reads the new log lines they announce.

// MaxLogLineBytes bounds one log line; a worker cuts longer lines (and
// marks the cut with "…").
const MaxLogLineBytes = 4096

// Progress is the progress object of a running task job. Every field is a
// running total for the current attempt.
type Progress struct {
	// Turns is the agent's model turns so far.
	Turns int `json:"turns"`
	// ToolCalls is the agent's tool calls so far.
	ToolCalls int `json:"toolCalls"`
	// InputTokens and OutputTokens are the tokens used so far.
	InputTokens  int64 `json:"inputTokens"`
	OutputTokens int64 `json:"outputTokens"`
	// CostUSD is the cost so far, when the executor knows it.
	CostUSD float64 `json:"costUsd"`
	// LastTool names the last tool the agent called ("" when none).
	LastTool string `json:"lastTool,omitempty"`
	// Logs is how many log lines the worker has written to the job's log
	// so far; a consumer that sees it grow reads the new lines.
	Logs int64 `json:"logs"`
}

// Usage is what a finished run used, reported in the Result by executors
// that know it (nil otherwise).
type Usage struct {
	InputTokens  int64 `json:"inputTokens"`
	OutputTokens int64 `json:"outputTokens"`
	// CostUSD is the run's cost in US dollars, when known.
	CostUSD *float64 `json:"costUsd,omitempty"`
}
