"""The cheapest HTTP/1.1 client Python can be: prebuilt request bytes on a kept-alive socket,
one request at a time per connection (no pipelining), responses framed by Content-Length.

Used where the client must cost as little as possible, so that it does not starve the sidecar
of CPU on a 2-core machine: the sidecar's own CPU per request, and many concurrent clients.
"""

import json
import selectors
import socket
import time


class Target:
    """Where the sidecar listens: a TCP port on loopback, or a Unix socket path."""

    def __init__(self, port: int | None = None, unix_path: str | None = None):
        self.port, self.unix_path = port, unix_path

    def connect(self) -> socket.socket:
        if self.unix_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.unix_path)
        else:
            sock = socket.create_connection(("127.0.0.1", self.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def __str__(self) -> str:
        return f"unix:{self.unix_path}" if self.unix_path else f"tcp:{self.port}"


def post(path: str, body: dict, token: str, accept: str | None = None) -> bytes:
    """The bytes of one POST with a JSON body, as a client would send it."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"apiKey: {token}\r\nContent-Length: {len(payload)}\r\n"
    )
    if accept:
        head += f"Accept: {accept}\r\n"
    return (head + "\r\n").encode() + payload


def response_length(buf: bytearray) -> int | None:
    """The length of the complete response at the start of `buf`, or None if it is not all there."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        raise ValueError(f"response without Content-Length: {head[:200]!r}")
    line_end = head.find(b"\r\n", at + 2)
    length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
    total = end + 4 + length
    return total if len(buf) >= total else None


def status_of(response: bytes | bytearray) -> int:
    return int(response[9:12])


class Connection:
    """A blocking kept-alive connection: exchange(request) -> the whole response's bytes."""

    def __init__(self, target: Target):
        self.sock = target.connect()
        self.buf = bytearray()

    def exchange(self, request: bytes) -> bytes:
        self.sock.sendall(request)
        while (total := response_length(self.buf)) is None:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the sidecar closed the connection")
            self.buf += chunk
        response = bytes(self.buf[:total])
        del self.buf[:total]
        return response

    def close(self) -> None:
        self.sock.close()


def sequential(target: Target, request: bytes, count: int) -> dict:
    """`count` requests one after another on one connection; {'ok', 'other': {status: n}, 'seconds'}."""
    conn = Connection(target)
    other: dict[int, int] = {}
    ok = 0
    started = time.perf_counter()
    try:
        for _ in range(count):
            response = conn.exchange(request)
            if response[9:12] == b"200":
                ok += 1
            else:
                status = status_of(response)
                other[status] = other.get(status, 0) + 1
    finally:
        conn.close()
    return {"ok": ok, "other": other, "seconds": time.perf_counter() - started}


def concurrent(target: Target, request: bytes, connections: int, seconds: float) -> dict:
    """`connections` clients, each with one request in flight at a time, for `seconds`.

    One thread and a selector, so the clients themselves cost little CPU.
    """
    sel = selectors.DefaultSelector()
    buffers: dict[socket.socket, bytearray] = {}
    for _ in range(connections):
        sock = target.connect()
        sock.setblocking(False)
        buffers[sock] = bytearray()
        sel.register(sock, selectors.EVENT_READ)
        sock.send(request)
    ok, other = 0, {}
    started = time.perf_counter()
    deadline = started + seconds
    open_count = connections
    try:
        while open_count:
            for key, _ in sel.select(timeout=5):
                sock = key.fileobj
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the sidecar closed a connection under load")
                buf = buffers[sock]
                buf += chunk
                while (total := response_length(buf)) is not None:
                    if buf[9:12] == b"200":
                        ok += 1
                    else:
                        status = status_of(buf)
                        other[status] = other.get(status, 0) + 1
                    del buf[:total]
                    if time.perf_counter() < deadline:
                        sock.send(request)
                    else:
                        sel.unregister(sock)
                        open_count -= 1
                        break
    finally:
        sel.close()
        for sock in buffers:
            sock.close()
    return {"ok": ok, "other": other, "seconds": time.perf_counter() - started}
