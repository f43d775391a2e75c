'use strict';
// HTTP to the sidecar: one kept-alive connection pool for the whole process, TCP or a Unix
// socket, and the retries that are safe (see `exchange` and `callAction`).

const http = require('http');
const ejson = require('./ejson');
const { MongoSidecarError, parseServerTiming } = require('./errors');

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 27080;
const DEFAULT_MAX_RETRY_WAIT_MS = 1000;

// Shared by every client in the process: a handler keeps reusing the same few connections
// across invocations. Idle sockets are unref'd by the agent, so they never hold the process.
// The agent also drops an idle socket as soon as the sidecar closes it.
const agent = new http.Agent({ keepAlive: true, maxSockets: 8, maxFreeSockets: 8, scheduling: 'lifo' });

// Actions that change data (aggregate too: a pipeline may end in $out or $merge). Such a request
// is never sent twice, and when it fails after it may have reached the sidecar, its outcome is
// unknown: the error says so (`outcome: 'unknown'`).
const WRITE_ACTIONS = new Set([
  'insertOne', 'insertMany', 'updateOne', 'updateMany', 'replaceOne', 'deleteOne', 'deleteMany',
  'findOneAndUpdate', 'findOneAndReplace', 'findOneAndDelete', 'bulkWrite', 'aggregate',
]);

// What a request reports when it went out on a kept-alive connection the other end had just
// closed (the sidecar restarted, or drained at SHUTDOWN; it never closes an idle connection
// itself) before any answer.
const STALE_CONNECTION_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/** Where the sidecar listens: an explicit option, else the environment, else 127.0.0.1:27080. */
function resolveTarget(options) {
  const socketPath = options.socketPath || process.env.MONGO_SIDECAR_SOCKET;
  if (socketPath) return { socketPath };
  const host = options.host || process.env.MONGO_SIDECAR_HOST || DEFAULT_HOST;
  const port = Number(options.port || process.env.MONGO_SIDECAR_PORT || DEFAULT_PORT);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new TypeError(`mongo-sidecar port must be 1-65535, not ${options.port || process.env.MONGO_SIDECAR_PORT}`);
  }
  return { host, port };
}

function describeTarget(target) {
  return target.socketPath ? `unix:${target.socketPath}` : `${target.host}:${target.port}`;
}

/** One request and its whole response body. Rejects with the error annotated with whether the
 * socket was a reused one and whether any response had started. */
function exchangeOnce(target, method, path, headers, payload, timeoutMs) {
  return new Promise((resolve, reject) => {
    let responded = false;
    let timer;
    const req = http.request({
      host: target.host, port: target.port, socketPath: target.socketPath, agent, method, path, headers,
    });
    const fail = (err) => {
      clearTimeout(timer);
      err.reusedSocket = req.reusedSocket;
      err.responded = responded;
      reject(err);
    };
    req.on('response', (res) => {
      responded = true;
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('error', fail);
      res.on('end', () => {
        clearTimeout(timer);
        const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
        resolve({ status: res.statusCode, headers: res.headers, text: body.toString() });
      });
    });
    req.on('error', fail);
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        const err = new Error(`no answer within ${timeoutMs} ms`);
        err.code = 'ClientTimeout';
        req.destroy(err);
      }, timeoutMs);
    }
    req.end(payload);
  });
}

/** The reason a request failed, as the error message says it after the sidecar's address. */
function describeFailure(err) {
  if (err.responded) return `the connection broke during the answer (${err.message})`;
  if (STALE_CONNECTION_CODES.has(err.code)) return `the connection was closed before an answer (${err.message})`;
  return err.message;
}

/**
 * A request. Should the sidecar close a pooled connection just as a read goes out on it, before
 * any answer, the read is sent again; each such failure removes one dead socket from the pool,
 * so this ends, at the latest on a fresh connection, whose errors are final. A write is never
 * sent again: once it may have reached the sidecar, its failure carries `outcome: 'unknown'`.
 */
