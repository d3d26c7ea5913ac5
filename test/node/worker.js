'use strict';
// worker.js runs one official BullMQ Worker and prints a JSON line per job
// event. It is the worker of both the interop suite (test/interop, where
// test/interop/goworker is its Go twin) and the end-to-end suite (test/e2e,
// as a worker of the orchestrator).
//
// Config (argv[2] JSON), besides redis/queue/prefix/version (see lib.js):
//   concurrency, lockDuration, stalledInterval, maxStalledCount, drainDelay,
//   limiter {max, duration}, name, removeOnComplete, removeOnFail: Worker options.
//   behave: default behaviour for every job; a job's data.behave overrides it:
//     sleepMs      wait this long before finishing
//     hang         never finish (for crash tests)
//     fail         throw an Error with this message on every attempt
//     failAttempts throw while attemptsMade < failAttempts
//     returnValue  value to return (default {"ok":true,"id":<job id>})
//     trackKey     Redis key counting processors running at once; the highest
//                  count seen is kept in <trackKey>:max
//     progress     call job.updateProgress(progress) first
//     log          call job.log(log) first
//     unrecoverable throw an UnrecoverableError with this message
//   task: true makes it a worker of the orchestrator: it takes execute-task
//     jobs, behaves as the job's data.prompt says (below), and posts each
//     outcome to `${queue}-results` the way the Go worker (bin/worker) does:
//     {taskId, workerId, status, result, errorMessage, executionTime}, a
//     completed result on success and a failed one only when the last
//     attempt fails. The workerId is the name (default node-<pid>).
//       "fail-twice"   throws on attempts 1 and 2, succeeds on attempt 3
//       "always-fail"  always throws "always fails"
//       "hang"         never finishes (for SIGKILL tests)
//       "sleep:<ms>"   waits <ms> and succeeds with {answer, prompt, attempt}
//       anything else  succeeds at once, the same way
//   noResults: with task, post no result job and only return the result,
//     like a plain BullMQ worker.
//
// Output lines, each with the job id (id), its attempt number (1 for the
// first) and a time in ms (t) where they concern a job:
//   ready      the worker is connected (with its name)
//   start      the processor took a job (also name, data, opts,
//              attemptsMade, attemptsStarted, token)
//   done       the processor finished the job (after posting its result)
//   fail       the processor threw (after posting the failed result); reason
//   completed  the worker moved the job to completed (returnvalue)
//   failed     the worker moved the job to failed or delayed it for a retry
//              (reason, attemptsMade)
//   drained, error, closed
// It stops gracefully on SIGTERM, and when stdin closes unless stdin is a
// terminal (so that `node worker.js '{…}' &` keeps running in a shell).
const { config, bullmq, client, connection, emit, fatal, sleep } = require('./lib');

const TRACK_MAX = `local m = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > m then redis.call('SET', KEYS[1], ARGV[1]) end
return m`;

// taskBehaviour maps the prompt of an orchestrator task to a behaviour.
function taskBehaviour(prompt) {
  if (prompt === 'fail-twice') return { failAttempts: 2 };
  if (prompt === 'always-fail') return { fail: 'always fails' };
  if (prompt === 'hang') return { hang: true };
  if (prompt.startsWith('sleep:')) return { sleepMs: Number(prompt.slice(6)) };
  return {};
}

