'use strict';
// BSON types through a real insert and find: what goes in comes back as the same JavaScript
// value, and is stored as the intended BSON type (checked with $type queries on the server).
// FerretDB 1.24 cannot store Decimal128, MinKey, MaxKey, NaN/Infinity, JavaScript code, symbols
// or undefined; ejson.test.js covers those without a database.

const assert = require('node:assert/strict');
const { after, before, test } = require('node:test');

const {
  MongoSidecar, ObjectId, Binary, BSONRegExp, Timestamp,
} = require('../index');
const { startSidecar } = require('../test-support/sidecar');

let sidecar;
let coll;

before(async () => {
  sidecar = await startSidecar();
  const client = new MongoSidecar({ port: sidecar.port, token: sidecar.token, timeoutMs: 10000 });
  coll = client.db('client_node_types').collection('round_trip');
  await coll.deleteMany({});
});

after(async () => {
  assert.equal(await sidecar.stop(), 0, 'the sidecar exits 0 on SIGTERM');
});

/** Inserts `{_id, v: value}`, reads it back, and checks it is stored with BSON type `bsonType`. */
async function roundTrip(id, value, bsonType) {
  await coll.insertOne({ _id: id, v: value });
  if (bsonType !== undefined) {
    assert.equal(await coll.countDocuments({ _id: id, v: { $type: bsonType } }), 1, `stored as ${bsonType}`);
  }
  return (await coll.findOne({ _id: id })).v;
}

test('a Date round-trips as a Date with millisecond precision, stored as a BSON date', async () => {
  const when = new Date('2024-02-29T12:34:56.789Z');
  const back = await roundTrip('date', when, 'date');
  assert.ok(back instanceof Date);
  assert.equal(back.getTime(), when.getTime());
});

test('a date before 1970 round-trips', async () => {
  const when = new Date('1901-12-13T20:45:52.001Z');
  assert.equal((await roundTrip('old_date', when, 'date')).getTime(), when.getTime());
});

test('an ObjectId round-trips as an equal ObjectId', async () => {
  const id = new ObjectId('65a1b2c3d4e5f60718293a4b');
  const back = await roundTrip('oid', id, 'objectId');
  assert.ok(back instanceof ObjectId);
  assert.ok(back.equals(id));
});

test('a small integer is stored as Int32 and comes back as a number', async () => {
  assert.equal(await roundTrip('int', 42, 'int'), 42);
  assert.equal(await roundTrip('int_min', -2147483648, 'int'), -2147483648);
});

test('an integer beyond 32 bits is stored as Int64 and comes back as a number while safe', async () => {
  assert.equal(await roundTrip('long_safe', 5_000_000_000, 'long'), 5_000_000_000);
  assert.equal(await roundTrip('long_max_safe', Number.MAX_SAFE_INTEGER, 'long'), Number.MAX_SAFE_INTEGER);
});

test('a BigInt is stored as Int64 and comes back as a BigInt when beyond 2^53', async () => {
  assert.equal(await roundTrip('bigint', 9007199254740993n, 'long'), 9007199254740993n);
  assert.equal(await roundTrip('bigint_min', -(2n ** 63n), 'long'), -(2n ** 63n));
  assert.equal(await roundTrip('bigint_small', 7n, 'long'), 7, 'a safe Int64 comes back as a number');
});

test('a fraction is stored as a double and comes back as the same number', async () => {
  assert.equal(await roundTrip('double', 0.1 + 0.2, 'double'), 0.1 + 0.2);
  assert.equal(await roundTrip('double_big', 1.7976931348623157e308, 'double'), 1.7976931348623157e308);
  assert.equal(await roundTrip('double_unsafe_int', 2 ** 60, 'double'), 2 ** 60);
});

test('a Buffer is stored as generic binary and comes back as a Binary of subtype 0', async () => {
  const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
  const back = await roundTrip('binary', bytes, 'binData');
  assert.ok(back instanceof Binary);
  assert.equal(back.subType, 0);
  assert.ok(back.buffer.equals(bytes));
});

test('a UUID Binary (subtype 4) and a user-defined subtype round-trip', async () => {
  const uuid = Binary.fromUUID('00112233-4455-6677-8899-aabbccddeeff');
  const back = await roundTrip('uuid', uuid, 'binData');
  assert.equal(back.subType, 4);
  assert.equal(back.toUUID(), '00112233-4455-6677-8899-aabbccddeeff');
  const custom = new Binary(Buffer.from('custom'), 0x80);
  assert.ok((await roundTrip('binary_user', custom, 'binData')).equals(custom));
});

test('a RegExp round-trips as a RegExp with its flags', async () => {
  const back = await roundTrip('regex', /^ab+c$/im, 'regex');
  assert.ok(back instanceof RegExp);
  assert.equal(back.source, '^ab+c$');
  assert.equal(back.flags, 'im');
});

test('a regex with options JavaScript lacks comes back as a BSONRegExp', async () => {
  const back = await roundTrip('regex_x', new BSONRegExp('a b # spaced', 'xi'), 'regex');
  assert.ok(back instanceof BSONRegExp);
  assert.deepEqual([back.pattern, back.options], ['a b # spaced', 'ix']);
});

test('a Timestamp round-trips', async () => {
  const back = await roundTrip('timestamp', new Timestamp({ t: 1700000000, i: 7 }), 'timestamp');
  assert.ok(back instanceof Timestamp);
  assert.deepEqual([back.t, back.i], [1700000000, 7]);
});

test('strings, booleans, null, nested documents and arrays round-trip unchanged', async () => {
  const value = {
    text: 'héllo "quoted" \\ \n 😀 \u0001',
    yes: true,
    no: false,
    nothing: null,
    nested: { deeper: { list: [1, 'two', { three: 3 }, {}] } }, // (FerretDB: no nested arrays)
  };
  assert.deepEqual(await roundTrip('plain', value, 'object'), value);
});

test('typed values nested in arrays and documents are decoded at every depth', async () => {
  const id = new ObjectId();
  const when = new Date(0);
  const back = await roundTrip('nested_types', { list: [{ id, when }], big: { n: 2n ** 62n } });
  assert.ok(back.list[0].id.equals(id));
  assert.equal(back.list[0].when.getTime(), 0);
  assert.equal(back.big.n, 2n ** 62n);
});

test('a Date and an ObjectId work as query values', async () => {
  await coll.insertMany([
    { _id: 'q1', at: new Date('2020-01-01T00:00:00Z') },
    { _id: 'q2', at: new Date('2021-01-01T00:00:00Z') },
  ]);
  const found = await coll.find({ at: { $gt: new Date('2020-06-01T00:00:00Z') } });
  assert.deepEqual(found.map((d) => d._id), ['q2']);
});
