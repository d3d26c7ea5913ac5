package workerapp

import (
	"errors"
	"time"

	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// Config is the App's settings; cmd/worker fills it from the environment
// (config.Worker). The zero value of each field means the documented
// default; negative values are refused by New.
type Config struct {
	// Names are the queue and channel names. Defaults to taskqueue's.
	Names taskqueue.Names
	// WorkerID is the results' workerId and the BullMQ worker name (each
	// job's pb). Required.
	WorkerID string
	// Executor names the executor, for logs and /health. Defaults to "".
	Executor string
	// Concurrency is how many tasks run at once. Defaults to 1.
	Concurrency int
	// DefaultTimeout is the timeout of a job whose data has none. Defaults
	// to 5 minutes.
	DefaultTimeout time.Duration
	// ShutdownTimeout is how long running tasks may go on after a shutdown
	// request. Defaults to 0: they are stopped at once.
	ShutdownTimeout time.Duration
	// LockDuration is the BullMQ job lock. Defaults to bullmq's (30s).
	LockDuration time.Duration
	// StalledInterval is the stalled-job check period. Defaults to
	// bullmq's (30s).
	StalledInterval time.Duration
	// MaxStalled is how many times a job may stall (its worker stopped
	// renewing the lock: crash, kill, restart) and be given to another
	// worker before it fails as "job stalled more than allowable limit".
	// Defaults to DefaultMaxStalled.
	MaxStalled int
	// HTTPAddr is where /health and /metrics are served. Defaults to "":
	// nothing is served.
	HTTPAddr string
}

// DefaultTimeout is the timeout of a job whose data has none when
// Config.DefaultTimeout is zero.
const DefaultTimeout = 5 * time.Minute

// DefaultMaxStalled is the default of Config.MaxStalled (WORKER_MAX_STALLED):
// 3. A rolling restart stops each worker once; a worker stopped while it
// runs a task past WORKER_SHUTDOWN_TIMEOUT leaves its job active, and the
// job stalls once. A long task can be caught by two rolling restarts
// (a deploy and its rollback) and so stall twice; BullMQ fails a job
// whose stall count exceeds the limit, so the limit must be at least 2.
// One more stall (a crash) is allowed on top; a job that stalls more than
// three times is more likely to crash its worker than to be unlucky.
const DefaultMaxStalled = 3

// validate checks c and fills in its defaults.
func (c *Config) validate() error {
	if err := c.Names.Validate(); err != nil {
		return err
	}
	c.Names = c.Names.WithDefaults()
	switch {
	case c.WorkerID == "":
		return errors.New("worker id is required")
	case c.Concurrency < 0:
		return errors.New("concurrency must not be negative")
	case c.DefaultTimeout < 0, c.ShutdownTimeout < 0, c.LockDuration < 0, c.StalledInterval < 0:
		return errors.New("durations must not be negative")
	case c.MaxStalled < 0:
		return errors.New("max stalled must not be negative")
	}
	if c.MaxStalled == 0 {
		c.MaxStalled = DefaultMaxStalled
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.DefaultTimeout == 0 {
		c.DefaultTimeout = DefaultTimeout
	}
	return nil
}
