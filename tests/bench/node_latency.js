'use strict';
// Warm per-request latency from Node.js, sequential, one request in flight: the layer's thin
// client to the sidecar (TCP or Unix socket), or the MongoDB Node.js driver in-process straight
// to the database (what a handler bundling the driver pays today).
//
//   node node_latency.js '<json>'   ->  prints {"n", "p50", "p99", ..., "samples"} in microseconds
//
// <json>: {"path": "sidecar"|"driver", "op": "findOne"|"find", "n", "warmup",
//          "db", "collection", "id" (hex, for findOne), "expect" (documents, for find),
//          sidecar: "client" (the client's folder), "port" or "socketPath", "token";
//          driver: "mongodb" (the driver's folder), "uri"}

const spec = JSON.parse(process.argv[2]);

function summary(samples) {
  const sorted = Float64Array.from(samples).sort();
  const at = (q) => sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil((q / 100) * sorted.length) - 1))];
  const mid = sorted.length >> 1;
  const p50 = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  return { n: sorted.length, p50, p99: at(99), mean, min: sorted[0], max: sorted[sorted.length - 1] };
}

/** { collection-like object with findOne and find returning arrays, ObjectId, close } */
async function open() {
  if (spec.path === 'sidecar') {
    const { MongoSidecar, ObjectId } = require(spec.client);
    const target = spec.socketPath ? { socketPath: spec.socketPath } : { port: spec.port };
    const coll = new MongoSidecar({ ...target, token: spec.token }).db(spec.db).collection(spec.collection);
    return {
      findOne: (filter) => coll.findOne(filter),
      find: (filter) => coll.find(filter),
      ObjectId,
      close: async () => {},
    };
  }
  const { MongoClient, ObjectId } = require(spec.mongodb);
  const client = await new MongoClient(spec.uri).connect();
  const coll = client.db(spec.db).collection(spec.collection);
  return {
    findOne: (filter) => coll.findOne(filter),
    find: (filter) => coll.find(filter).toArray(),
    ObjectId,
    close: () => client.close(),
  };
}

async function main() {
  const api = await open();
  const once =
    spec.op === 'findOne'
      ? (() => {
          const filter = { _id: new api.ObjectId(spec.id) };
          return async () => {
            if ((await api.findOne(filter)) === null) throw new Error(`findOne found no document ${spec.id}`);
          };
        })()
      : async () => {
          const docs = await api.find({});
          if (docs.length !== spec.expect) throw new Error(`find gave ${docs.length} documents, not ${spec.expect}`);
        };
  for (let i = 0; i < spec.warmup; i++) await once();
  const samples = new Array(spec.n);
  for (let i = 0; i < spec.n; i++) {
    const started = process.hrtime.bigint();
    await once();
    samples[i] = Number(process.hrtime.bigint() - started) / 1000;
  }
  await api.close();
  const rss = process.memoryUsage().rss;
  process.stdout.write(JSON.stringify({ ...summary(samples), rssBytes: rss, samples }) + '\n');
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
