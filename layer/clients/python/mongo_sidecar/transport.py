"""HTTP to the sidecar with ``http.client``: kept-alive connections, TCP or a Unix socket, and the
two retries that are always safe (see ``Transport.exchange`` and ``Transport.call_action``).
"""

import http.client
import json
import os
import socket
import threading
import time
import urllib.parse

from . import ejson
from .errors import MongoSidecarError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 27080
DEFAULT_MAX_RETRY_WAIT = 1.0  # seconds
MAX_IDLE_CONNECTIONS = 8

# What a request reports when it went out on a kept-alive connection already closed at the other
# end (the sidecar restarted, or drained at SHUTDOWN; it never closes an idle connection itself).
# The request never reached the sidecar, so it is safe to send again. (RemoteDisconnected, an
# empty answer, is a ConnectionResetError.)
_STALE_CONNECTION = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class _UnixHTTPConnection(http.client.HTTPConnection):
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

    def describe(self):
        return f"unix:{self.socket_path}" if self.socket_path else f"{self.host}:{self.port}"

    def _connect(self):
        if self.socket_path:
            return _UnixHTTPConnection(self.socket_path, self.timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def close(self):
        """Closes the idle connections; the next call opens a new one."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def exchange(self, method, path, body, headers):
        """One request; returns (status, Retry-After header, body bytes).

        A request that went out on a pooled connection the sidecar had closed is sent again.
        Each such failure drops one dead connection, so this ends, at the latest on a new
        connection, whose errors are final.
        """
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            reused = conn is not None
            if conn is None:
                conn = self._connect()
            responded = False
            try:
                conn.request(method, path, body, headers)
                response = conn.getresponse()
                responded = True
                data = response.read()
            except socket.timeout as err:
                conn.close()
                raise MongoSidecarError(
                    f"mongo-sidecar at {self.describe()}: no answer within {self.timeout} s",
                    code="ClientTimeout") from err
            except _STALE_CONNECTION as err:
                conn.close()
                if reused and not responded:
                    continue
                raise self._unreachable(err) from err
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                raise self._unreachable(err) from err
            except BaseException:
                conn.close()
                raise
            if response.will_close:
                conn.close()
            else:
                with self._lock:
                    if len(self._idle) < MAX_IDLE_CONNECTIONS:
                        self._idle.append(conn)
                        conn = None
                if conn is not None:
                    conn.close()
            return response.status, response.getheader("Retry-After"), data

    def _unreachable(self, err):
        return MongoSidecarError(f"mongo-sidecar at {self.describe()}: {err}", code="SidecarUnreachable")

    def _token(self):
        # Read at each call: a token set after the client was made (or rotated) still applies.
        return self.token or os.environ.get("MONGO_SIDECAR_TOKEN") or os.environ.get("AWS_SESSION_TOKEN")

    def call_action(self, action, body):
        """POST /action/{action}; returns the decoded response body.

        A 503 Warming (the sidecar's database connection is still being made) is retried once,
        after Retry-After capped at ``max_retry_wait`` seconds; every other failure raises
        MongoSidecarError.
        """
        payload = ejson.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/ejson"}
        token = self._token()
        if token:
            headers["apiKey"] = token
        path = "/action/" + urllib.parse.quote(action, safe="")
        status, retry_after, data = self.exchange("POST", path, payload, headers)
        if status == 503:
            error = _parse_json(data)
            if isinstance(error, dict) and error.get("error_code") == "Warming":
                time.sleep(_retry_delay(retry_after, self.max_retry_wait))
                status, retry_after, data = self.exchange("POST", path, payload, headers)
        if status == 200:
            return ejson.loads(data)
        seconds = None
        if retry_after is not None:
            try:
                seconds = int(retry_after)
            except ValueError:
                pass
        raise MongoSidecarError.from_response(action, status, _parse_json(data), seconds)

    def health(self):
        """GET /health: the sidecar's readiness body (``status`` "ready", "warming" or "unavailable")."""
        _, _, data = self.exchange("GET", "/health", None, {})
        return _parse_json(data)
