'use strict';
// The Extended JSON conversions on their own, including the types FerretDB cannot store.

const assert = require('node:assert/strict');
const { test } = require('node:test');

const {
  EJSON, ObjectId, Decimal128, Binary, BSONRegExp, Timestamp, MinKey, MaxKey, Code,
} = require('../index');

const encode = (value) => JSON.parse(EJSON.stringify(value));

test('Decimal128 encodes as $numberDecimal and decodes to a Decimal128 with the same string', () => {
  assert.deepEqual(encode({ d: new Decimal128('1234.5600') }), { d: { $numberDecimal: '1234.5600' } });
  const back = EJSON.parse('{"d":{"$numberDecimal":"-0.000001E+10"}}').d;
  assert.ok(back instanceof Decimal128);
  assert.equal(back.toString(), '-0.000001E+10');
  assert.equal(JSON.stringify({ d: back }), '{"d":"-0.000001E+10"}');
});

test('MinKey and MaxKey encode and decode', () => {
  assert.deepEqual(encode([new MinKey(), new MaxKey()]), [{ $minKey: 1 }, { $maxKey: 1 }]);
  const [min, max] = EJSON.parse('[{"$minKey":1},{"$maxKey":1}]');
  assert.ok(min instanceof MinKey);
  assert.ok(max instanceof MaxKey);
});

test('NaN, Infinity and -0 encode as $numberDouble, not as JSON null or 0', () => {
  assert.deepEqual(encode([NaN, Infinity, -Infinity, -0]), [
    { $numberDouble: 'NaN' }, { $numberDouble: 'Infinity' }, { $numberDouble: '-Infinity' }, { $numberDouble: '-0.0' },
  ]);
  const [nan, inf, ninf, negZero] = EJSON.parse(
    '[{"$numberDouble":"NaN"},{"$numberDouble":"Infinity"},{"$numberDouble":"-Infinity"},{"$numberDouble":"-0.0"}]',
  );
  assert.ok(Number.isNaN(nan));
  assert.equal(inf, Infinity);
  assert.equal(ninf, -Infinity);
  assert.ok(Object.is(negZero, -0));
});

test('numbers: safe integers and fractions stay plain JSON; integers past 2^53 become doubles', () => {
  assert.equal(EJSON.stringify({ a: 1, b: 2.5, c: 5e9 }), '{"a":1,"b":2.5,"c":5000000000}');
  assert.deepEqual(encode(2 ** 64), { $numberDouble: '18446744073709552000' });
});

test('Int32, Int64 and Double decode to numbers; an Int64 beyond 2^53 to a BigInt', () => {
  const doc = EJSON.parse(
    '{"i":{"$numberInt":"-7"},"l":{"$numberLong":"9007199254740991"},"big":{"$numberLong":"-9223372036854775808"},"d":{"$numberDouble":"1.0"}}',
  );
  assert.deepEqual(doc, { i: -7, l: 9007199254740991, big: -9223372036854775808n, d: 1 });
  assert.deepEqual(encode({ n: 2n ** 63n - 1n }), { n: { $numberLong: '9223372036854775807' } });
});

test('a Date encodes as canonical $date milliseconds; an invalid Date is refused', () => {
  assert.deepEqual(encode({ at: new Date(-1) }), { at: { $date: { $numberLong: '-1' } } });
  assert.throws(() => EJSON.stringify({ at: new Date('nope') }), /invalid Date/);
  assert.equal(EJSON.parse('{"$date":{"$numberLong":"86400000"}}').toISOString(), '1970-01-02T00:00:00.000Z');
  assert.equal(EJSON.parse('{"$date":"2024-01-01T00:00:00Z"}').getTime(), Date.UTC(2024, 0, 1), 'relaxed form too');
});

test('binary: Buffer and Uint8Array encode as subtype 00, Binary with its subtype in hex', () => {
  assert.deepEqual(encode(Buffer.from('hi')), { $binary: { base64: 'aGk=', subType: '00' } });
  assert.deepEqual(encode(new Uint8Array([104, 105])), { $binary: { base64: 'aGk=', subType: '00' } });
  assert.deepEqual(encode(new Binary(Buffer.from('hi'), 0x85)), { $binary: { base64: 'aGk=', subType: '85' } });
  const uuid = EJSON.parse('{"$binary":{"base64":"ABEiM0RVZneImaq7zN3u/w==","subType":"04"}}');
  assert.equal(uuid.toUUID(), '00112233-4455-6677-8899-aabbccddeeff');
});

