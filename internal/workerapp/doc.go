// Package workerapp is the task worker application: it takes "execute-task"
// jobs from the task queue with a bullmq.Worker, runs each with an
// executor.Executor, and posts the outcome as a result job on the results
// queue, the contract the orchestrator consumes:
//
//	{taskId, workerId, status: "completed"|"failed", result, errorMessage, executionTime}
//
// It also listens for cancel requests on Redis pub/sub, serves /health and
// Prometheus /metrics, and shuts down gracefully. cmd/worker only wires it:
// LoadConfig reads the environment, NewExecutor builds the executor, and
// App.Run does the rest.
package workerapp
