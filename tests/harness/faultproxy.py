"""A TCP proxy between the sidecar and the database that injects the faults real networks have.

    with FaultProxy(db.port) as proxy:
        sidecar uses proxy.uri
        proxy.delay_replies("insert", 1.5)      # the server answers inserts 1.5 s late
        proxy.drop_after_request("update")      # the update reaches the server; its answer never comes back
        proxy.amend_replies("update", {"writeConcernError": {...}})  # the server's answer, with fields added
        proxy.stall()                           # nothing gets through any more, in either direction
        proxy.commands                          # every command the sidecar sent, decoded

It speaks just enough of the MongoDB wire protocol to find each request's command name (OP_MSG's
body section, or a legacy OP_QUERY) and to match a reply to its request (`responseTo`); everything
else is forwarded byte for byte. The server behind it is real (FerretDB): a delayed write is still
applied, a dropped answer belongs to a write that happened, which is exactly what a sidecar must
report honestly.
"""

import socket
import struct
import threading
import time
from dataclasses import KW_ONLY, dataclass, field

import bson

from .procs import free_port

_OP_QUERY = 2004
_OP_MSG = 2013


@dataclass
class Command:
    name: str
    body: dict
    request_id: int
    connection: int


@dataclass
class _Rule:
    command: str
    action: str  # "delay", "drop" or "amend"
    _: KW_ONLY
    seconds: float = 0.0
    fields: dict = field(default_factory=dict)
    times: int | None = None  # None: every time


@dataclass
class _Link:
    number: int
    client: socket.socket
    server: socket.socket
    #: requestID -> the rule that applies to its reply
    pending: dict[int, _Rule] = field(default_factory=dict)


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _read_message(sock: socket.socket) -> bytes | None:
    header = _read_exact(sock, 16)
    if header is None:
        return None
    length = struct.unpack_from("<i", header)[0]
    rest = _read_exact(sock, length - 16)
    return None if rest is None else header + rest


def _decode_command(message: bytes) -> tuple[str, dict] | None:
    op_code = struct.unpack_from("<i", message, 12)[0]
    try:
        if op_code == _OP_MSG and message[20] == 0:  # flagBits, then a kind-0 (body) section
            body = bson.decode(message[21:21 + struct.unpack_from("<i", message, 21)[0]])
        elif op_code == _OP_QUERY:
            name_end = message.index(b"\0", 20)
            start = name_end + 1 + 8  # numberToSkip, numberToReturn
            body = bson.decode(message[start:start + struct.unpack_from("<i", message, start)[0]])
        else:
            return None
    except (ValueError, IndexError, bson.errors.BSONError):
        return None
    return (next(iter(body), ""), body)


def _amended(message: bytes, fields: dict) -> bytes:
    """An OP_MSG reply whose body section has `fields` added; other sections kept as they were."""
    flags = struct.unpack_from("<I", message, 16)[0]
    if struct.unpack_from("<i", message, 12)[0] != _OP_MSG or flags & 1 or message[20] != 0:
        raise ValueError("only an OP_MSG reply without a checksum, body first, can be amended")
    body_length = struct.unpack_from("<i", message, 21)[0]
    body = bson.encode(bson.decode(message[21:21 + body_length]) | fields)
    rest = message[16:21] + body + message[21 + body_length:]
    return struct.pack("<i", 16 + len(rest)) + message[4:16] + rest


class FaultProxy:
    """A proxy on a free loopback port in front of 127.0.0.1:`upstream_port`."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.uri = f"mongodb://127.0.0.1:{self.port}/?directConnection=true"
        self.commands: list[Command] = []
        self._rules: list[_Rule] = []
        self._stalled = threading.Event()
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._closed = False
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._threads: list[threading.Thread] = []

    # -- faults ------------------------------------------------------------------------------

    def delay_replies(self, command: str, seconds: float, times: int | None = None) -> None:
        """Hold the server's reply to each `command` for `seconds` (the first `times` only)."""
        with self._lock:
            self._rules.append(_Rule(command, "delay", seconds=seconds, times=times))

    def drop_after_request(self, command: str, times: int | None = 1) -> None:
        """Forward `command` to the server, then close the sidecar's connection before the reply."""
        with self._lock:
            self._rules.append(_Rule(command, "drop", times=times))

    def amend_replies(self, command: str, fields: dict, times: int | None = 1) -> None:
        """Add `fields` to the server's reply to `command` (the request is applied as sent): what a
        replica set answers when a write was applied but its write concern was not met, for one."""
        with self._lock:
            self._rules.append(_Rule(command, "amend", fields=fields, times=times))

    def stall(self) -> None:
        """From now on nothing is forwarded and new connections hang: a dead network path."""
        self._stalled.set()

    def heal(self) -> None:
        """Remove every fault; stalled connections are closed (as a network timeout would)."""
        with self._lock:
            self._rules.clear()
            links = list(self._links)
        if self._stalled.is_set():
            self._stalled.clear()
            for link in links:
                self._close(link)

    def commands_named(self, name: str) -> list[Command]:
        with self._lock:
            return [c for c in self.commands if c.name == name]

    def open_connections(self) -> int:
        with self._lock:
            return len(self._links)

    # -- plumbing ----------------------------------------------------------------------------

    def start(self) -> "FaultProxy":
        self._spawn(self._accept_loop)
        return self

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        number = 0
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            number += 1
            if self._stalled.is_set():
                # Accepted by the kernel, never answered: like a host that dropped off the network.
                self._spawn(self._hold, client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            link = _Link(number, client, server)
            with self._lock:
                self._links.append(link)
            self._spawn(self._client_to_server, link)
            self._spawn(self._server_to_client, link)

    def _hold(self, client: socket.socket) -> None:
        while self._stalled.is_set() and not self._closed:
            time.sleep(0.05)
        client.close()

    def _take_rule(self, name: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.command == name and (rule.times is None or rule.times > 0):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return None

    def _client_to_server(self, link: _Link) -> None:
        try:
            while True:
                message = _read_message(link.client)
                if message is None:
                    break
                self._wait_while_stalled()
                decoded = _decode_command(message)
                if decoded is not None:
                    name, body = decoded
                    request_id = struct.unpack_from("<i", message, 4)[0]
                    with self._lock:
                        self.commands.append(Command(name, body, request_id, link.number))
                    rule = self._take_rule(name)
                    if rule is not None:
                        link.pending[request_id] = rule
                link.server.sendall(message)
        except OSError:
            pass
        self._close(link)

    def _server_to_client(self, link: _Link) -> None:
        try:
            while True:
                message = _read_message(link.server)
                if message is None:
                    break
                self._wait_while_stalled()
                response_to = struct.unpack_from("<i", message, 8)[0]
                rule = link.pending.pop(response_to, None)
                if rule is not None and rule.action == "drop":
                    break
                if rule is not None and rule.action == "delay":
                    time.sleep(rule.seconds)
                if rule is not None and rule.action == "amend":
                    message = _amended(message, rule.fields)
                link.client.sendall(message)
        except OSError:
            pass
        self._close(link)

    def _wait_while_stalled(self) -> None:
        while self._stalled.is_set() and not self._closed:
            time.sleep(0.02)

    def _close(self, link: _Link) -> None:
        with self._lock:
            if link in self._links:
                self._links.remove(link)
        for sock in (link.client, link.server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self._closed = True
        self._stalled.clear()
        self._listener.close()
        with self._lock:
            links = list(self._links)
        for link in links:
            self._close(link)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
