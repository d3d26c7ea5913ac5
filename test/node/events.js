'use strict';
// events.js runs the official QueueEvents and prints one JSON line per event:
// {"ev":<event name>, "args":<first listener argument>, "id":<stream id>}.
// Config: redis/queue/prefix/version and lastEventId (default "0", so that
// no event written after the start of the test is missed). Prints
// {"ev":"ready"} once the reader is connected. Stops on SIGTERM or stdin end.
const { config, bullmq, connection, emit, fatal } = require('./lib');

const EVENTS = ['added', 'waiting', 'active', 'progress', 'completed', 'failed', 'delayed',
  'stalled', 'retries-exhausted', 'removed', 'drained', 'cleaned', 'paused', 'resumed',
  'duplicated', 'deduplicated', 'waiting-children'];

async function main() {
  const cfg = config();
  const { QueueEvents } = bullmq(cfg);
  const qe = new QueueEvents(cfg.queue, {
    connection: connection(cfg), prefix: cfg.prefix,
    lastEventId: cfg.lastEventId || '0', blockingTimeout: 1000,
  });
  for (const name of EVENTS) {
    qe.on(name, (args, id) => {
      if (name === 'drained') emit({ ev: name, args: {}, id: args });
      else emit({ ev: name, args, id });
    });
  }
  qe.on('error', (err) => emit({ ev: 'error', error: String(err && err.message) }));
  let closing = false;
  const stop = async () => {
    if (closing) return;
    closing = true;
    await qe.close();
    emit({ ev: 'closed' });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
  await qe.waitUntilReady();
  emit({ ev: 'ready' });
}

main().catch(fatal);