async function main() {
  const cfg = config();
  const { Worker, Queue, UnrecoverableError } = bullmq(cfg);
  const side = client(cfg);
  const workerId = cfg.name || `node-${process.pid}`;
  const results = cfg.task && !cfg.noResults
    ? new Queue(`${cfg.queue}-results`, { connection: connection(cfg), prefix: cfg.prefix })
    : null;
  // postResult posts a task's outcome to the results queue (task mode).
  const postResult = async (job, status, result, errorMessage, started) => {
    if (!results) return;
    const data = job.data || {};
    await results.add('result', {
      taskId: data.taskId, workerId, status, result, errorMessage,
      executionTime: Date.now() - started,
    }, { attempts: 5, backoff: { type: 'exponential', delay: 500 }, removeOnComplete: 1000 });
  };

  const opts = {
    connection: connection(cfg),
    prefix: cfg.prefix,
    concurrency: cfg.concurrency || 1,
  };
  for (const k of ['lockDuration', 'stalledInterval', 'maxStalledCount', 'drainDelay', 'limiter', 'name', 'removeOnComplete', 'removeOnFail']) {
    if (cfg[k] !== undefined) opts[k] = cfg[k];
  }
  if (cfg.task) { // the orchestrator's worker: its name is its workerId
    opts.name = workerId;
    opts.stalledInterval = cfg.stalledInterval || 30000;
    opts.lockDuration = cfg.lockDuration || 30000;
  }

  const processor = async (job) => {
    const started = Date.now();
    const attempt = job.attemptsMade + 1;
    const prompt = String((job.data && job.data.prompt) || '');
    const b = Object.assign({}, cfg.behave || {}, (job.data && job.data.behave) || {},
      cfg.task ? taskBehaviour(prompt) : {});
    emit({
      ev: 'start', id: job.id, name: job.name, data: job.data, opts: job.opts,
      attemptsMade: job.attemptsMade, attemptsStarted: job.attemptsStarted,
      token: job.token, attempt, t: started,
    });
    let running = 0;
    if (b.trackKey) {
      running = await side.incr(b.trackKey);
      await side.eval(TRACK_MAX, 1, b.trackKey + ':max', running);
    }
    try {
      if (b.progress !== undefined) await job.updateProgress(b.progress);
      if (b.log !== undefined) await job.log(b.log);
      if (b.unrecoverable) throw new UnrecoverableError(b.unrecoverable);
      if (b.hang) await new Promise(() => {});
      if (b.sleepMs) await sleep(b.sleepMs);
      if (b.fail) throw new Error(b.fail);
      if (b.failAttempts && job.attemptsMade < b.failAttempts) {
        throw new Error(`attempt ${attempt} failed`);
      }
      let rv = { ok: true, id: job.id };
      if (cfg.task) rv = { answer: 'ok', prompt, attempt };
      if (b.returnValue !== undefined) rv = b.returnValue;
      await postResult(job, 'completed', rv, undefined, started);
      emit({ ev: 'done', id: job.id, attempt, t: Date.now() });
      return rv;
    } catch (err) {
      const last = attempt >= (job.opts.attempts || 1) || err instanceof UnrecoverableError;
      if (last) await postResult(job, 'failed', null, err.message, started);
      emit({ ev: 'fail', id: job.id, attempt, reason: err.message, t: Date.now() });
      throw err;
    } finally {
      if (b.trackKey) await side.decr(b.trackKey);
    }
  };

  const worker = new Worker(cfg.queue, processor, opts);
  worker.on('completed', (job, rv) => emit({ ev: 'completed', id: job.id, returnvalue: rv, t: Date.now() }));
  worker.on('failed', (job, err) => emit({
    ev: 'failed', id: job && job.id, reason: err && err.message,
    attemptsMade: job && job.attemptsMade, t: Date.now(),
  }));
  worker.on('drained', () => emit({ ev: 'drained', t: Date.now() }));
  worker.on('error', (err) => emit({ ev: 'error', error: String(err && err.message) }));
  let closing = false;
  const stop = async () => {
    if (closing) return;
    closing = true;
    await worker.close();
    if (results) await results.close();
    await side.quit();
    emit({ ev: 'closed' });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (!process.stdin.isTTY) {
    process.stdin.on('end', stop);
    process.stdin.resume();
  }
  await worker.waitUntilReady();
  emit({ ev: 'ready', name: workerId, t: Date.now() });
}

main().catch(fatal);
