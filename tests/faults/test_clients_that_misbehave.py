"""Clients that hold what they took: a reader that stops reading a streamed answer gives its
concurrency slot back after MONGO_SIDECAR_WRITE_TIMEOUT_MS without progress, and idle keep-alive
connections leaked by a client (a new agent per invocation) never lock out new connections: at
MONGO_SIDECAR_MAX_CONNECTIONS the oldest idle one is closed to make room."""

import json
import socket
import time

from support import action, health, wait_until


def raw_request(port: int, path: str, body: dict | None = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    payload = json.dumps(body).encode() if body is not None else b""
    method = "POST" if body is not None else "GET"
    head = (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n").encode()
    sock.sendall(head + payload)
    return sock


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def test_a_client_that_stops_reading_a_stream_gives_its_slot_back(mongo, database, ferretdb, start_sidecar):
    mongo[database]["big"].insert_many([{"i": i, "pad": "z" * 900} for i in range(6000)])  # ~6 MB
    sidecar = start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_MAX_CONCURRENCY": "1",
                                               "MONGO_SIDECAR_WRITE_TIMEOUT_MS": "500"})
    stuck = raw_request(sidecar.port, "/action/find", {"database": database, "collection": "big"})
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    assert stuck.recv(1024).startswith(b"HTTP/1.1 200")  # the stream began; now it is never read
    started = time.monotonic()

    def served():
        status, _, body, _ = action(sidecar, "countDocuments", {"database": database, "collection": "big"})
        return status == 200

    wait_until(served, 10, interval=0.1, what="the slot held by the stalled reader to be given back")
    freed_after = time.monotonic() - started
    assert freed_after < 5, f"slot given back after {freed_after:.1f} s"
    stuck.close()


def test_at_the_connection_cap_the_oldest_idle_connection_makes_room(ferretdb, start_sidecar):
    sidecar = start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_MAX_CONNECTIONS": "4"})
    idle = []
    for _ in range(4):
        sock = raw_request(sidecar.port, "/health")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        idle.append(sock)  # kept alive and idle, as a leaked agent leaves them
        time.sleep(0.02)

    newcomer = raw_request(sidecar.port, "/health")
    answer = read_response(newcomer)

    assert answer.startswith(b"HTTP/1.1 200"), f"the new connection was refused: {answer!r}"
    idle[0].settimeout(2)
    assert idle[0].recv(1) == b"", "the oldest idle connection is still open"
    for sock in idle[1:]:  # the others still work
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
    assert health(sidecar)[0] == 200
    for sock in idle + [newcomer]:
        sock.close()
