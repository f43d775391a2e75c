"""HTTP to the sidecar with ``http.client``: kept-alive connections, TCP or a Unix socket, and the
retries that are safe (see ``Transport.exchange`` and ``Transport.call_action``).
"""

import http.client
import json
import os
import select
import socket
import threading
import time
import urllib.parse

from . import ejson
from .errors import MongoSidecarError, parse_server_timing

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 27080
DEFAULT_MAX_RETRY_WAIT = 1.0  # seconds
MAX_IDLE_CONNECTIONS = 8

#: Actions that change data (aggregate too: a pipeline may end in $out or $merge). Such a request
#: is never sent twice, and when it fails after it may have reached the sidecar, its outcome is
#: unknown: the error says so (``outcome == "unknown"``).
WRITE_ACTIONS = frozenset({
    "insertOne", "insertMany", "updateOne", "updateMany", "replaceOne", "deleteOne", "deleteMany",
    "findOneAndUpdate", "findOneAndReplace", "findOneAndDelete", "bulkWrite", "aggregate",
})

# What a request reports when it went out on a kept-alive connection the other end had closed
# (the sidecar restarted, or drained at SHUTDOWN; it never closes an idle connection itself).
# (RemoteDisconnected, an empty answer, is a ConnectionResetError.)
_STALE_CONNECTION = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class _Connection(http.client.HTTPConnection):
    """An HTTPConnection that writes a request's head and body with one send, so the sidecar
    reads the whole request at once (http.client sends them apart: two system calls on each
    side, and two wake-ups of the sidecar)."""

    body = None

    def send(self, data):
        if self.body is not None:
            data, self.body = data + self.body, None
        super().send(data)


