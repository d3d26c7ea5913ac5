// Package taskqueue is the contract between the orchestrator and the task
// workers: the names of the queues and of the cancel channel, the job and
// result payloads, the job names and the rule that names a result job. Both
// binaries import it, and nothing else in the repository spells these
// strings or types, so that a field added to the contract is added here,
// once.
//
// The wire format is BullMQ's: the orchestrator adds a job named JobName
// with a Job as its data to Names.Tasks; a worker runs it and adds a job
// named ResultJobName with a Result as its data, under the id ResultJobID,
// to Names.Results; the task job's return value is a ReturnValue. Any BullMQ
// worker (Node, Python, Elixir…) that follows this contract can take tasks.
package taskqueue
