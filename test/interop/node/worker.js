'use strict';
// worker.js runs one official BullMQ Worker and prints a JSON line per job.
// Config (argv[2] JSON), besides redis/queue/prefix/version:
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
// Output lines: ready, drained, start, completed, failed, error, closed.
// It stops gracefully on SIGTERM or when stdin closes.
const IORedis = require('ioredis');
const { config, bullmq, connection, emit, fatal, sleep } = require('./lib');

const TRACK_MAX = `local m = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > m then redis.call('SET', KEYS[1], ARGV[1]) end
return m`;

async function main() {
  const cfg = config();
  const { Worker, UnrecoverableError } = bullmq(cfg);
  const side = new IORedis(connection(cfg));
  const opts = {
    connection: connection(cfg),
    prefix: cfg.prefix,
    concurrency: cfg.concurrency || 1,
  };
  for (const k of ['lockDuration', 'stalledInterval', 'maxStalledCount', 'drainDelay', 'limiter', 'name', 'removeOnComplete', 'removeOnFail']) {
    if (cfg[k] !== undefined) opts[k] = cfg[k];
  }
  const processor = async (job) => {
    const b = Object.assign({}, cfg.behave || {}, (job.data && job.data.behave) || {});
    emit({
      ev: 'start', id: job.id, name: job.name, data: job.data, opts: job.opts,
      attemptsMade: job.attemptsMade, attemptsStarted: job.attemptsStarted,
      token: job.token, t: Date.now(),
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
        throw new Error(`attempt ${job.attemptsMade + 1} failed`);
      }
      return b.returnValue !== undefined ? b.returnValue : { ok: true, id: job.id };
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
    await side.quit();
    emit({ ev: 'closed' });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
  await worker.waitUntilReady();
  emit({ ev: 'ready', t: Date.now() });
}

main().catch(fatal);
