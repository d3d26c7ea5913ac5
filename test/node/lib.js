'use strict';
// Shared helpers of the Node driver. Every script (worker.js, queue.js,
// events.js, bench.js) takes one JSON config as argv[2] and prints JSON
// lines on stdout, one per event, for the Go tests to parse. Common config
// keys:
//   redis   Redis URL (default redis://127.0.0.1:6379); see connection()
//   queue   queue name
//   prefix  key prefix (default "bull")
//   version "5" or "6": which official bullmq package to load

const IORedis = require('ioredis');

const DEFAULT_REDIS = 'redis://127.0.0.1:6379';

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

// connection is the one place where the driver turns its config into a
// Redis connection: what every BullMQ Queue, Worker, QueueEvents and
// FlowProducer gets as its `connection` option. client() builds the side
// connections from it.
//
// Today cfg.redis is a plain redis:// URL (host, port, password, /db).
// Cluster and Sentinel belong here too, chosen by the URL scheme as the Go
// side does (REDIS_URL in internal/redisconn):
//   redis-cluster://h1:7000,h2:7001   -> an IORedis.Cluster instance (BullMQ
//                                        duplicates it for blocking reads)
//   redis-sentinel://h1:26379/0?master=name -> options {sentinels, name, db}
// and the queue prefix must then carry a hash tag ("{bull}").
function connection(cfg) {
  const u = new URL(cfg.redis || DEFAULT_REDIS);
  switch (u.protocol) {
    case 'redis:': {
      const c = { host: u.hostname || '127.0.0.1', port: Number(u.port || 6379), maxRetriesPerRequest: null };
      if (u.pathname && u.pathname.length > 1) c.db = Number(u.pathname.slice(1));
      if (u.password) c.password = decodeURIComponent(u.password);
      return c;
    }
    default:
      throw new Error(`redis URL scheme ${u.protocol} not supported by the Node driver yet (see connection() in lib.js)`);
  }
}

// client returns a new ioredis client on the configured Redis, for commands
// the driver sends itself.
function client(cfg) {
  return new IORedis(connection(cfg));
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

module.exports = { config, bullmq, connection, client, emit, fatal, jobView, sleep };
