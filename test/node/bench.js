'use strict';
// bench.js measures the official package for cmd/bullmq-bench. Config:
// redis/queue/prefix/version and
//   mode "add":     add n jobs (name "bench", data {i}) with opts, keeping
//                   `inflight` adds in flight (default 100)
//   mode "process": run a Worker with a no-op processor at `concurrency`
//                   until n jobs have completed (jobs are added beforehand)
//   timeoutMs:      give up after this long (default 120000)
// Prints one JSON line: {mode, version, n, seconds, per_s, rss_bytes, cpu_ms}
// (cpu_ms: user+system CPU of this process over the whole run).
const { config, bullmq, connection, emit, fatal } = require('./lib');

async function add(cfg, Queue) {
  const q = new Queue(cfg.queue, { connection: connection(cfg), prefix: cfg.prefix });
  await q.waitUntilReady();
  const n = cfg.n;
  let next = 0;
  const start = process.hrtime.bigint();
  const lane = async () => {
    while (next < n) {
      const i = next++;
      await q.add('bench', { i }, cfg.opts);
    }
  };
  await Promise.all(Array.from({ length: Math.min(cfg.inflight || 100, n) }, lane));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await q.close();
  return { seconds };
}

async function processJobs(cfg, Worker) {
  const n = cfg.n;
  let done = 0;
  let start;
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const worker = new Worker(cfg.queue, async () => 'ok', {
    connection: connection(cfg), prefix: cfg.prefix,
    concurrency: cfg.concurrency || 1, autorun: false,
  });
  worker.on('completed', () => {
    done++;
    if (done === n) finish();
  });
  await worker.waitUntilReady();
  start = process.hrtime.bigint();
  worker.run().catch(fatal);
  await finished;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await worker.close();
  return { seconds };
}

async function main() {
  const cfg = config();
  const { Queue, Worker } = bullmq(cfg);
  const cpu0 = process.cpuUsage();
  const timer = setTimeout(() => fatal(new Error('bench timed out')), cfg.timeoutMs || 120000);
  const r = cfg.mode === 'add' ? await add(cfg, Queue) : await processJobs(cfg, Worker);
  clearTimeout(timer);
  emit({
    mode: cfg.mode, version: cfg.version, n: cfg.n, concurrency: cfg.concurrency,
    seconds: r.seconds, per_s: cfg.n / r.seconds, rss_bytes: process.memoryUsage().rss,
    cpu_ms: (() => { const c = process.cpuUsage(cpu0); return (c.user + c.system) / 1000; })(),
  });
  process.exit(0);
}

main().catch(fatal);
