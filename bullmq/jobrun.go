package bullmq

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// JobRun is what a job's hash says about the worker runs of the job, read
// by GetJobRun without the job's data.
type JobRun struct {
	// AttemptsMade is atm (or the legacy attemptsMade): attempts that
	// ended (completed, failed or retried).
	AttemptsMade int
	// AttemptsStarted is ats: how many times a worker took the job.
	AttemptsStarted int
	// ProcessedBy is pb, the name of the worker that took the latest
	// attempt; "" when no worker took it or the worker has no name.
	ProcessedBy string
	// ProcessedOn is when the latest attempt started; zero when none did.
	ProcessedOn time.Time
	// FinishedOn is when the job completed or failed for good; zero
	// otherwise.
	FinishedOn time.Time
}

// Taken reports whether a worker took the job at least once (ats, or for
// jobs written before ats existed, atm or processedOn).
func (r JobRun) Taken() bool {
	return r.AttemptsStarted > 0 || r.AttemptsMade > 0 || !r.ProcessedOn.IsZero()
}

// GetJobRun reads the run fields of job id (atm, ats, pb, processedOn,
// finishedOn) with one HMGET. It fails with ErrJobNotFound when the job
// hash does not exist or is not a job (it has no timestamp, which every
// add writes).
func (q *Queue) GetJobRun(ctx context.Context, id string) (JobRun, error) {
	if err := q.checkOpen("get job run"); err != nil {
		return JobRun{}, err
	}
	v, err := q.client.HMGet(ctx, q.keys.job(id), "timestamp", "atm", "attemptsMade", "ats", "pb", "processedOn", "finishedOn").Result()
	if err != nil {
		return JobRun{}, fmt.Errorf("get run of job %s in queue %s: %w", id, q.name, err)
	}
	if v[0] == nil {
		return JobRun{}, fmt.Errorf("get run of job %s in queue %s: %w", id, q.name, ErrJobNotFound)
	}
	str := func(x any) string { s, _ := x.(string); return s }
	num := func(x any) int { n, _ := strconv.Atoi(str(x)); return n }
	r := JobRun{AttemptsMade: num(v[1]), AttemptsStarted: num(v[3]), ProcessedBy: str(v[4]),
		ProcessedOn: msField(str(v[5])), FinishedOn: msField(str(v[6]))}
	if v[1] == nil {
		r.AttemptsMade = num(v[2])
	}
	return r, nil
}
