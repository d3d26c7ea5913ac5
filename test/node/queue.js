'use strict';
// queue.js runs a list of operations with the official Queue (and
// FlowProducer) and prints one JSON line per operation: {"op":..., "result":...}
// or {"op":..., "error":...}. Config: redis/queue/prefix/version and
//   ops: [{op, ...args}], where op is one of
//     add {name, data, opts}            -> job id
//     addBulk {jobs: [{name,data,opts}]} -> job ids
//     flow {name, data, opts, children: [{name, queueName, data, opts}]} -> parent id
//     getJob {id} -> job view (see lib.jobView) or null
//     getState {id} -> state string
//     getJobCounts {states?} -> counts object
//     count, isPaused, pause, resume, getGlobalConcurrency
//     setGlobalConcurrency {n}, setGlobalRateLimit {max, duration}
//     updateProgress {id, progress}
//     getJobLogs {id}
//     getWorkers -> [{name, rawname}] of the connected workers
//     upsertJobScheduler {id, repeat, template} -> id of the first job
const { config, bullmq, connection, emit, fatal, jobView } = require('./lib');

async function run(q, flow, cfg, o) {
  switch (o.op) {
    case 'add': return (await q.add(o.name, o.data, o.opts)).id;
    case 'addBulk': return (await q.addBulk(o.jobs)).map((j) => j.id);
    case 'flow': {
      const tree = await flow.add({
        name: o.name, queueName: cfg.queue, data: o.data, opts: o.opts,
        children: (o.children || []).map((c) => Object.assign({ queueName: cfg.queue }, c)),
      });
      return { id: tree.job.id, children: (tree.children || []).map((c) => c.job.id) };
    }
    case 'getJob': return jobView(await q.getJob(o.id));
    case 'getState': return await q.getJobState(o.id);
    case 'getJobCounts': return await q.getJobCounts(...(o.states || []));
    case 'count': return await q.count();
    case 'isPaused': return await q.isPaused();
    case 'pause': await q.pause(); return true;
    case 'resume': await q.resume(); return true;
    case 'setGlobalConcurrency': await q.setGlobalConcurrency(o.n); return true;
    case 'setGlobalRateLimit': await q.setGlobalRateLimit(o.max, o.duration); return true;
    case 'updateProgress': {
      const job = await q.getJob(o.id);
      await job.updateProgress(o.progress);
      return true;
    }
    case 'getJobLogs': return await q.getJobLogs(o.id);
    case 'upsertJobScheduler': return (await q.upsertJobScheduler(o.id, o.repeat, o.template)).id;
    case 'getWorkers': return (await q.getWorkers()).map((w) => ({ name: w.name, rawname: w.rawname }));
    default: throw new Error(`unknown op ${o.op}`);
  }
}

async function main() {
  const cfg = config();
  const { Queue, FlowProducer } = bullmq(cfg);
  const q = new Queue(cfg.queue, { connection: connection(cfg), prefix: cfg.prefix });
  let flow = null;
  if ((cfg.ops || []).some((o) => o.op === 'flow')) {
    flow = new FlowProducer({ connection: connection(cfg), prefix: cfg.prefix });
  }
  for (const o of cfg.ops || []) {
    try {
      emit({ op: o.op, result: await run(q, flow, cfg, o) });
    } catch (err) {
      emit({ op: o.op, error: String(err && err.message) });
    }
  }
  await q.close();
  if (flow) await flow.close();
  process.exit(0);
}

main().catch(fatal);
