'use strict';
// Shared helpers for the interop driver scripts. Every script takes one JSON
// config as argv[2] and prints JSON lines on stdout, one per event, so the Go
// tests can parse them. Common config keys:
//   redis   Redis URL (default redis://127.0.0.1:6379)
//   queue   queue name
//   prefix  key prefix (default "bull")
//   version "5" or "6": which official bullmq package to load

function config() {
  const raw = process.argv[2] || process.env.INTEROP_CONFIG || '{}';
  const cfg = JSON.parse(raw);
  if (!cfg.version) cfg.version = '6';
  if (!cfg.prefix) cfg.prefix = 'bull';
  return cfg;
}

function bullmq(cfg) {
  if (cfg.version === '5') return require('bullmq5');
  if (cfg.version === '6') return require('bullmq6');
  throw new Error(`unknown bullmq version ${cfg.version}`);
}

function connection(cfg) {
  const u = new URL(cfg.redis || 'redis://127.0.0.1:6379');
  const c = { host: u.hostname || '127.0.0.1', port: Number(u.port || 6379), maxRetriesPerRequest: null };
  if (u.pathname && u.pathname.length > 1) c.db = Number(u.pathname.slice(1));
  if (u.password) c.password = decodeURIComponent(u.password);
  return c;
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function fatal(err) {
  emit({ ev: 'fatal', error: String((err && err.stack) || err) });
  process.exit(1);
}

// jobView is the subset of a Job that the Go tests compare.
function jobView(job) {
  if (!job) return null;
  return {
    id: job.id,
    name: job.name,
    data: job.data,
    opts: job.opts,
    progress: job.progress,
    delay: job.delay,
    priority: job.priority,
    timestamp: job.timestamp,
    attemptsMade: job.attemptsMade,
    attemptsStarted: job.attemptsStarted,
    stalledCounter: job.stalledCounter,
    failedReason: job.failedReason,
    stacktrace: job.stacktrace,
    returnvalue: job.returnvalue,
    finishedOn: job.finishedOn,
    processedOn: job.processedOn,
    processedBy: job.processedBy,
    parentKey: job.parentKey,
    repeatJobKey: job.repeatJobKey,
    deferredFailure: job.deferredFailure,
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { config, bullmq, connection, emit, fatal, jobView, sleep };
