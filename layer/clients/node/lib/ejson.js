'use strict';
// Extended JSON v2 at the client's edge: `stringify` writes a request body (JavaScript values
// to EJSON the sidecar reads), `parse` reads a response written with `Accept: application/ejson`
// (canonical EJSON to JavaScript values). The type mapping is in the README.

const {
  ObjectId, Decimal128, Binary, BSONRegExp, Timestamp, MinKey, MaxKey, Code,
} = require('./bson-types');

// ---------------------------------------------------------------------------------------------
// JavaScript -> Extended JSON

// RegExp flags that mean the same in BSON (PCRE); g, y and d only steer JavaScript's matching
// loop and have no BSON equivalent.
const REGEXP_FLAGS_TO_BSON = { i: 'i', m: 'm', s: 's', u: 'u' };

function subTypeHex(n) {
  return n < 16 ? `0${n.toString(16)}` : n.toString(16);
}

function binaryEjson(bytes, subType) {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { $binary: { base64: buffer.toString('base64'), subType: subTypeHex(subType) } };
}

function numberEjson(n) {
  if (Number.isFinite(n)) {
    if (Object.is(n, -0)) return { $numberDouble: '-0.0' };
    // An integer past 2^53 is not exact; plain JSON would make the sidecar read it as an
    // integer it cannot hold (or as a different one), so say it is a double.
    if (Number.isInteger(n) && !Number.isSafeInteger(n)) return { $numberDouble: String(n) };
    return n;
  }
  // JSON.stringify would write null.
  return { $numberDouble: Number.isNaN(n) ? 'NaN' : n > 0 ? 'Infinity' : '-Infinity' };
}

/**
 * JSON.stringify replacer. It reads `this[key]`, the value before any toJSON ran: Date and the
 * BSON classes have toJSON methods meant for people, not for the wire.
 */
function replacer(key, value) {
  const raw = this[key];
  switch (typeof raw) {
    case 'number':
      return numberEjson(raw);
    case 'bigint':
      return { $numberLong: raw.toString() };
    case 'object':
      if (raw === null) return null;
      if (raw instanceof Date) {
        const ms = raw.getTime();
        if (Number.isNaN(ms)) throw new TypeError(`cannot send an invalid Date (at ${JSON.stringify(key)})`);
        return { $date: { $numberLong: String(ms) } };
      }
      if (raw instanceof ObjectId) return { $oid: raw.hex };
      if (raw instanceof Uint8Array) return binaryEjson(raw, 0);
      if (raw instanceof Binary) return binaryEjson(raw.buffer, raw.subType);
      if (raw instanceof Decimal128) return { $numberDecimal: raw.value };
      if (raw instanceof RegExp) {
        const options = [...raw.flags].map((f) => REGEXP_FLAGS_TO_BSON[f] || '').sort().join('');
        return { $regularExpression: { pattern: raw.source, options } };
      }
      if (raw instanceof BSONRegExp) {
        return { $regularExpression: { pattern: raw.pattern, options: raw.options } };
      }
      if (raw instanceof Timestamp) return { $timestamp: { t: raw.t, i: raw.i } };
      if (raw instanceof MinKey) return { $minKey: 1 };
      if (raw instanceof MaxKey) return { $maxKey: 1 };
      if (raw instanceof Code) {
        return raw.scope === undefined ? { $code: raw.code } : { $code: raw.code, $scope: raw.scope };
      }
      return value;
    default:
      return value;
  }
}

/** A JavaScript value as Extended JSON text. */
function stringify(value) {
  return JSON.stringify(value, replacer);
}

// ---------------------------------------------------------------------------------------------
// Extended JSON -> JavaScript

const NOT_A_WRAPPER = Symbol('not a wrapper');

