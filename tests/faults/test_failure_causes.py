"""A data source that cannot be reached says why, in the log line, in `/health` and in the 503 a
request gets: a refused connection, a server certificate nobody trusts, a name DNS cannot resolve,
credentials the server refuses, a server that never answers. This is the first thing a user setting
up Atlas, a VPC or an IP access list meets. A `mongodb+srv://` name that cannot be resolved at start
is not an init failure either: the sidecar starts, answers 503 with the cause, and keeps trying."""

import re

import pytest

from harness.procs import free_port
from support import action, health, wait_until

PASSWORD = "S3cretPassw0rd-do-not-print"


@pytest.fixture
def dead_resolver(tmp_path):
    """A resolv.conf whose only nameserver refuses every query (nothing listens there)."""
    path = tmp_path / "resolv.conf"
    path.write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
    return path


def unavailable_reason(sidecar) -> str:
    """Waits for /health to say the default data source is unavailable; returns its reason."""
    def reason():
        status, body, _ = health(sidecar)
        source = next(iter(body["dataSources"].values()))
        return status == 503 and source["status"] == "unavailable" and source.get("reason")
    return wait_until(reason, 15, interval=0.2, what="the data source to be reported unavailable")


def check_cause(sidecar, database: str, cause: re.Pattern) -> str:
    reason = unavailable_reason(sidecar)
    assert cause.search(reason), f"/health gives no cause: {reason!r}"
    status, headers, body, _ = action(sidecar, "findOne", {"database": database, "collection": "c"})
    assert status == 503 and body["error_code"] == "DatabaseUnavailable", body
    assert cause.search(body["error"]), f"the 503 gives no cause: {body['error']!r}"
    assert headers.get("retry-after") == "1"
    warnings = [line for line in sidecar.log_text().splitlines() if " WARN " in line or " ERROR " in line]
    assert any(cause.search(line) for line in warnings), "no warning in the log names the cause:\n" + \
        "\n".join(warnings)
    return body["error"]


def test_a_refused_connection_is_named(database, start_sidecar):
    sidecar = start_sidecar(f"mongodb://127.0.0.1:{free_port()}/", wait_ready=False)
    check_cause(sidecar, database, re.compile(r"refused", re.I))


def test_an_untrusted_server_certificate_is_named(database, ferretdb, start_sidecar):
    # TLS to the real server, but without the CA that signed its certificate.
    sidecar = start_sidecar(f"mongodb://127.0.0.1:{ferretdb.tls_port}/?tls=true", wait_ready=False)
    check_cause(sidecar, database, re.compile(r"certificate", re.I))


def test_a_name_dns_cannot_resolve_is_named(database, start_sidecar, dead_resolver):
    sidecar = start_sidecar("mongodb://db.example.test:27017/", wait_ready=False, resolv_conf=dead_resolver)
    check_cause(sidecar, database, re.compile(r"\bDNS\b|resolve", re.I))


def test_credentials_the_server_refuses_are_named_without_printing_them(database, ferretdb, start_sidecar):
    sidecar = start_sidecar(f"mongodb://app:{PASSWORD}@127.0.0.1:{ferretdb.port}/", wait_ready=False)
    message = check_cause(sidecar, database, re.compile(r"authenticat", re.I))
    assert "mechanism" in message, f"the server's own reason is missing: {message!r}"
    sidecar.stop()
    assert PASSWORD not in message and PASSWORD not in sidecar.log_text()


def test_a_server_that_never_answers_is_named(database, proxy, start_sidecar):
    p = proxy()
    p.stall()
    sidecar = start_sidecar(p.uri, wait_ready=False)
    check_cause(sidecar, database, re.compile(r"timed out|timeout", re.I))


def test_an_srv_name_dns_cannot_resolve_at_start_is_not_an_init_failure(database, start_sidecar, dead_resolver):
    sidecar = start_sidecar("mongodb+srv://cluster0.example.test/", wait_ready=False, resolv_conf=dead_resolver)
    check_cause(sidecar, database, re.compile(r"\bDNS\b|resolve", re.I))
    assert sidecar.proc.poll() is None, "the sidecar exited"


def test_a_connection_string_that_cannot_be_parsed_still_fails_at_start(sidecar_bin):
    from harness import HarnessError
    from harness.sidecar import Sidecar

    with pytest.raises(HarnessError, match="MONGODB_URI"):
        Sidecar("mongodb://host:notaport/").start()
