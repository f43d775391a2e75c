'use strict';

/**
 * Every failure the client reports. For an answer from the sidecar: `status` is the HTTP status,
 * `code` its `error_code` (InvalidParameter, InvalidSession, DuplicateKey, Warming, ...),
 * `serverCode`/`codeName` MongoDB's own error code and name when the database refused the
 * operation, `body` the whole error body. When the sidecar could not be reached or did not
 * answer in time, `status` is 0 and `code` is `SidecarUnreachable` or `ClientTimeout`, with the
 * underlying error as `cause`.
 */
class MongoSidecarError extends Error {
  constructor(message, { status = 0, code, serverCode, codeName, body, retryAfter, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'MongoSidecarError';
    this.status = status;
    this.code = code;
    this.serverCode = serverCode;
    this.codeName = codeName;
    this.body = body;
    this.retryAfter = retryAfter;
  }

  /** From a non-200 answer; `body` is the parsed JSON body, or the raw text if it was not JSON. */
  static fromResponse(action, status, body, retryAfter) {
    const fields = body !== null && typeof body === 'object' ? body : {};
    const message = typeof fields.error === 'string' ? fields.error : `HTTP ${status}`;
    return new MongoSidecarError(`${action}: ${message}`, {
      status,
      code: typeof fields.error_code === 'string' ? fields.error_code : `HTTP${status}`,
      serverCode: typeof fields.code === 'number' ? fields.code : undefined,
      codeName: typeof fields.codeName === 'string' ? fields.codeName : undefined,
      body,
      retryAfter,
    });
  }
}

module.exports = { MongoSidecarError };
