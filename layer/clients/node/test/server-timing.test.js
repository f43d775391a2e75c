'use strict';
// The sidecar's Server-Timing header (where an answer's time went), read by the client: the
// parser, the onServerTiming option, and the timing on an error.

const assert = require('node:assert/strict');
const { after, test } = require('node:test');

const { MongoSidecar } = require('../index');
const { parseServerTiming } = require('../lib/errors');
const { agent } = require('../lib/transport');
const { startSidecar } = require('../test-support/sidecar');
const { rejection, scriptedServer } = require('../test-support/servers');

after(() => agent.destroy());

const TIMING = 'queue;dur=0.012, db;dur=0.412, total;dur=0.520';

test('Server-Timing is read as milliseconds per metric', () => {
  for (const [header, parsed] of [
    [TIMING, { queue: 0.012, db: 0.412, total: 0.52 }],
    ['db;dur=1', { db: 1 }],
    ['db;desc="database";dur=2.5,total;dur=3', { db: 2.5, total: 3 }],
    ['db;dur=x, total;dur=0.5', { total: 0.5 }],
    ['cache, db;dur=0.1', { db: 0.1 }],
    ['', undefined],
    [undefined, undefined],
    ['garbage', undefined],
  ]) {
    assert.deepEqual(parseServerTiming(header), parsed, `for ${JSON.stringify(header)}`);
  }
});

test('onServerTiming is called with each answer\'s timing, before the call resolves', async () => {
  const server = await scriptedServer([
    { status: 200, headers: { 'Server-Timing': TIMING }, body: { document: null } },
    { status: 200, body: { document: null } },
  ]);
  try {
    const seen = [];
    const client = new MongoSidecar({
      port: server.address().port, token: 't', onServerTiming: (timing, about) => seen.push([timing, about]),
    });
    const coll = client.db('d').collection('c');
    await coll.findOne({});
    assert.deepEqual(seen, [[{ queue: 0.012, db: 0.412, total: 0.52 }, { action: 'findOne', status: 200 }]]);
    await coll.findOne({});
    assert.equal(seen.length, 1, 'an answer without the header calls nothing');
  } finally {
    server.close();
  }
});

test('an error carries its answer\'s timing', async () => {
  const server = await scriptedServer([{
    status: 409,
    headers: { 'Server-Timing': 'db;dur=0.3, total;dur=0.4' },
    body: { error: 'duplicate key', error_code: 'DuplicateKey', code: 11000 },
  }]);
  try {
    const err = await rejection(new MongoSidecar({ port: server.address().port, token: 't' })
      .db('d').collection('c').insertOne({ _id: 1 }));
    assert.deepEqual(err.serverTiming, { db: 0.3, total: 0.4 });
  } finally {
    server.close();
  }
});

test('the sidecar sends a timing that the client reads', async () => {
  const sidecar = await startSidecar();
  try {
    const seen = [];
    const client = new MongoSidecar({ port: sidecar.port, token: sidecar.token, onServerTiming: (t) => seen.push(t) });
    await client.db('client_node').collection('timing').findOne({});
    assert.equal(seen.length, 1);
    const [{ queue, db, total }] = seen;
    assert.deepEqual(Object.keys(seen[0]).sort(), ['db', 'queue', 'total']);
    assert.ok(queue >= 0 && db > 0 && db <= total, JSON.stringify(seen[0]));
  } finally {
    assert.equal(await sidecar.stop(), 0);
  }
});
