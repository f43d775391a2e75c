'use strict';
// The client's retry rules, against small local servers of the test's own that misbehave on
// purpose (the real sidecar cannot be made to do these on cue): a 503 Warming is retried exactly
// once, after Retry-After capped at maxRetryWaitMs; other 503s are not; a request sent on a
// kept-alive connection the server had already dropped is sent again on a new one.

const assert = require('node:assert/strict');
const net = require('net');
const { after, test } = require('node:test');

const { MongoSidecar, MongoSidecarError } = require('../index');
const { agent } = require('../lib/transport');
const { droppingServer, rejection, scriptedServer } = require('../test-support/servers');

// Should a request hang (a broken timeout), let the file's process end anyway.
after(() => agent.destroy());

const WARMING = {
  status: 503,
  headers: { 'Retry-After': '0' },
  body: { error: 'the database connection is still warming up', error_code: 'Warming' },
};
const FOUND = { status: 200, body: { document: { _id: { $numberInt: '1' } } } };

function collectionAt(server, options = {}) {
  return new MongoSidecar({ port: server.address().port, token: 't', ...options }).db('d').collection('c');
}

test('a 503 Warming is retried once and the second answer is returned', async () => {
  const server = await scriptedServer([WARMING, FOUND]);
  try {
    assert.deepEqual(await collectionAt(server).findOne({}), { _id: 1 });
    assert.equal(server.requests, 2);
  } finally {
    server.close();
  }
});

test('a second 503 Warming is not retried again: it surfaces as the error', async () => {
  const server = await scriptedServer([WARMING, WARMING, FOUND]);
  try {
    const err = await rejection(collectionAt(server).findOne({}));
    assert.ok(err instanceof MongoSidecarError);
    assert.equal(err.status, 503);
    assert.equal(err.code, 'Warming');
    assert.equal(err.retryAfter, 0);
    assert.equal(server.requests, 2);
  } finally {
    server.close();
  }
});

test('other 503s (Overloaded, DatabaseUnavailable) are not retried', async () => {
  for (const code of ['Overloaded', 'DatabaseUnavailable']) {
    const server = await scriptedServer([
      { status: 503, headers: { 'Retry-After': '0' }, body: { error: 'busy', error_code: code } }, FOUND,
    ]);
    try {
      const err = await rejection(collectionAt(server).findOne({}));
      assert.equal(err.code, code);
      assert.equal(server.requests, 1);
    } finally {
      server.close();
    }
  }
});

test('the wait before the retry honours Retry-After but never exceeds the cap (1 s by default)', async () => {
  const long = { ...WARMING, headers: { 'Retry-After': '30' } };
  const server = await scriptedServer([long, FOUND, long, FOUND]);
  try {
    let started = Date.now();
    await collectionAt(server).findOne({});
    const defaultWait = Date.now() - started;
    assert.ok(defaultWait >= 950 && defaultWait < 2000, `waited ${defaultWait} ms with the default cap`);

    started = Date.now();
    await collectionAt(server, { maxRetryWaitMs: 100 }).findOne({});
    const cappedWait = Date.now() - started;
    assert.ok(cappedWait >= 95 && cappedWait < 900, `waited ${cappedWait} ms with a 100 ms cap`);
  } finally {
    server.close();
  }
});

test('a short Retry-After is honoured as given', async () => {
  const server = await scriptedServer([{ ...WARMING, headers: { 'Retry-After': '0' } }, FOUND]);
  try {
    const started = Date.now();
    await collectionAt(server).findOne({});
    assert.ok(Date.now() - started < 500);
  } finally {
    server.close();
  }
});

test('a request on a kept-alive connection the server dropped is sent again on a new one', async () => {
  const server = await droppingServer();
  try {
    const coll = collectionAt(server);
    assert.equal(await coll.findOne({}), null);
    assert.equal(await coll.findOne({}), null, 'the second call succeeds despite the dropped connection');
    assert.deepEqual(server.stats, { connections: 2, requests: 3 });
  } finally {
    server.shutdown();
  }
});

test('a failure on a new connection is not retried', async () => {
  const server = await droppingServer({ dropFirst: true });
  try {
    const err = await rejection(collectionAt(server).findOne({}));
    assert.ok(err instanceof MongoSidecarError);
    assert.equal(err.code, 'SidecarUnreachable');
    assert.equal(server.stats.requests, 1);
  } finally {
    server.shutdown();
  }
});

test('a connection that fails after the answer began is not retried', async () => {
  const server = await droppingServer({ cutSecond: true });
  try {
    const coll = collectionAt(server);
    assert.equal(await coll.findOne({}), null);
    const err = await rejection(coll.findOne({}));
    assert.equal(err.code, 'SidecarUnreachable');
    assert.deepEqual(server.stats, { connections: 1, requests: 2 });
  } finally {
    server.shutdown();
  }
});

test('no answer within timeoutMs is a ClientTimeout error', { timeout: 5000 }, async () => {
  const silent = net.createServer((socket) => socket.unref());
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  silent.unref();
  try {
    const started = Date.now();
    const err = await rejection(collectionAt(silent, { timeoutMs: 200 }).findOne({}));
    assert.ok(err instanceof MongoSidecarError);
    assert.equal(err.code, 'ClientTimeout');
    assert.equal(err.status, 0);
    assert.ok(Date.now() - started < 1000);
  } finally {
    silent.close();
  }
});

test('a call names its invocation with the runtime X-Ray trace id, and sends none outside one', async () => {
  const server = await scriptedServer([FOUND]);
  try {
    const saved = process.env._X_AMZN_TRACE_ID;
    process.env._X_AMZN_TRACE_ID = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0';
    try {
      await collectionAt(server).findOne({});
      assert.equal(server.lastHeaders['x-amzn-trace-id'], process.env._X_AMZN_TRACE_ID);
      delete process.env._X_AMZN_TRACE_ID;
      await collectionAt(server).findOne({});
      assert.equal(server.lastHeaders['x-amzn-trace-id'], undefined);
    } finally {
      if (saved === undefined) delete process.env._X_AMZN_TRACE_ID;
      else process.env._X_AMZN_TRACE_ID = saved;
    }
  } finally {
    server.close();
  }
});
