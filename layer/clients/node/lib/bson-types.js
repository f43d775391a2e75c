'use strict';
// The BSON types that have no native JavaScript equivalent. Each is a small value class; the
// conversions to and from Extended JSON live in ejson.js.

const crypto = require('crypto');
const util = require('util');

const HEX_24 = /^[0-9a-fA-F]{24}$/;

// ObjectId generation: 4 bytes of seconds, 5 random bytes per process, a 3-byte counter.
const PROCESS_UNIQUE = crypto.randomBytes(5).toString('hex');
let counter = crypto.randomBytes(3).readUIntBE(0, 3);

function hexOfLength(n, length) {
  return n.toString(16).padStart(length, '0');
}

class ObjectId {
  /**
   * @param {string|ObjectId|Uint8Array} [id] 24 hex characters, 12 bytes, another ObjectId, or
   *   nothing for a new id.
   */
  constructor(id) {
    if (id === undefined || id === null) {
      counter = (counter + 1) % 0x1000000;
      const seconds = Math.floor(Date.now() / 1000) >>> 0;
      this.hex = hexOfLength(seconds, 8) + PROCESS_UNIQUE + hexOfLength(counter, 6);
    } else if (typeof id === 'string' && HEX_24.test(id)) {
      this.hex = id.toLowerCase();
    } else if (id instanceof ObjectId) {
      this.hex = id.hex;
    } else if (id instanceof Uint8Array && id.length === 12) {
      this.hex = Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
    } else {
      throw new TypeError(
        `ObjectId takes 24 hexadecimal characters, 12 bytes or nothing, not ${util.inspect(id)}`,
      );
    }
  }

  static isValid(id) {
    return (
      (typeof id === 'string' && HEX_24.test(id)) ||
      id instanceof ObjectId ||
      (id instanceof Uint8Array && id.length === 12)
    );
  }

  static createFromHexString(hex) {
    return new ObjectId(hex);
  }

  toHexString() {
    return this.hex;
  }

  toString() {
    return this.hex;
  }

  toJSON() {
    return this.hex;
  }

  /** The creation time encoded in the id (second precision). */
  getTimestamp() {
    return new Date(parseInt(this.hex.slice(0, 8), 16) * 1000);
  }

  /** True for an ObjectId or a hex string naming the same id. */
  equals(other) {
    if (other instanceof ObjectId) return other.hex === this.hex;
    if (typeof other === 'string') return other.toLowerCase() === this.hex;
    return false;
  }

  [util.inspect.custom]() {
    return `new ObjectId('${this.hex}')`;
  }
}

/** A 128-bit decimal, kept as its string form (JavaScript has no decimal type). */
class Decimal128 {
  constructor(value) {
    if (typeof value !== 'string' || value === '') {
      throw new TypeError('Decimal128 takes the decimal number as a string, such as "1.10"');
    }
    this.value = value;
  }

  static fromString(value) {
    return new Decimal128(value);
  }

  toString() {
    return this.value;
  }

  toJSON() {
    return this.value;
  }

  [util.inspect.custom]() {
    return `new Decimal128('${this.value}')`;
  }
}

/** Binary data with a BSON subtype (0 generic, 4 UUID, 0x80-0xff user defined, ...). */
class Binary {
  constructor(buffer, subType = Binary.SUBTYPE_DEFAULT) {
    if (!(buffer instanceof Uint8Array)) {
      throw new TypeError('Binary takes a Buffer or Uint8Array');
    }
    if (!Number.isInteger(subType) || subType < 0 || subType > 0xff) {
      throw new TypeError(`Binary subtype must be an integer from 0 to 255, not ${subType}`);
    }
    this.buffer = Buffer.isBuffer(buffer)
      ? buffer
      : Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    this.subType = subType;
  }

  /** A subtype 4 Binary from a UUID string such as "00112233-4455-6677-8899-aabbccddeeff". */
  static fromUUID(uuid) {
    const hex = String(uuid).replace(/-/g, '');
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError(`not a UUID: ${uuid}`);
    return new Binary(Buffer.from(hex, 'hex'), Binary.SUBTYPE_UUID);
  }

  /** The UUID string of a 16-byte subtype 4 Binary. */
  toUUID() {
    if (this.subType !== Binary.SUBTYPE_UUID || this.buffer.length !== 16) {
      throw new TypeError('only a 16-byte Binary of subtype 4 is a UUID');
    }
    const h = this.buffer.toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  equals(other) {
    return other instanceof Binary && other.subType === this.subType && other.buffer.equals(this.buffer);
  }

  toString(encoding = 'base64') {
    return this.buffer.toString(encoding);
  }

  toJSON() {
    return this.buffer.toString('base64');
  }
}
Binary.SUBTYPE_DEFAULT = 0;
Binary.SUBTYPE_FUNCTION = 1;
Binary.SUBTYPE_UUID_OLD = 3;
Binary.SUBTYPE_UUID = 4;
Binary.SUBTYPE_MD5 = 5;
Binary.SUBTYPE_ENCRYPTED = 6;
Binary.SUBTYPE_COLUMN = 7;
Binary.SUBTYPE_SENSITIVE = 8;
Binary.SUBTYPE_VECTOR = 9;
Binary.SUBTYPE_USER_DEFINED = 0x80;

/**
 * A regular expression whose options JavaScript's RegExp cannot carry (x, l) or whose pattern
 * it cannot compile. Options are BSON's: i, l, m, s, u, x.
 */
class BSONRegExp {
  constructor(pattern, options = '') {
    this.pattern = String(pattern);
    this.options = [...String(options)].sort().join('');
  }

  toJSON() {
    return { pattern: this.pattern, options: this.options };
  }
}

/** A BSON timestamp (replication oplog time): seconds `t` and an increment `i`. */
class Timestamp {
  constructor({ t, i }) {
    for (const [name, n] of [['t', t], ['i', i]]) {
      if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
        throw new TypeError(`Timestamp ${name} must be an unsigned 32-bit integer, not ${n}`);
      }
    }
    this.t = t;
    this.i = i;
  }

  equals(other) {
    return other instanceof Timestamp && other.t === this.t && other.i === this.i;
  }

  toJSON() {
    return { t: this.t, i: this.i };
  }
}

/** Sorts before every other value. */
class MinKey {
  toJSON() {
    return { $minKey: 1 };
  }
}

/** Sorts after every other value. */
class MaxKey {
  toJSON() {
    return { $maxKey: 1 };
  }
}

/** JavaScript code stored as a value, with an optional scope document. */
class Code {
  constructor(code, scope) {
    this.code = String(code);
    if (scope !== undefined && scope !== null) this.scope = scope;
  }

  toJSON() {
    return this.scope === undefined ? { code: this.code } : { code: this.code, scope: this.scope };
  }
}

module.exports = { ObjectId, Decimal128, Binary, BSONRegExp, Timestamp, MinKey, MaxKey, Code };
