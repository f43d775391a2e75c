'use strict';
// How the client reaches the real sidecar: the token it sends, TCP and the Unix socket,
// kept-alive connections, and how the sidecar's errors surface.

const assert = require('node:assert/strict');
const fs = require('fs');
const { after, before, test } = require('node:test');

const { MongoSidecar, MongoSidecarError } = require('../index');
const {
  startSidecar, startCountingProxy, withEnv, freePort, sleep,
} = require('../test-support/sidecar');
const { rejection } = require('../test-support/servers');

let sidecar;

before(async () => {
  sidecar = await startSidecar();
});

after(async () => {
  assert.equal(await sidecar.stop(), 0, 'the sidecar exits 0 on SIGTERM');
});

const DB = 'client_node_transport';

/** findOne through a client made with `options` (after the environment is set). */
function probe(options) {
  return new MongoSidecar({ port: sidecar.port, ...options }).db(DB).collection('probe').findOne({ _id: 'none' });
}

test('the token is sent from MONGO_SIDECAR_TOKEN when no option gives one', async () => {
  await withEnv({ MONGO_SIDECAR_TOKEN: sidecar.token }, async () => {
    assert.equal(await probe({}), null);
  });
});

test('the token is sent from AWS_SESSION_TOKEN when MONGO_SIDECAR_TOKEN is unset', async () => {
  await withEnv({ AWS_SESSION_TOKEN: sidecar.token }, async () => {
    assert.equal(await probe({}), null);
  });
});

test('MONGO_SIDECAR_TOKEN wins over AWS_SESSION_TOKEN, and the token option over both', async () => {
  await withEnv({ MONGO_SIDECAR_TOKEN: sidecar.token, AWS_SESSION_TOKEN: 'wrong' }, async () => {
    assert.equal(await probe({}), null);
  });
  await withEnv({ MONGO_SIDECAR_TOKEN: 'wrong', AWS_SESSION_TOKEN: 'wrong' }, async () => {
    assert.equal(await probe({ token: sidecar.token }), null);
  });
});

test('the token is read at each call, so one set after the client was made applies', async () => {
  await withEnv({}, async () => {
    const coll = new MongoSidecar({ port: sidecar.port }).db(DB).collection('probe');
    process.env.MONGO_SIDECAR_TOKEN = sidecar.token;
    assert.equal(await coll.findOne({ _id: 'none' }), null);
  });
});

test('a wrong token surfaces as a MongoSidecarError with status 401 and code InvalidSession', async () => {
  await withEnv({ MONGO_SIDECAR_TOKEN: 'wrong-token' }, async () => {
    const err = await rejection(probe({}));
    assert.ok(err instanceof MongoSidecarError);
    assert.equal(err.status, 401);
    assert.equal(err.code, 'InvalidSession');
    assert.equal(err.body.error_code, 'InvalidSession');
  });
});

test('no token at all is a 400 InvalidParameter: no header is sent', async () => {
  await withEnv({}, async () => {
    const err = await rejection(probe({}));
    assert.equal(err.status, 400);
    assert.equal(err.code, 'InvalidParameter');
    assert.match(err.message, /no authentication methods/);
  });
});

test('the Unix socket is used when given as an option', async () => {
  assert.ok(fs.statSync(sidecar.socketPath).isSocket());
  await withEnv({}, async () => {
    // An unused TCP port: only the socket can answer.
    const client = new MongoSidecar({ socketPath: sidecar.socketPath, port: await freePort(), token: sidecar.token });
    const coll = client.db(DB).collection('unix');
    await coll.deleteMany({});
    await coll.insertOne({ _id: 'over-unix' });
    assert.deepEqual(await coll.findOne({}), { _id: 'over-unix' });
  });
});

test('the Unix socket is used when MONGO_SIDECAR_SOCKET is set', async () => {
  await withEnv({
    MONGO_SIDECAR_SOCKET: sidecar.socketPath,
    MONGO_SIDECAR_PORT: String(await freePort()),
    MONGO_SIDECAR_TOKEN: sidecar.token,
  }, async () => {
    const client = new MongoSidecar();
    assert.equal(await client.db(DB).collection('unix').countDocuments({ _id: 'over-unix' }), 1);
  });
});

test('MONGO_SIDECAR_HOST and MONGO_SIDECAR_PORT select the TCP address', async () => {
  await withEnv({
    MONGO_SIDECAR_HOST: '127.0.0.1', MONGO_SIDECAR_PORT: String(sidecar.port), MONGO_SIDECAR_TOKEN: sidecar.token,
  }, async () => {
    assert.equal(await new MongoSidecar().db(DB).collection('probe').findOne({ _id: 'none' }), null);
  });
});

