'use strict';
// What the client says when a call fails part-way: a write is never sent twice, and a failure
// after a write may have reached the sidecar carries `outcome: 'unknown'`; a sidecar killed
// (SIGKILL) with a request in flight makes the call fail at once, naming the sidecar.

const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { after, test } = require('node:test');

const { MongoSidecar, MongoSidecarError } = require('../index');
const { agent, WRITE_ACTIONS } = require('../lib/transport');
const { droppingServer, rejection, scriptedServer } = require('../test-support/servers');
const {
  databaseUri, sleep, startCountingProxy, startSidecar,
} = require('../test-support/sidecar');

after(() => agent.destroy());

// Far more than a failing call needs, far less than a hang: the calls below set no client timeout.
const NOT_A_HANG_MS = 5000;

function collectionAt(port, options = {}) {
  return new MongoSidecar({ port, token: 't', ...options }).db('d').collection('c');
}

for (const [status, code, outcome] of [
  [504, 'WriteOutcomeUnknown', 'unknown'],
  [502, 'WriteOutcomeUnknown', 'unknown'],
  [500, 'WriteConcernFailed', 'applied'],
]) {
  test(`a write answered ${status} ${code} exposes outcome '${outcome}' and is not retried`, async () => {
    const server = await scriptedServer([
      { status, body: { error: "the write's fate", error_code: code, outcome } },
      { status: 200, body: { insertedId: { $numberInt: '1' } } },
    ]);
    try {
      const err = await rejection(collectionAt(server.address().port).insertOne({ _id: 1 }));
      assert.ok(err instanceof MongoSidecarError);
      assert.deepEqual([err.status, err.code, err.outcome, err.retryAfter], [status, code, outcome, undefined]);
      assert.equal(server.requests, 1);
    } finally {
      server.close();
    }
  });
}

test('an error without an outcome has none', async () => {
  const server = await scriptedServer([{ status: 400, body: { error: 'bad', error_code: 'InvalidParameter' } }]);
  try {
    const err = await rejection(collectionAt(server.address().port).insertOne({ _id: 1 }));
    assert.equal(err.outcome, undefined);
  } finally {
    server.close();
  }
});

test('a write on a kept-alive connection dropped as it arrives is not sent again', async () => {
  const server = await droppingServer();
  const port = server.address().port;
  try {
    const coll = collectionAt(port);
    assert.equal(await coll.findOne({}), null);
    const err = await rejection(coll.insertOne({ _id: 1 }));
    assert.deepEqual([err.status, err.code, err.outcome], [0, 'SidecarUnreachable', 'unknown']);
    assert.match(err.message, new RegExp(`^mongo-sidecar at 127\\.0\\.0\\.1:${port}: `));
    assert.match(err.message, /outcome is unknown/);
    assert.deepEqual(server.stats, { connections: 1, requests: 2 }, 'the write went out once');
  } finally {
    server.shutdown();
  }
});

test('a failure before connecting leaves no outcome', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mongo-sidecar-none-'));
  try {
    const client = new MongoSidecar({ socketPath: path.join(dir, 'nothing-listens-here.sock'), token: 't' });
    const err = await rejection(client.db('d').collection('c').insertOne({ _id: 1 }));
    assert.deepEqual([err.code, err.outcome], ['SidecarUnreachable', undefined]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('every action that can change data is a write', () => {
  assert.deepEqual([...WRITE_ACTIONS].sort(), ['aggregate', 'bulkWrite', 'deleteMany', 'deleteOne',
    'findOneAndDelete', 'findOneAndReplace', 'findOneAndUpdate', 'insertMany', 'insertOne', 'replaceOne',
    'updateMany', 'updateOne']);
});

test('a pooled connection the sidecar closed while idle is not used for a write', async () => {
  const sidecar = await startSidecar();
  const proxy = await startCountingProxy(sidecar.port);
  try {
    const coll = new MongoSidecar({ port: proxy.port, token: sidecar.token }).db('client_node').collection('idle_write');
    await coll.deleteMany({});
    proxy.dropConnections();
    await sleep(100);
    await coll.insertOne({ _id: 'once' });
    assert.equal(proxy.connections, 2);
    assert.equal(await coll.countDocuments({}), 1);
  } finally {
    await proxy.close();
    assert.equal(await sidecar.stop(), 0);
  }
});

// --- a sidecar killed with a request in flight ------------------------------------------------

for (const action of ['findOne', 'insertOne']) {
  test(`a sidecar killed during a ${action} fails the call at once, naming the sidecar`, async () => {
    // The database's traffic passes through a proxy the test holds: the operation stays in
    // flight inside the sidecar until the test kills it.
    const databasePort = Number(new URL(databaseUri()).port);
    const dbProxy = await startCountingProxy(databasePort);
    const sidecar = await startSidecar({ MONGODB_URI: `mongodb://127.0.0.1:${dbProxy.port}/` });
    try {
      const coll = new MongoSidecar({ port: sidecar.port, token: sidecar.token }).db('client_node').collection('killed');
      await coll.findOne({}); // a kept-alive connection, as in a warm function
      dbProxy.hold();
      const call = coll[action]({ _id: 'in-flight' }).then(() => undefined, (err) => err);
      assert.ok(await dbProxy.waitHeld(NOT_A_HANG_MS), 'the operation never reached the database');
      const killedAt = Date.now();
      await sidecar.kill();
      const err = await Promise.race([call, sleep(NOT_A_HANG_MS).then(() => 'hang')]);
      assert.notEqual(err, 'hang', `the call still hangs ${NOT_A_HANG_MS} ms after the sidecar was killed`);
      assert.ok(err instanceof MongoSidecarError, 'the call succeeded although the sidecar was killed');
      assert.ok(Date.now() - killedAt < NOT_A_HANG_MS);
      assert.deepEqual([err.status, err.code], [0, 'SidecarUnreachable']);
      assert.match(err.message, new RegExp(`^mongo-sidecar at 127\\.0\\.0\\.1:${sidecar.port}: `));
      assert.equal(err.outcome, action === 'insertOne' ? 'unknown' : undefined);

      const started = Date.now();
      const next = await rejection(coll.findOne({}));
      assert.ok(Date.now() - started < NOT_A_HANG_MS);
      assert.equal(next.code, 'SidecarUnreachable');
      assert.match(next.message, /ECONNREFUSED/);
    } finally {
      await dbProxy.close();
    }
  });
}
