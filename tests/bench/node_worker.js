'use strict';
// One handler process of the benchmark, in Node.js: the layer's thin client through the sidecar
// (TCP or Unix socket), or the MongoDB Node.js driver in-process straight to the database (what a
// handler bundling the driver pays today). It stays up for the whole section, like a warm
// execution environment, and runs what the benchmark asks on stdin, one JSON line at a time:
//
//   node node_worker.js '<spec>'
//   -> {"ready": true}
//   <- {"op": "findOne"|"find"|"insertOne"|"updateOne", "n": N, "warmup": W}
//   -> {"warm": true}          the warm-up is done; the benchmark reads /proc CPU times now
//   <- "go"
//   -> {"done": true}          N timed operations are done; the benchmark reads /proc again
//   <- "report"
//   -> {"samples": [µs, ...]}
//
// <spec>: {"path": "client"|"driver", "db", "small", "large", "writes", "sku", "expect";
//          client: "client" (the client's folder), "port" or "socketPath", "token";
//          driver: "mongodb" (the driver's folder), "uri"}

const readline = require('readline');

const spec = JSON.parse(process.argv[2]);

/** The four operations, as a handler would call them, each checking its answer. */
function operations(small, large, writes, ObjectId) {
  let inserted = 0;
  const bySku = { sku: spec.sku };
  return {
    async findOne() {
      if ((await small.findOne(bySku)) === null) throw new Error(`findOne found no document ${spec.sku}`);
    },
    async find() {
      const docs = await large.find({});
      if (docs.length !== spec.expect) throw new Error(`find gave ${docs.length} documents, not ${spec.expect}`);
    },
    async insertOne() {
      inserted += 1;
      const doc = { _id: new ObjectId(), sku: `NEW-${process.pid}-${inserted}`, name: 'a new item', price: 12.5,
        tags: ['kitchen'], stock: 3, createdAt: new Date() };
      const result = await writes.insertOne(doc);
      if (!result.insertedId) throw new Error('insertOne gave no insertedId');
    },
    async updateOne() {
      const result = await small.updateOne(bySku, { $inc: { stock: 1 } });
      if (result.matchedCount !== 1) throw new Error(`updateOne matched ${result.matchedCount}`);
    },
  };
}

async function open() {
  if (spec.path === 'client') {
    const { MongoSidecar, ObjectId } = require(spec.client);
    const target = spec.socketPath ? { socketPath: spec.socketPath } : { port: spec.port };
    const db = new MongoSidecar({ ...target, token: spec.token }).db(spec.db);
    return { ops: operations(db.collection(spec.small), db.collection(spec.large), db.collection(spec.writes), ObjectId),
      close: async () => {} };
  }
  const { MongoClient, ObjectId } = require(spec.mongodb);
  const client = await new MongoClient(spec.uri).connect();
  const db = client.db(spec.db);
  const large = db.collection(spec.large);
  return {
    ops: operations(db.collection(spec.small), { find: (filter) => large.find(filter).toArray() },
      db.collection(spec.writes), ObjectId),
    close: () => client.close(),
  };
}

async function main() {
  const { ops, close } = await open();
  const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const next = async () => (await lines.next()).value;
  const say = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
  say({ ready: true });
  for (let line = await next(); line !== undefined; line = await next()) {
    const { op, n, warmup } = JSON.parse(line);
    const once = ops[op];
    if (!once) throw new Error(`unknown op ${op}`);
    for (let i = 0; i < warmup; i++) await once();
    say({ warm: true });
    await next(); // go
    const samples = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const started = process.hrtime.bigint();
      await once();
      samples[i] = Number(process.hrtime.bigint() - started) / 1000;
    }
    say({ done: true });
    await next(); // report
    say({ samples: Array.from(samples) });
  }
  await close();
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
