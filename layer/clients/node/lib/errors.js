'use strict';

/**
 * Every failure the client reports. For an answer from the sidecar: `status` is the HTTP status,
 * `code` its `error_code` (InvalidParameter, InvalidSession, DuplicateKey, Warming,
 * WriteOutcomeUnknown, ...), `serverCode`/`codeName` MongoDB's own error code and name when the
 * database refused the operation, `body` the whole error body, `serverTiming` the answer's
 * Server-Timing as { name: milliseconds }. When the sidecar could not be reached, broke the
 * connection or did not answer in time, `status` is 0 and `code` is `SidecarUnreachable` or
 * `ClientTimeout`, with the underlying error as `cause`.
 *
 * `outcome` says what is known of a write that failed: 'unknown' (it may or may not have been
 * applied: never retried by the client), 'applied' (applied, though not acknowledged as asked),
 * or undefined (not applied, or not a write).
 */
class MongoSidecarError extends Error {
  constructor(message, {
    status = 0, code, serverCode, codeName, body, retryAfter, outcome, serverTiming, cause,
  } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'MongoSidecarError';
    this.status = status;
    this.code = code;
    this.serverCode = serverCode;
    this.codeName = codeName;
    this.body = body;
    this.retryAfter = retryAfter;
    this.outcome = outcome;
    this.serverTiming = serverTiming;
  }

  /** From a non-200 answer; `body` is the parsed JSON body, or the raw text if it was not JSON. */
  static fromResponse(action, status, body, retryAfter, serverTiming) {
    const fields = body !== null && typeof body === 'object' ? body : {};
    const message = typeof fields.error === 'string' ? fields.error : `HTTP ${status}`;
    return new MongoSidecarError(`${action}: ${message}`, {
      status,
      code: typeof fields.error_code === 'string' ? fields.error_code : `HTTP${status}`,
      serverCode: typeof fields.code === 'number' ? fields.code : undefined,
      codeName: typeof fields.codeName === 'string' ? fields.codeName : undefined,
      body,
      retryAfter,
      outcome: typeof fields.outcome === 'string' ? fields.outcome : undefined,
      serverTiming,
    });
  }
}

/**
 * `queue;dur=0.012, db;dur=0.412, total;dur=0.520` as { queue: 0.012, db: 0.412, total: 0.52 }
 * (milliseconds). Metrics without a readable `dur` are left out; undefined when there is no
 * header or nothing in it could be read.
 */
function parseServerTiming(header) {
  if (!header) return undefined;
  const timing = {};
  let found = false;
  for (const metric of String(header).split(',')) {
    const [rawName, ...params] = metric.split(';');
    const name = rawName.trim();
    if (!name) continue;
    for (const param of params) {
      const at = param.indexOf('=');
      if (at < 0 || param.slice(0, at).trim().toLowerCase() !== 'dur') continue;
      const text = param.slice(at + 1).trim().replace(/^"|"$/g, '');
      const ms = text === '' ? NaN : Number(text);
      if (Number.isFinite(ms)) {
        timing[name] = ms;
        found = true;
      }
      break;
    }
  }
  return found ? timing : undefined;
}

module.exports = { MongoSidecarError, parseServerTiming };
