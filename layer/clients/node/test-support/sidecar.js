'use strict';
// Test support (kept outside test/, because `node --test <dir>` runs every .js file under it):
// the real sidecar binary on a free port against the FerretDB that `harness.ferretdb run`
// started, a counting TCP proxy, and environment helpers.

const { spawn } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');

const REPO_ROOT = path.resolve(__dirname, '../../../..');

function sidecarBinary() {
  if (process.env.MONGO_SIDECAR_BIN) return process.env.MONGO_SIDECAR_BIN;
  for (const profile of ['release', 'debug']) {
    const candidate = path.join(REPO_ROOT, 'target', profile, 'mongo-sidecar');
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error('no sidecar binary: build it (cargo build -p mongo-sidecar) or set MONGO_SIDECAR_BIN');
}

function databaseUri() {
  const uri = process.env.MONGO_SIDECAR_TEST_URI;
  if (!uri) {
    throw new Error(
      'MONGO_SIDECAR_TEST_URI is not set: run the tests under the FerretDB wrapper, '
      + 'PYTHONPATH=tests .tools/venv/bin/python -m harness.ferretdb run -- node --test layer/clients/node/test/',
    );
  }
  return uri;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function getHealth(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts the sidecar with a token, on a free port and a Unix socket in a temporary directory,
 * and waits until /health answers 200. `stop()` sends SIGTERM and resolves to the exit code.
 */
async function startSidecar(extraEnv = {}) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mongo-sidecar-node-'));
  const socketPath = path.join(dir, 'sidecar.sock');
  const token = crypto.randomBytes(16).toString('hex');
  const env = { ...process.env };
  for (const name of ['AWS_LAMBDA_RUNTIME_API', 'MONGO_SIDECAR_AUTH', 'AWS_SESSION_TOKEN']) delete env[name];
  Object.assign(env, {
    MONGODB_URI: databaseUri(),
    MONGO_SIDECAR_PORT: String(port),
    MONGO_SIDECAR_SOCKET: socketPath,
    MONGO_SIDECAR_TOKEN: token,
    ...extraEnv,
  });
  const proc = spawn(sidecarBinary(), [], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (chunk) => { log += chunk; });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal)));
  // If the test process dies first, do not leave the sidecar behind.
  const killOnExit = () => proc.kill('SIGKILL');
  process.once('exit', killOnExit);

  const deadline = Date.now() + 20000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the sidecar exited with ${proc.exitCode}:\n${log}`);
    if (await getHealth(port) === 200) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`the sidecar was not ready after 20 s:\n${log}`);
    }
    await sleep(20);
  }

  return {
    port,
    socketPath,
    token,
    log: () => log,
    /** SIGKILL, as Lambda does to an extension that overstays SHUTDOWN (or the OOM killer). */
    async kill() {
      process.removeListener('exit', killOnExit);
      proc.kill('SIGKILL');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
    async stop() {
      process.removeListener('exit', killOnExit);
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
      const code = await exited;
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/**
 * A TCP proxy to 127.0.0.1:targetPort that counts the connections it accepts. `hold()` stops
 * forwarding in both directions (bytes are kept back, in order, until `release()`);
 * `waitHeld(ms)` resolves to true once bytes arrived while held. Between the sidecar and the
 * database, it keeps an operation in flight inside the sidecar for as long as a test needs.
 */
async function startCountingProxy(targetPort) {
  const sockets = new Set();
  const proxy = { port: 0, connections: 0 };
  let holding = false;
  let held = false;
  const keptBack = [];
  const forward = (from, to) => {
    from.on('data', (chunk) => {
      if (holding) {
        held = true;
        keptBack.push([to, chunk]);
      } else {
        to.write(chunk);
      }
    });
    from.on('end', () => to.end());
  };
  const server = net.createServer((client) => {
    proxy.connections += 1;
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = server.address().port;
  // Closes every connection so far, as a server closing idle connections does.
  proxy.dropConnections = () => {
    for (const s of sockets) s.destroy();
  };
  proxy.hold = () => {
    holding = true;
    held = false;
  };
  proxy.release = () => {
    holding = false;
    for (const [to, chunk] of keptBack.splice(0)) if (!to.destroyed) to.write(chunk);
  };
  proxy.waitHeld = async (ms) => {
    const deadline = Date.now() + ms;
    while (!held && Date.now() < deadline) await sleep(5);
    return held;
  };
  proxy.close = () => new Promise((resolve) => {
    proxy.release();
    proxy.dropConnections();
    server.close(resolve);
  });
  return proxy;
}

const TOKEN_VARS = ['MONGO_SIDECAR_TOKEN', 'AWS_SESSION_TOKEN', 'MONGO_SIDECAR_SOCKET',
  'MONGO_SIDECAR_HOST', 'MONGO_SIDECAR_PORT'];

/**
 * Runs `fn` with these environment variables set (undefined: unset) and the client's other
 * variables unset, then restores them all.
 */
async function withEnv(vars, fn) {
  const names = new Set([...TOKEN_VARS, ...Object.keys(vars)]);
  const saved = {};
  for (const name of names) {
    saved[name] = process.env[name];
    if (vars[name] === undefined) delete process.env[name];
    else process.env[name] = vars[name];
  }
  try {
    return await fn();
  } finally {
    for (const name of names) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  }
}

module.exports = {
  startSidecar, startCountingProxy, withEnv, freePort, sleep, databaseUri,
};
