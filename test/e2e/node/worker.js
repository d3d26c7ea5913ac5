'use strict';
// An official Node BullMQ worker for the orchestrator's end-to-end tests. It
// takes execute-task jobs and posts results to `${queue}-results` the way
// the Go worker does: {taskId, workerId, status, result, errorMessage,
// executionTime}, a completed result on success and a failed one only when
// the last attempt fails.
//
// Config (JSON, argv[2]): the interop keys (redis, queue, prefix, version)
// plus name (worker name, written as pb), concurrency, lockDuration,
// stalledInterval (ms), and noResults (true: post no result job, only return
// the result, like a plain BullMQ worker).
//
// What a job does depends on its prompt:
//   "fail-twice"   throws on attempts 1 and 2, succeeds on attempt 3
//   "always-fail"  always throws "always fails"
//   "hang"         never finishes (for SIGKILL tests)
//   "sleep:<ms>"   waits <ms> and succeeds
//   anything else  succeeds at once
// Output: JSON lines {ev: "ready"|"start"|"done"|"fail", jobId, attempt, at}.
const { config, bullmq, connection, emit, fatal, sleep } = require('../../interop/node/lib.js');

async function main() {
  const cfg = config();
  const { Worker, Queue } = bullmq(cfg);
  const conn = connection(cfg);
  const name = cfg.name || `node-${process.pid}`;
  const results = new Queue(`${cfg.queue}-results`, { connection: conn, prefix: cfg.prefix });

  const post = async (data, status, result, errorMessage, started) => cfg.noResults ? null :
    results.add('result', {
      taskId: data.taskId, workerId: name, status, result, errorMessage,
      executionTime: Date.now() - started,
    }, { attempts: 5, backoff: { type: 'exponential', delay: 500 }, removeOnComplete: 1000 });

  const worker = new Worker(cfg.queue, async (job) => {
    const started = Date.now();
    const attempt = job.attemptsMade + 1;
    const last = attempt >= (job.opts.attempts || 1);
    const data = job.data || {};
    const prompt = String(data.prompt || '');
    emit({ ev: 'start', jobId: job.id, attempt, at: started });
    let err = null;
    let result = null;
    if (prompt === 'fail-twice' && attempt <= 2) err = new Error(`failing attempt ${attempt}`);
    else if (prompt === 'always-fail') err = new Error('always fails');
    else if (prompt === 'hang') await new Promise(() => {});
    else if (prompt.startsWith('sleep:')) await sleep(Number(prompt.slice(6)));
    if (err) {
      if (last) await post(data, 'failed', null, err.message, started);
      emit({ ev: 'fail', jobId: job.id, attempt, at: Date.now() });
      throw err;
    }
    result = { answer: 'ok', prompt, attempt };
    await post(data, 'completed', result, undefined, started);
    emit({ ev: 'done', jobId: job.id, attempt, at: Date.now() });
    return result;
  }, {
    connection: conn, prefix: cfg.prefix, name, concurrency: cfg.concurrency || 1,
    stalledInterval: cfg.stalledInterval || 30000, lockDuration: cfg.lockDuration || 30000,
  });
  worker.on('error', (e) => emit({ ev: 'error', error: String(e) }));
  await worker.waitUntilReady();
  emit({ ev: 'ready', name });
  const stop = async () => { await worker.close(); await results.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch(fatal);
