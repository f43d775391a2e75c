'use strict';
// Test support: small local servers of the tests' own that misbehave on purpose (the real
// sidecar cannot be made to do these on cue), and a helper to catch a rejection.

const assert = require('node:assert/strict');
const http = require('http');
const net = require('net');

/** An HTTP server that answers the nth request (0-based) with `answers[min(n, last)]`; it keeps
 * the last request's headers as `lastHeaders`. */
async function scriptedServer(answers) {
  const server = http.createServer((req, res) => {
    server.lastHeaders = req.headers;
    req.resume();
    req.on('end', () => {
      const { status, body, headers = {} } = answers[Math.min(server.requests, answers.length - 1)];
      server.requests += 1;
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    });
  });
  server.requests = 0;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/**
 * A raw HTTP/1.1 server that answers the first request on each connection and resets the
 * connection when a second arrives on it, without answering: a sidecar that closes a kept-alive
 * connection just as a request goes out on it (it stopped, or restarted). `dropFirst`: reset at the first request
 * instead. `cutSecond`: start answering the second request, then close mid-body.
 */
async function droppingServer({ dropFirst = false, cutSecond = false } = {}) {
  const stats = { connections: 0, requests: 0 };
  const sockets = new Set();
  const server = net.createServer((socket) => {
    stats.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let seen = 0;
    let pending = '';
    socket.on('data', (chunk) => {
      pending += chunk;
      for (;;) {
        const headEnd = pending.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const length = Number((/content-length: *(\d+)/i.exec(pending.slice(0, headEnd)) || [0, 0])[1]);
        if (pending.length < headEnd + 4 + length) return;
        pending = pending.slice(headEnd + 4 + length);
        stats.requests += 1;
        seen += 1;
        if (cutSecond && seen > 1) {
          socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/ejson\r\nContent-Length: 100\r\n\r\n{"docu');
          setTimeout(() => socket.destroy(), 20);
          return;
        }
        if (dropFirst || seen > 1) {
          socket.resetAndDestroy();
          return;
        }
        const body = '{"document":null}';
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/ejson\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.stats = stats;
  server.shutdown = () => {
    for (const s of sockets) s.destroy();
    server.close();
  };
  return server;
}

async function rejection(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('expected the call to fail');
}

module.exports = { scriptedServer, droppingServer, rejection };
