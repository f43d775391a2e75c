"""A DNS server for tests: the SRV, TXT and A records a `mongodb+srv://` URI needs, served on a
loopback address (port 53, UDP and TCP: a resolv.conf names no port).

    with DnsServer("127.0.53.1") as dns:
        dns.srv("_mongodb._tcp.cluster0.example.test", "db0.example.test", db.tls_port)
        dns.a("db0.example.test", "127.0.0.1")
        dns.txt("cluster0.example.test", "authSource=admin")
        Sidecar(..., resolv_conf=dns.resolv_conf(tmp_dir))

Names it holds no record for get NXDOMAIN. Needs root (port 53). `resolv_conf()` can be written
before the server starts, to see what a process does while DNS does not answer.
"""

import threading
from pathlib import Path

from dnslib import QTYPE, RCODE, RR, SRV, TXT, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from . import HarnessError

PORT = 53
TTL = 60


class _Records(BaseResolver):
    def __init__(self):
        self.records: list[RR] = []
        self.lock = threading.Lock()
        self.queries = 0

    def resolve(self, request, handler):
        reply = request.reply()
        name, qtype = request.q.qname, request.q.qtype
        with self.lock:
            self.queries += 1
            known = [rr for rr in self.records if rr.rname == name]
        for rr in known:
            if rr.rtype == qtype:
                reply.add_answer(rr)
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class DnsServer:
    """An authoritative-only DNS server on `address`:53 for the records added to it."""

    def __init__(self, address: str = "127.0.53.1"):
        self.address = address
        self._records = _Records()
        self._servers: list[DNSServer] = []

    def srv(self, name: str, target: str, port: int, priority: int = 0, weight: int = 0) -> None:
        self._add(RR(name, QTYPE.SRV, rdata=SRV(priority, weight, port, target), ttl=TTL))

    def txt(self, name: str, text: str) -> None:
        self._add(RR(name, QTYPE.TXT, rdata=TXT(text), ttl=TTL))

    def a(self, name: str, ip: str) -> None:
        self._add(RR(name, QTYPE.A, rdata=A(ip), ttl=TTL))

    def _add(self, rr: RR) -> None:
        with self._records.lock:
            self._records.records.append(rr)

    @property
    def queries(self) -> int:
        """How many queries it has answered."""
        return self._records.queries

    def resolv_conf(self, directory: Path) -> Path:
        """A resolv.conf whose only nameserver is this server; one try of 1 s per query, so a
        test that stops the server sees failures quickly."""
        path = Path(directory) / "resolv.conf"
        path.write_text(f"nameserver {self.address}\noptions timeout:1 attempts:1\n")
        return path

    def start(self) -> "DnsServer":
        quiet = DNSLogger(log="-recv,-send,-request,-reply,-truncated,-data,-error")
        try:
            for tcp in (False, True):
                server = DNSServer(self._records, port=PORT, address=self.address, tcp=tcp, logger=quiet)
                server.start_thread()
                self._servers.append(server)
        except OSError as e:
            self.stop()
            raise HarnessError(f"cannot serve DNS on {self.address}:{PORT}: {e} (needs root)") from None
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []

    def __enter__(self) -> "DnsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