function int64(text) {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

function dateOf(value) {
  if (typeof value === 'string') return new Date(value); // relaxed: ISO-8601
  if (value !== null && typeof value === 'object' && typeof value.$numberLong === 'string') {
    return new Date(Number(value.$numberLong));
  }
  if (typeof value === 'number') return new Date(value); // legacy: milliseconds
  return NOT_A_WRAPPER;
}

function regExpOf(pattern, options) {
  if (/^[imsu]*$/.test(options)) {
    try {
      return new RegExp(pattern, options);
    } catch {
      // PCRE syntax JavaScript does not read (possessive quantifiers, inline flags...).
    }
  }
  return new BSONRegExp(pattern, options);
}

function binaryOf(base64, subType) {
  if (typeof base64 !== 'string' || typeof subType !== 'string') return NOT_A_WRAPPER;
  return new Binary(Buffer.from(base64, 'base64'), parseInt(subType, 16));
}

/** Converts `object` if it is a type wrapper whose first key is `key`. */
function unwrap(key, object) {
  const value = object[key];
  let keys = 0;
  // eslint-disable-next-line no-unused-vars
  for (const _ in object) keys += 1;
  if (keys === 2) {
    if (key === '$code' && object.$scope !== undefined) {
      return new Code(value, decodeInPlace(object.$scope));
    }
    if (key === '$binary' && typeof value === 'string') return binaryOf(value, object.$type); // v1
    return NOT_A_WRAPPER;
  }
  if (keys !== 1) return NOT_A_WRAPPER;
  switch (key) {
    case '$numberInt':
      return typeof value === 'string' ? Number(value) : NOT_A_WRAPPER;
    case '$numberDouble':
      return typeof value === 'string' ? Number(value) : NOT_A_WRAPPER;
    case '$numberLong':
      return typeof value === 'string' ? int64(value) : NOT_A_WRAPPER;
    case '$oid':
      return typeof value === 'string' ? new ObjectId(value) : NOT_A_WRAPPER;
    case '$date':
      return dateOf(value);
    case '$numberDecimal':
      return typeof value === 'string' ? new Decimal128(value) : NOT_A_WRAPPER;
    case '$binary':
      return value !== null && typeof value === 'object' ? binaryOf(value.base64, value.subType) : NOT_A_WRAPPER;
    case '$uuid':
      return typeof value === 'string' ? Binary.fromUUID(value) : NOT_A_WRAPPER;
    case '$regularExpression':
      return value !== null && typeof value === 'object' && typeof value.pattern === 'string'
        ? regExpOf(value.pattern, value.options || '')
        : NOT_A_WRAPPER;
    case '$timestamp':
      return value !== null && typeof value === 'object' ? new Timestamp({ t: value.t, i: value.i }) : NOT_A_WRAPPER;
    case '$minKey':
      return value === 1 ? new MinKey() : NOT_A_WRAPPER;
    case '$maxKey':
      return value === 1 ? new MaxKey() : NOT_A_WRAPPER;
    case '$symbol':
      return typeof value === 'string' ? value : NOT_A_WRAPPER;
    case '$code':
      return typeof value === 'string' ? new Code(value) : NOT_A_WRAPPER;
    case '$undefined':
      return value === true ? null : NOT_A_WRAPPER;
    default:
      return NOT_A_WRAPPER; // $dbPointer, or a document that has a $-prefixed field
  }
}

/** Decodes a parsed EJSON value, replacing wrappers inside containers in place. */
function decodeInPlace(value) {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) value[i] = decodeInPlace(value[i]);
    return value;
  }
  for (const key in value) {
    if (key.charCodeAt(0) === 36 /* $ */) {
      const decoded = unwrap(key, value);
      if (decoded !== NOT_A_WRAPPER) return decoded;
    }
    break; // only the first key can make an object a wrapper
  }
  // (A field named __proto__ is safe to assign: JSON.parse made it an own data property, which
  // shadows the prototype setter.)
  for (const key in value) value[key] = decodeInPlace(value[key]);
  return value;
}

/** Extended JSON text as JavaScript values. */
function parse(text) {
  return decodeInPlace(JSON.parse(text));
}

module.exports = { stringify, parse, decode: decodeInPlace };
