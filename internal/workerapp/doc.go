// Package workerapp is the task worker application: it takes task jobs
// (taskqueue.Job) from the task queue with a bullmq.Worker, runs each with
// an executor.Executor, and posts the outcome as a result job
// (taskqueue.Result) on the results queue, the contract the orchestrator
// consumes (see package taskqueue).
//
// It also listens for cancel requests on Redis pub/sub, serves /health and
// Prometheus /metrics, and shuts down gracefully. cmd/worker only wires it:
// it reads the environment (config.LoadWorker), builds the executor, and
// App.Run does the rest.
package workerapp
