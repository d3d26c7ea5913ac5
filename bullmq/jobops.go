package bullmq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// errJobUnbound is returned by job operations on a Job that no Worker or
// Queue gave out.
var errJobUnbound = errors.New("bullmq: job is not bound to a queue (use the Job a Worker or Queue returned)")

// jobOpScripts are the scripts of Job methods: constant data, parsed once.
type jobOpScripts struct{ updateProgress, addLog *script }

var loadJobOpScripts = sync.OnceValue(func() jobOpScripts {
	return jobOpScripts{updateProgress: loadScript("updateProgress"), addLog: loadScript("addLog")}
})

// UpdateProgress stores progress (any JSON-marshalable value, usually a
// number or an object) as the job's progress and emits a "progress" event,
// as Node's job.updateProgress does. It returns an error wrapping
// ErrJobNotFound when the job no longer exists.
func (j *Job) UpdateProgress(ctx context.Context, progress any) error {
	if j.client == nil || j.keys == nil {
		return errJobUnbound
	}
	data, err := marshalResult(progress)
	if err != nil {
		return fmt.Errorf("update progress of job %s: %w", j.ID, err)
	}
	k := j.keys
	code, err := loadJobOpScripts().updateProgress.run(ctx, j.client,
		[]string{k.job(j.ID), k.events, k.meta}, j.ID, string(data)).Int64()
	if err != nil {
		return fmt.Errorf("update progress of job %s: %w", j.ID, err)
	}
	if err := scriptError("update progress", j.ID, code); err != nil {
		return err
	}
	j.Progress = data
	return nil
}

// Log appends line to the job's log (the "P:Q:<id>:logs" list Node's
// job.log writes), keeping only the newest opts.keepLogs ("kl") lines when
// the job has that option. It returns an error wrapping ErrJobNotFound when
// the job no longer exists.
func (j *Job) Log(ctx context.Context, line string) error {
	if j.client == nil || j.keys == nil {
		return errJobUnbound
	}
	keep := ""
	if raw, ok := j.Opts.Extra["kl"]; ok {
		if f, err := jsonNumber(raw); err == nil && f > 0 {
			keep = strconv.Itoa(int(f))
		}
	}
	k := j.keys
	code, err := loadJobOpScripts().addLog.run(ctx, j.client,
		[]string{k.job(j.ID), k.logs(j.ID)}, j.ID, line, keep).Int64()
	if err != nil {
		return fmt.Errorf("log to job %s: %w", j.ID, err)
	}
	return scriptError("log", j.ID, code)
}
