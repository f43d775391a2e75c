"""Test support: the real sidecar binary against the FerretDB that ``harness.ferretdb run``
started, a counting TCP proxy, and small misbehaving servers for the retry tests.

The project's harness (tests/harness) has helpers like these, but it needs Python 3.11; this suite
must also run on 3.9, the oldest Python Lambda runtime the client supports.
"""

import ctypes
import http.client
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]


def sidecar_binary():
    explicit = os.environ.get("MONGO_SIDECAR_BIN")
    if explicit:
        return explicit
    for profile in ("release", "debug"):
        candidate = REPO_ROOT / "target" / profile / "mongo-sidecar"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("no sidecar binary: build it (cargo build -p mongo-sidecar) or set MONGO_SIDECAR_BIN")


def database_uri():
    uri = os.environ.get("MONGO_SIDECAR_TEST_URI")
    if not uri:
        raise RuntimeError(
            "MONGO_SIDECAR_TEST_URI is not set: run the tests under the FerretDB wrapper, "
            "PYTHONPATH=tests .tools/venv/bin/python -m harness.ferretdb run -- "
            ".tools/venv/bin/python -m pytest layer/clients/python/tests")
    return uri


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """preexec_fn: the sidecar gets SIGTERM if the test process dies first."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _health_status(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


class Sidecar:
    """The sidecar with a token, on a free port and a Unix socket in a temporary directory."""

    def __init__(self, **extra_env):
        self.port = free_port()
        self._dir = tempfile.mkdtemp(prefix="mongo-sidecar-py-")
        self.socket_path = os.path.join(self._dir, "sidecar.sock")
        self.token = secrets.token_hex(16)
        self.log_path = os.path.join(self._dir, "sidecar.log")
        env = {k: v for k, v in os.environ.items()
               if k not in ("AWS_LAMBDA_RUNTIME_API", "MONGO_SIDECAR_AUTH", "AWS_SESSION_TOKEN")}
        env.update(MONGODB_URI=database_uri(), MONGO_SIDECAR_PORT=str(self.port),
                   MONGO_SIDECAR_SOCKET=self.socket_path, MONGO_SIDECAR_TOKEN=self.token)
        env.update(extra_env)
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen([sidecar_binary()], env=env, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=log, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 20
        while _health_status(self.port) != 200:
            if self._proc.poll() is not None:
                raise RuntimeError(f"the sidecar exited with {self._proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self._proc.kill()
                raise RuntimeError(f"the sidecar was not ready after 20 s:\n{self.log()}")
            time.sleep(0.02)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def kill(self):
        """SIGKILL, as Lambda does to an extension that overstays SHUTDOWN (or the OOM killer)."""
        self._proc.kill()
        self._proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def stop(self):
        """SIGTERM, then SIGKILL after 10 s; returns the exit code."""
        self._proc.send_signal(signal.SIGTERM)
        try:
            code = self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)
        return code


class _SocketServer:
    """A loopback TCP server calling ``handle(conn)`` on a thread per connection."""

    def __init__(self):
        self.connections = 0
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._open = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        raise NotImplementedError

    def close(self):
        self._closed = True
        self._listener.close()
        self.drop_connections()

    def drop_connections(self):
        """Closes every connection accepted so far, as a server closing idle connections does."""
        open_now, self._open = self._open, []
        for conn in open_now:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


class CountingProxy(_SocketServer):
    """Forwards to 127.0.0.1:target_port and counts the connections it accepts.

    ``hold()`` stops forwarding in both directions (bytes are read and kept back until
    ``release()``); ``held`` is set once bytes arrive while held. Between the sidecar and the
    database, it keeps an operation in flight inside the sidecar for as long as a test needs."""

    def __init__(self, target_port):
        self._target_port = target_port
        self._holding = threading.Event()
        self._released = threading.Event()
        self._released.set()
        self.held = threading.Event()
        super().__init__()

    def hold(self):
        self.held.clear()
        self._released.clear()
        self._holding.set()

    def release(self):
        self._holding.clear()
        self._released.set()

    def close(self):
        self.release()
        super().close()

    def handle(self, conn):
        upstream = socket.create_connection(("127.0.0.1", self._target_port))
        self._open.append(upstream)

        def pump(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    if self._holding.is_set():
                        self.held.set()
                        self._released.wait()
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        threading.Thread(target=pump, args=(upstream, conn), daemon=True).start()
        pump(conn, upstream)


def _read_requests(conn):
    """Yields once per complete HTTP/1.1 request read from ``conn`` (headers + Content-Length)."""
    pending = b""
    while True:
        try:
            data = conn.recv(65536)
        except OSError:
            return
        if not data:
            return
        pending += data
        while True:
            head_end = pending.find(b"\r\n\r\n")
            if head_end < 0:
                break
            match = re.search(rb"(?i)content-length: *(\d+)", pending[:head_end])
            end = head_end + 4 + (int(match.group(1)) if match else 0)
            if len(pending) < end:
                break
            pending = pending[end:]
            yield


def _reset(conn):
    # SO_LINGER 0: close with a reset, not a graceful FIN.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class DroppingServer(_SocketServer):
    """Answers the first request on each connection and resets the connection when a second
    arrives on it, without answering: a sidecar that closes a kept-alive connection just as a
    request goes out on it (it stopped, or restarted). ``drop_first``: reset at the first request instead. ``cut_second``: start
    answering the second request, then close mid-body ("close") or reset the connection ("reset")."""

    def __init__(self, drop_first=False, cut_second=None):
        self.requests = 0
        self._drop_first = drop_first
        self._cut_second = cut_second
        super().__init__()

    def handle(self, conn):
        for seen, _ in enumerate(_read_requests(conn), start=1):
            self.requests += 1
            if self._cut_second and seen > 1:
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"docu')
                time.sleep(0.02)
                if self._cut_second == "reset":
                    _reset(conn)
                else:
                    conn.close()
                return
            if self._drop_first or seen > 1:
                _reset(conn)
                return
            body = b'{"document":null}'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/ejson\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)


class SilentServer(_SocketServer):
    """Accepts connections and reads, but never answers (and hangs up after 5 s, so a client
    whose timeout is broken fails the test instead of hanging it)."""

    def handle(self, conn):
        conn.settimeout(5)
        for _ in _read_requests(conn):
            pass
        conn.close()


class ScriptedServer:
    """An HTTP server answering its nth request (0-based) with ``answers[min(n, last)]``, each a
    (status, headers, body object) tuple; it keeps the last request's headers."""

    def __init__(self, answers):
        self.requests = 0
        self.last_headers = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                outer.last_headers = dict(self.headers)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers, body = answers[min(outer.requests, len(answers) - 1)]
                outer.requests += 1
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()