test('RegExp flags map to BSON options; x and l decode to BSONRegExp, others to RegExp', () => {
  assert.deepEqual(encode(/a/gims), { $regularExpression: { pattern: 'a', options: 'ims' } });
  assert.ok(EJSON.parse('{"$regularExpression":{"pattern":"a","options":"su"}}') instanceof RegExp);
  const x = EJSON.parse('{"$regularExpression":{"pattern":"a b","options":"ix"}}');
  assert.ok(x instanceof BSONRegExp);
  const pcreOnly = EJSON.parse('{"$regularExpression":{"pattern":"(?i)abc","options":""}}');
  assert.ok(pcreOnly instanceof BSONRegExp, 'a pattern JavaScript cannot compile stays a BSONRegExp');
  assert.deepEqual(encode(x), { $regularExpression: { pattern: 'a b', options: 'ix' } });
});

test('Timestamp, Code with scope, symbol and undefined', () => {
  assert.deepEqual(encode(new Timestamp({ t: 1, i: 2 })), { $timestamp: { t: 1, i: 2 } });
  assert.deepEqual(encode(new Code('x + y', { y: new Date(0) })), {
    $code: 'x + y', $scope: { y: { $date: { $numberLong: '0' } } },
  });
  const doc = EJSON.parse(
    '{"c":{"$code":"f()","$scope":{"n":{"$numberInt":"1"}}},"s":{"$symbol":"sym"},"u":{"$undefined":true}}',
  );
  assert.ok(doc.c instanceof Code);
  assert.deepEqual([doc.c.code, doc.c.scope], ['f()', { n: 1 }]);
  assert.equal(doc.s, 'sym');
  assert.equal(doc.u, null);
});

test('ObjectId: hex inside, toString/toJSON give hex, equals compares ids', () => {
  const id = new ObjectId('65A1B2C3D4E5F60718293A4B');
  assert.equal(id.toHexString(), '65a1b2c3d4e5f60718293a4b');
  assert.equal(`${id}`, '65a1b2c3d4e5f60718293a4b');
  assert.equal(JSON.stringify({ id }), '{"id":"65a1b2c3d4e5f60718293a4b"}');
  assert.ok(id.equals(new ObjectId(id.toHexString())));
  assert.ok(id.equals('65a1b2c3d4e5f60718293a4b'));
  assert.ok(!id.equals(new ObjectId()));
  assert.deepEqual(encode({ id }), { id: { $oid: '65a1b2c3d4e5f60718293a4b' } });
  assert.throws(() => new ObjectId('not-hex'), TypeError);
  const a = new ObjectId();
  const b = new ObjectId();
  assert.notEqual(a.toHexString(), b.toHexString(), 'generated ids are unique');
  assert.ok(Math.abs(a.getTimestamp().getTime() - Date.now()) < 5000);
});

test('a document whose first key merely starts with $ is not mistaken for a wrapper', () => {
  const doc = EJSON.parse('{"$oid":"65a1b2c3d4e5f60718293a4b","other":{"$numberInt":"1"}}');
  assert.deepEqual(Object.keys(doc), ['$oid', 'other']);
  assert.equal(doc.other, 1);
  const three = EJSON.parse('{"$numberInt":"1","a":{"$numberInt":"2"},"b":3}');
  assert.deepEqual(three, { $numberInt: '1', a: 2, b: 3 });
});

test('a field named __proto__ stays data and does not change the prototype', () => {
  const doc = EJSON.parse('{"__proto__":{"a":{"$numberInt":"5"}},"x":{"polluted":true}}');
  assert.equal(Object.getPrototypeOf(doc), Object.prototype);
  assert.deepEqual(Object.getOwnPropertyDescriptor(doc, '__proto__').value, { a: 5 });
});

test('undefined fields are left out, as JSON does', () => {
  assert.equal(EJSON.stringify({ a: undefined, b: 1 }), '{"b":1}');
});