async function exchange(target, method, path, headers, payload, timeoutMs, write) {
  for (;;) {
    try {
      return await exchangeOnce(target, method, path, headers, payload, timeoutMs);
    } catch (err) {
      const stale = err.reusedSocket && !err.responded && STALE_CONNECTION_CODES.has(err.code);
      if (!stale || write) {
        // A connect error (refused, no such socket) means nothing was sent.
        const outcome = write && err.syscall !== 'connect' ? 'unknown' : undefined;
        let message = `mongo-sidecar at ${describeTarget(target)}: ${describeFailure(err)}`;
        if (outcome) message += ' (the write may or may not have been applied: its outcome is unknown)';
        const code = err.code === 'ClientTimeout' ? 'ClientTimeout' : 'SidecarUnreachable';
        throw new MongoSidecarError(message, { code, outcome, cause: err });
      }
    }
  }
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Retry-After in milliseconds, at most `capMs`; the cap when it is absent or not seconds. */
function retryDelayMs(header, capMs) {
  const seconds = Number(header);
  if (header === undefined || header === '' || !Number.isFinite(seconds) || seconds < 0) return capMs;
  return Math.min(seconds * 1000, capMs);
}

function tokenFor(settings) {
  // Read at each call: a token set after the client was made (or rotated) still applies.
  return settings.token || process.env.MONGO_SIDECAR_TOKEN || process.env.AWS_SESSION_TOKEN;
}

const actionPaths = new Map();

function pathOf(action) {
  let path = actionPaths.get(action);
  if (path === undefined) {
    path = `/action/${encodeURIComponent(action)}`;
    actionPaths.set(action, path);
  }
  return path;
}

/**
 * POST /action/{action} with `body`; resolves to the decoded response body. A 503 Warming (the
 * sidecar's database connection is still being made; nothing was run) is retried once, after
 * Retry-After capped at `settings.maxRetryWaitMs`; every other error becomes a MongoSidecarError.
 */
async function callAction(settings, action, body) {
  const payload = ejson.stringify(body);
  const headers = [
    'Host', settings.target.socketPath ? 'localhost' : `${settings.target.host}:${settings.target.port}`,
    'Content-Type', 'application/json',
    'Accept', 'application/ejson',
    'Content-Length', String(Buffer.byteLength(payload)),
  ];
  const token = tokenFor(settings);
  if (token) headers.push('apiKey', token);
  // The invocation this call belongs to, as the runtime names it: the sidecar then uses its
  // deadline even when this call arrives before the sidecar has seen the invocation start.
  const trace = process.env._X_AMZN_TRACE_ID;
  if (trace) headers.push('X-Amzn-Trace-Id', trace);
  const path = pathOf(action);
  const write = WRITE_ACTIONS.has(action);
  const send = () => exchange(settings.target, 'POST', path, headers, payload, settings.timeoutMs, write);

  let res = await send();
  if (res.status === 503) {
    const error = parseJson(res.text);
    if (error && error.error_code === 'Warming') {
      const delay = retryDelayMs(res.headers['retry-after'], settings.maxRetryWaitMs);
      await new Promise((resolve) => setTimeout(resolve, delay));
      res = await send();
    }
  }
  const timingHeader = res.headers['server-timing'];
  if (timingHeader !== undefined && settings.onServerTiming) {
    settings.onServerTiming(parseServerTiming(timingHeader), { action, status: res.status });
  }
  if (res.status === 200) return ejson.parse(res.text);
  const retryAfter = res.headers['retry-after'] === undefined ? undefined : Number(res.headers['retry-after']);
  throw MongoSidecarError.fromResponse(action, res.status, parseJson(res.text), retryAfter,
    parseServerTiming(timingHeader));
}

/** GET /health: the sidecar's readiness body (status "ready", "warming" or "unavailable"). */
async function health(settings) {
  const res = await exchange(settings.target, 'GET', '/health', {}, undefined, settings.timeoutMs, false);
  return parseJson(res.text);
}

module.exports = {
  agent, callAction, health, resolveTarget, WRITE_ACTIONS, DEFAULT_MAX_RETRY_WAIT_MS,
};