test('sequential calls reuse one kept-alive connection', async () => {
  const proxy = await startCountingProxy(sidecar.port);
  try {
    const coll = new MongoSidecar({ port: proxy.port, token: sidecar.token }).db(DB).collection('keepalive');
    await coll.deleteMany({});
    await coll.insertOne({ _id: 1 });
    await coll.findOne({ _id: 1 });
    await coll.countDocuments();
    assert.equal(proxy.connections, 1);
  } finally {
    await proxy.close();
  }
});

test('a connection closed while idle is replaced', async () => {
  // The other side (a proxy, a restarted sidecar) closed the kept-alive connection while idle.
  const proxy = await startCountingProxy(sidecar.port);
  try {
    const coll = new MongoSidecar({ port: proxy.port, token: sidecar.token }).db(DB).collection('idle');
    assert.equal(await coll.findOne({ _id: 'none' }), null);
    proxy.dropConnections();
    await sleep(100);
    assert.equal(await coll.findOne({ _id: 'none' }), null);
    assert.equal(proxy.connections, 2);
  } finally {
    await proxy.close();
  }
});

test('the sidecar keeps an idle connection open past its header timeout', async () => {
  // Idle time between requests is not timed: a thawed client must find its connection there.
  const short = await startSidecar({ MONGO_SIDECAR_HEADER_TIMEOUT_MS: '100' });
  const proxy = await startCountingProxy(short.port);
  try {
    const coll = new MongoSidecar({ port: proxy.port, token: short.token }).db(DB).collection('idle');
    assert.equal(await coll.findOne({ _id: 'none' }), null);
    await sleep(400);
    assert.equal(await coll.findOne({ _id: 'none' }), null);
    assert.equal(proxy.connections, 1);
  } finally {
    await proxy.close();
    assert.equal(await short.stop(), 0);
  }
});

test('a duplicate key is a 409 DuplicateKey error with serverCode 11000 and codeName', async () => {
  const coll = new MongoSidecar({ port: sidecar.port, token: sidecar.token }).db(DB).collection('dup');
  await coll.deleteMany({});
  await coll.insertOne({ _id: 'same' });
  const err = await rejection(coll.insertOne({ _id: 'same' }));
  assert.ok(err instanceof MongoSidecarError);
  assert.equal(err.status, 409);
  assert.equal(err.code, 'DuplicateKey');
  assert.equal(err.serverCode, 11000);
  assert.equal(err.codeName, 'DuplicateKey');
  assert.match(err.message, /^insertOne: duplicate key/);
});

test('an invalid request is a 400 InvalidParameter naming the problem', async () => {
  const coll = new MongoSidecar({ port: sidecar.port, token: sidecar.token }).db(DB).collection('bad');
  const err = await rejection(coll.updateOne({}, { plain: 'document' }));
  assert.equal(err.status, 400);
  assert.equal(err.code, 'InvalidParameter');
  assert.match(err.message, /update operators/);
  const unknownOption = await rejection(coll.findOne({}, { noSuchOption: 1 }));
  assert.match(unknownOption.message, /unknown field "noSuchOption"/);
});

test('an unknown action is a 404 ActionNotFound', async () => {
  const client = new MongoSidecar({ port: sidecar.port, token: sidecar.token });
  const err = await rejection(client.action('dropDatabase', DB, 'x'));
  assert.equal(err.status, 404);
  assert.equal(err.code, 'ActionNotFound');
});

test('the raw action call returns the Data API body, decoded', async () => {
  const client = new MongoSidecar({ port: sidecar.port, token: sidecar.token });
  assert.deepEqual(await client.action('findOne', DB, 'probe', { filter: { _id: 'none' } }), { document: null });
});

test('health reports ready', async () => {
  const body = await new MongoSidecar({ port: sidecar.port }).health();
  assert.equal(body.status, 'ready');
});

test('an address where nothing listens is a MongoSidecarError SidecarUnreachable', async () => {
  const client = new MongoSidecar({ port: await freePort(), token: 'x' });
  const err = await rejection(client.db(DB).collection('x').findOne({}));
  assert.ok(err instanceof MongoSidecarError);
  assert.equal(err.status, 0);
  assert.equal(err.code, 'SidecarUnreachable');
  assert.equal(err.cause.code, 'ECONNREFUSED');
});
