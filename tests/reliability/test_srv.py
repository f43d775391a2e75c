"""Atlas-style connection strings: `mongodb+srv://` resolved through a DNS server the test starts
itself (`harness.dns`), with TLS on (the default for +srv) and the test CA.

The records point at the local FerretDB's TLS listener, whose certificate names the SRV target.
Each sidecar runs in a private mount namespace whose /etc/resolv.conf names only that server."""

import re
import time

import pytest
from pymongo import MongoClient

from harness.dns import DnsServer
from harness.ferretdb import FerretDB
from harness.netstat import established_on

TOKEN = "srv-token"
CLUSTER = "cluster0.mongo-sidecar.test"
TARGET = "db0.mongo-sidecar.test"  # in the cluster's domain, as the SRV rules require
RECOVERY_BOUND_S = 15


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A FerretDB whose TLS certificate also names the SRV target; it logs every request
    (debug), so a test can see which database authentication went to."""
    with FerretDB(tls_hosts=(TARGET,), log_level="debug") as db:
        yield db


def srv_uri(db: FerretDB, options: str = "", credentials: str = "") -> str:
    return f"mongodb+srv://{credentials}{CLUSTER}/?tlsCAFile={db.ca.cert_path}{options}"


def serve_cluster(dns: DnsServer, db: FerretDB, txt: str | None = None) -> None:
    dns.srv(f"_mongodb._tcp.{CLUSTER}", TARGET, db.tls_port)
    dns.a(TARGET, "127.0.0.1")
    if txt is not None:
        dns.txt(CLUSTER, txt)


def action(sidecar, name: str, body: dict) -> tuple[int, dict]:
    return sidecar.action(name, body, token=TOKEN)


def test_an_srv_uri_connects_over_tls_to_the_host_the_srv_record_names(server, start_sidecar, tmp_path):
    with DnsServer("127.0.53.1") as dns:
        serve_cluster(dns, server)
        sidecar = start_sidecar(srv_uri(server), env={"MONGO_SIDECAR_TOKEN": TOKEN},
                                resolv_conf=dns.resolv_conf(tmp_path))

        status, body = action(sidecar, "insertOne", {"database": "srv", "collection": "c",
                                                     "document": {"via": "srv"}})

        assert status == 200, body
        assert dns.queries > 0, "the sidecar never asked the test's DNS server"
        assert established_on(server.pid, server.tls_port) >= 1, "no connection on the TLS listener"
        with MongoClient(server.uri, directConnection=True) as mongo:
            assert mongo["srv"]["c"].count_documents({"via": "srv"}) == 1


def test_the_txt_record_gives_the_auth_source(server, start_sidecar, tmp_path):
    # FerretDB (without its own users) accepts any PLAIN credentials and records the database they
    # were sent to. PLAIN's source is $external unless the URI or the TXT record names another.
    with DnsServer("127.0.53.2") as dns:
        serve_cluster(dns, server, txt="authSource=txtauthdb")
        sidecar = start_sidecar(srv_uri(server, "&authMechanism=PLAIN", credentials="fleet-user:fleet-pass@"),
                                env={"MONGO_SIDECAR_TOKEN": TOKEN}, resolv_conf=dns.resolv_conf(tmp_path))

        status, body = action(sidecar, "findOne", {"database": "srv", "collection": "c", "filter": {}})

        assert status == 200, body
        log = server.log_path.read_text(errors="replace")
        # FerretDB logs each request as a document, quotes escaped: \"saslStart\": 1, ... \"$db\": \"name\"
        sasl_starts = re.findall(r'saslStart\\?": 1.{0,400}?\$db\\?":\s*\\?"([^"\\]+)', log, re.S)
        assert sasl_starts, "the server saw no authentication"
        assert set(sasl_starts) == {"txtauthdb"}, sasl_starts


def test_dns_unreachable_at_start_answers_503_with_the_cause_then_recovers(server, start_sidecar, tmp_path,
                                                                            record_figure):
    dns = DnsServer("127.0.53.3")  # not started: nothing answers on that address yet
    serve_cluster(dns, server)
    sidecar = start_sidecar(srv_uri(server), env={"MONGO_SIDECAR_TOKEN": TOKEN}, wait_ready=False,
                            resolv_conf=dns.resolv_conf(tmp_path))
    time.sleep(2.5)  # longer than one resolver timeout: the first lookup has failed

    assert sidecar.proc.poll() is None, f"the sidecar exited:\n{sidecar.log_text()}"
    status, body = action(sidecar, "findOne", {"database": "srv", "collection": "c", "filter": {}})
    assert status == 503, body
    assert body["error_code"] in ("DatabaseUnavailable", "Warming"), body
    assert re.search(r"\bDNS\b|resolv|lookup", body["error"], re.I), body
    assert CLUSTER in body["error"] or "SRV" in body["error"], body

    with dns:
        dns_started = time.monotonic()
        while sidecar.request("GET", "/health")[0] != 200:
            assert time.monotonic() - dns_started < RECOVERY_BOUND_S, sidecar.log_text()
            time.sleep(0.1)
        record_figure("DNS back -> sidecar ready", f"{(time.monotonic() - dns_started) * 1000:.0f} ms")
        status, body = action(sidecar, "findOne", {"database": "srv", "collection": "c", "filter": {}})
    assert status == 200, body