class _UnixConnection(_Connection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _closed_by_peer(conn):
    """Whether an idle pooled connection has something to read: the peer's FIN or reset (an idle
    connection gets no data), so it must not carry a request."""
    if conn.sock is None:
        return True
    try:
        readable, _, _ = select.select((conn.sock,), (), (), 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _retry_delay(header, cap):
    """Retry-After in seconds, at most ``cap``; the cap when it is absent or not a number."""
    try:
        seconds = float(header)
    except (TypeError, ValueError):
        return cap
    return min(max(seconds, 0.0), cap)


def _parse_json(data):
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


class _Answer:
    __slots__ = ("status", "retry_after", "server_timing", "data")

    def __init__(self, response, data):
        self.status = response.status
        self.retry_after = response.getheader("Retry-After")
        self.server_timing = response.getheader("Server-Timing")
        self.data = data


class Transport:
    """A small pool of kept-alive connections to one sidecar; safe to share between threads."""

    def __init__(self, host=None, port=None, socket_path=None, token=None, timeout=None,
                 max_retry_wait=DEFAULT_MAX_RETRY_WAIT):
        self.socket_path = socket_path or os.environ.get("MONGO_SIDECAR_SOCKET") or None
        self.host = host or os.environ.get("MONGO_SIDECAR_HOST") or DEFAULT_HOST
        raw_port = port or os.environ.get("MONGO_SIDECAR_PORT") or DEFAULT_PORT
        try:
            self.port = int(raw_port)
        except ValueError:
            self.port = 0
        if not 0 < self.port < 65536:
            raise ValueError(f"mongo-sidecar port must be 1-65535, not {raw_port!r}")
        self.token = token
        self.timeout = timeout
        self.max_retry_wait = max_retry_wait
        self._idle = []
        self._lock = threading.Lock()
        self._paths = {}
        self._host_header = "localhost" if self.socket_path else f"{self.host}:{self.port}"
        self._last = threading.local()

    def describe(self):
        return f"unix:{self.socket_path}" if self.socket_path else f"{self.host}:{self.port}"

    @property
    def last_server_timing(self):
        """The Server-Timing of the last answer this thread received, as {name: milliseconds}."""
        return parse_server_timing(getattr(self._last, "server_timing", None))

    def _connect(self):
        if self.socket_path:
            return _UnixConnection(self.socket_path, self.timeout)
        return _Connection(self.host, self.port, timeout=self.timeout)

    def close(self):
        """Closes the idle connections; the next call opens a new one."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _checkout(self):
        """(connection, reused): a pooled connection the sidecar has not closed, else a new one."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect(), False
            if not _closed_by_peer(conn):
                return conn, True
            conn.close()

    def _checkin(self, conn, response):
        if not response.will_close:
            with self._lock:
                if len(self._idle) < MAX_IDLE_CONNECTIONS:
                    self._idle.append(conn)
                    return
        conn.close()

    def exchange(self, method, path, body, headers, write=False):
        """One request; returns its _Answer.

        A pooled connection the sidecar closed while idle is discarded before use. Should the
        sidecar close one just as a request goes out, a read is sent again (on a new connection at
        the latest, whose errors are final); a write never is: once it may have reached the
        sidecar, its failure carries ``outcome == "unknown"``.
        """
        while True:
            conn, reused = self._checkout()
            if conn.sock is None:
                try:
                    conn.connect()
                except socket.timeout as err:
                    conn.close()
                    raise self._failure(f"no connection within {self.timeout} s", "ClientTimeout", None) from err
                except OSError as err:
                    conn.close()
                    raise self._failure(err, "SidecarUnreachable", None) from err
            outcome = "unknown" if write else None
            responded = False
            try:
                conn.body = body
                conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    conn.putheader(name, value)
                conn.endheaders()
                response = conn.getresponse()
                responded = True
                data = response.read()
            except socket.timeout as err:
                conn.close()
                raise self._failure(f"no answer within {self.timeout} s", "ClientTimeout", outcome) from err
            except _STALE_CONNECTION as err:
                conn.close()
                if reused and not responded and not write:
                    continue
                raise self._failure(_describe_disconnect(err, responded), "SidecarUnreachable", outcome) from err
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                raise self._failure(_describe_disconnect(err, responded), "SidecarUnreachable", outcome) from err
            except BaseException:
                conn.close()
                raise
            self._checkin(conn, response)
            return _Answer(response, data)

    def _failure(self, reason, code, outcome):
        message = f"mongo-sidecar at {self.describe()}: {reason}"
        if outcome == "unknown":
            message += " (the write may or may not have been applied: its outcome is unknown)"
        return MongoSidecarError(message, code=code, outcome=outcome)

    def _token(self):
        # Read at each call: a token set after the client was made (or rotated) still applies.
        return self.token or os.environ.get("MONGO_SIDECAR_TOKEN") or os.environ.get("AWS_SESSION_TOKEN")

    def _path(self, action):
        path = self._paths.get(action)
        if path is None:
            path = self._paths[action] = "/action/" + urllib.parse.quote(action, safe="")
        return path

    def call_action(self, action, body):
        """POST /action/{action}; returns the decoded response body.

        A 503 Warming (the sidecar's database connection is still being made; nothing was run)
        is retried once, after Retry-After capped at ``max_retry_wait`` seconds; every other
        failure raises MongoSidecarError.
        """
        payload = ejson.dumps(body).encode("utf-8")
        headers = [("Host", self._host_header), ("Content-Type", "application/json"),
                   ("Accept", "application/ejson; mode=relaxed"), ("Content-Length", str(len(payload)))]
        token = self._token()
        if token:
            headers.append(("apiKey", token))
        # The invocation this call belongs to, as the runtime names it: the sidecar then uses its
        # deadline even when this call arrives before the sidecar has seen the invocation start.
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        if trace:
            headers.append(("X-Amzn-Trace-Id", trace))
        path = self._path(action)
        write = action in WRITE_ACTIONS
        answer = self.exchange("POST", path, payload, headers, write)
        if answer.status == 503:
            error = _parse_json(answer.data)
            if isinstance(error, dict) and error.get("error_code") == "Warming":
                time.sleep(_retry_delay(answer.retry_after, self.max_retry_wait))
                answer = self.exchange("POST", path, payload, headers, write)
        self._last.server_timing = answer.server_timing
        if answer.status == 200:
            return ejson.loads(answer.data)
        seconds = None
        if answer.retry_after is not None:
            try:
                seconds = int(answer.retry_after)
            except ValueError:
                pass
        raise MongoSidecarError.from_response(action, answer.status, _parse_json(answer.data), seconds,
                                              parse_server_timing(answer.server_timing))

    def health(self):
        """GET /health: the sidecar's readiness body (``status`` "ready", "warming" or "unavailable")."""
        answer = self.exchange("GET", "/health", None, [("Host", self._host_header)])
        return _parse_json(answer.data)


def _describe_disconnect(err, responded):
    if responded:
        return f"the connection broke during the answer: {err}"
    if isinstance(err, _STALE_CONNECTION):
        return f"the connection was closed before an answer: {err}"
    return str(err)
