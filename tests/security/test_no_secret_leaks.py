"""No credential ever leaves the sidecar: not in a response body or header, not in its log, at
any log level or format, whether the database is down, refuses the credentials, or the request
itself fails; and not in the message of a configuration error.

The secrets are recognisable: a password and a token, each with a fragment ("qz7w9", "vx4k8")
that no hex id or timestamp can contain. Everything captured is searched for the password
(raw, percent-encoded and JSON-escaped), the user:password pair, the token and the fragments.
"""

import json
import subprocess
import time
from urllib.parse import quote

import pytest

from harness.procs import free_port
from harness.sidecar import Sidecar
from secsupport import record_tally

USER = "leakuser"
PASSWORD = "Pa55-LEAK-qz7w9"
# Characters a connection string must percent-encode, and ones JSON and Debug output escape.
SPECIAL_PASSWORD = 'Pa5"5\\LEAK@qz7w9:x%'
TOKEN = "tok-LEAK-vx4k8-secret"


def forms(password: str) -> list[str]:
    """Every spelling of a password and the user:password pair that would count as a leak."""
    spelled = {password, quote(password, safe=""), json.dumps(password)[1:-1]}
    pairs = {f"{USER}:{p}" for p in spelled}
    return sorted(spelled | pairs | {"qz7w9"})


SECRETS = sorted(set(forms(PASSWORD) + forms(SPECIAL_PASSWORD) + [TOKEN, "vx4k8"]))


def uri_with(password: str, hostport: str, options: str = "") -> str:
    return f"mongodb://{USER}:{quote(password, safe='')}@{hostport}/{options}"


class Evidence:
    """Everything a run exposed, as (where, text)."""

    def __init__(self):
        self.items: list[tuple[str, str]] = []
        self.log_files: list[str] = []

    def response(self, where: str, status: int, headers: dict, body: bytes) -> None:
        self.items.append((f"{where}: headers", json.dumps(headers)))
        self.items.append((f"{where}: body ({status})", body.decode("utf-8", "replace")))

    def log(self, sc: Sidecar) -> None:
        self.log_files.append(str(sc.log_path))
        self.items.append((f"log {sc.log_path}", sc.log_text()))

    def output(self, where: str, text: str) -> None:
        self.items.append((where, text))

    def hits(self) -> list[str]:
        return [f"{secret!r} in {where}: ...{text[max(0, text.find(secret) - 80):text.find(secret) + 80]}..."
                for where, text in self.items for secret in SECRETS if secret in text]

    def size(self) -> int:
        return sum(len(text.encode()) for _, text in self.items)


LOG_SETTINGS = [  # (AWS_LAMBDA_LOG_LEVEL, AWS_LAMBDA_LOG_FORMAT)
    ("INFO", "Text"), ("DEBUG", "Text"), ("TRACE", "Text"), ("INFO", "JSON"), ("DEBUG", "JSON"), ("TRACE", "JSON"),
]

NS = {"dataSource": "mongodb-atlas", "database": "sec_leaks", "collection": "c"}


def exercise(sc: Sidecar, evidence: Evidence, label: str, extra_requests=()) -> dict:
    """Failing requests of every kind; returns status by request name."""
    requests = [
        ("wrong token", "POST", "/action/find", NS, {"apiKey": "wrong-token"}),
        ("wrong Bearer", "POST", "/action/find", NS, {"Authorization": "Bearer wrong"}),
        ("no token", "POST", "/action/find", NS, {}),
        ("right token", "POST", "/action/find", {**NS, "filter": {"a": 1}}, {"apiKey": TOKEN}),
        ("right token, insert", "POST", "/action/insertOne", {**NS, "document": {"a": 1}}, {"apiKey": TOKEN}),
        ("bad input", "POST", "/action/find", b'{"database": ', {"apiKey": TOKEN}),
        ("bad field", "POST", "/action/find", {**NS, "limit": "x"}, {"apiKey": TOKEN}),
        ("denied operator", "POST", "/action/find", {**NS, "filter": {"$where": "1"}}, {"apiKey": TOKEN}),
        ("unknown action", "POST", "/action/nope", NS, {"apiKey": TOKEN}),
        ("proxied", "POST", "/action/find", NS, {"apiKey": TOKEN, "X-Forwarded-For": "10.0.0.1"}),
        ("health", "GET", "/health", None, {}),
        ("wrong method", "GET", "/action/find", None, {}),
        *extra_requests,
    ]
    statuses = {}
    for name, method, path, body, headers in requests:
        if isinstance(body, dict):
            body = json.dumps(body)
        sent = {"Content-Type": "application/json", **headers} if body is not None else headers
        status, response_headers, raw = sc.request(method, path, body, headers=sent, timeout=15)
        evidence.response(f"{label} {name}", status, response_headers, raw)
        statuses[name] = status
    return statuses


def report(evidence: Evidence, title: str) -> None:
    responses = sum(1 for where, _ in evidence.items if where.endswith(": headers"))
    line = (f"{evidence.size()} bytes searched ({responses} responses, headers and bodies; "
            f"{len(evidence.log_files)} log files; {len(evidence.items) - 2 * responses - len(evidence.log_files)} "
            f"other outputs) for {len(SECRETS)} secret forms: {len(evidence.hits())} hits")
    print(f"{title}: {line}; log files: {', '.join(evidence.log_files)}")
    record_tally(f"leak search, {title}", line)


def assert_log_honours(sc: Sidecar, level: str, fmt: str) -> None:
    """The run logged at the level and in the format asked for, so the search covered them."""
    lines = [line for line in sc.log_text().splitlines() if line.strip()]
    assert lines, "nothing was logged"
    if fmt == "JSON":
        assert all(line.startswith("{") and json.loads(line) for line in lines), lines[:3]
    if level in ("DEBUG", "TRACE"):
        assert any("DEBUG" in line for line in lines), lines[:10]
    else:
        assert not any("DEBUG" in line for line in lines), lines[:10]


def test_the_search_finds_a_planted_secret():
    """The search itself works: every spelling of each secret is found where it is planted."""
    for secret in SECRETS:
        evidence = Evidence()
        evidence.output("planted", f"prefix {secret} suffix")
        assert evidence.hits(), secret
    evidence = Evidence()
    evidence.output("planted", uri_with(SPECIAL_PASSWORD, "h:1"))
    assert evidence.hits()


@pytest.mark.parametrize("password", [PASSWORD, SPECIAL_PASSWORD], ids=["plain-password", "special-password"])
def test_nothing_leaks_when_the_database_is_unreachable(sidecar_bin, password):
    """A dead port: every action gets a 503, /health says why; at every log level and format."""
    evidence = Evidence()
    dead = f"127.0.0.1:{free_port()}"
    for level, fmt in LOG_SETTINGS:
        env = {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_READY_TIMEOUT_MS": "500",
               "AWS_LAMBDA_LOG_LEVEL": level, "AWS_LAMBDA_LOG_FORMAT": fmt}
        sc = Sidecar(uri_with(password, dead, "?serverSelectionTimeoutMS=300"), env, wait_ready=False).start()
        try:
            statuses = exercise(sc, evidence, f"[{level}/{fmt}]")
            time.sleep(1.2)  # let the keeper log a retry or two
            statuses["right token, later"] = exercise(sc, evidence, f"[{level}/{fmt} later]")["right token"]
        finally:
            assert sc.stop() == 0
        evidence.log(sc)
        assert_log_honours(sc, level, fmt)
        assert statuses["right token"] == 503 and statuses["right token, later"] == 503, statuses
        assert statuses["health"] == 503
        assert (statuses["wrong token"], statuses["no token"]) == (401, 400)
    report(evidence, f"database unreachable ({'special' if password != PASSWORD else 'plain'} password)")
    assert evidence.hits() == []


def test_nothing_leaks_when_the_database_refuses_the_credentials(sidecar_bin, mongo_uri):
    """A live server (FerretDB) that refuses the credentials: a valid URI, failing requests."""
    evidence = Evidence()
    hostport = mongo_uri.split("://", 1)[1].rstrip("/")
    for level, fmt in LOG_SETTINGS:
        env = {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_READY_TIMEOUT_MS": "2000",
               "AWS_LAMBDA_LOG_LEVEL": level, "AWS_LAMBDA_LOG_FORMAT": fmt}
        sc = Sidecar(uri_with(SPECIAL_PASSWORD, hostport), env, wait_ready=False).start()
        try:
            statuses = exercise(sc, evidence, f"[{level}/{fmt}]")
        finally:
            assert sc.stop() == 0
        evidence.log(sc)
        assert_log_honours(sc, level, fmt)
        assert statuses["right token"] == 503, statuses
    report(evidence, "credentials refused")
    assert evidence.hits() == []


def test_the_token_does_not_leak_when_requests_fail_at_the_database(sidecar_bin, mongo_uri):
    """A working database and requests the server refuses: duplicate keys, unknown operators,
    unknown stages, a failed bulk write."""
    evidence = Evidence()
    failing = [
        ("duplicate key", "POST", "/action/insertMany", {**NS, "documents": [{"_id": 1}, {"_id": 1}]}, {"apiKey": TOKEN}),
        ("unknown operator", "POST", "/action/find", {**NS, "filter": {"a": {"$bogus": 1}}}, {"apiKey": TOKEN}),
        ("unknown stage", "POST", "/action/aggregate", {**NS, "pipeline": [{"$bogus": {}}]}, {"apiKey": TOKEN}),
        ("bulk failure", "POST", "/action/bulkWrite",
         {**NS, "operations": [{"insertOne": {"document": {"_id": 2}}}, {"insertOne": {"document": {"_id": 2}}}]},
         {"apiKey": TOKEN}),
    ]
    for level, fmt in LOG_SETTINGS:
        env = {"MONGO_SIDECAR_TOKEN": TOKEN, "AWS_LAMBDA_LOG_LEVEL": level, "AWS_LAMBDA_LOG_FORMAT": fmt}
        sc = Sidecar(mongo_uri, env).start()
        try:
            statuses = exercise(sc, evidence, f"[{level}/{fmt}]", failing)
        finally:
            assert sc.stop() == 0
        evidence.log(sc)
        assert_log_honours(sc, level, fmt)
        assert statuses["right token"] == 200 and statuses["duplicate key"] == 409, statuses
        assert 400 <= statuses["unknown operator"] < 500 and 400 <= statuses["unknown stage"] < 500
    report(evidence, "requests failing at a working database")
    assert evidence.hits() == []


CONFIG_ERRORS = {  # name -> environment that must fail at start
    "port not a number": {"MONGODB_URI": uri_with(PASSWORD, "127.0.0.1:notaport")},
    "port out of range": {"MONGODB_URI": uri_with(PASSWORD, "127.0.0.1:99999")},
    "unknown auth mechanism": {"MONGODB_URI": uri_with(PASSWORD, "127.0.0.1:27017", "?authMechanism=BOGUS")},
    "tls not a boolean": {"MONGODB_URI": uri_with(SPECIAL_PASSWORD, "127.0.0.1:27017", "?tls=maybe")},
    "srv with a port": {"MONGODB_URI": uri_with(PASSWORD, "cluster.example.net:27017").replace("mongodb://", "mongodb+srv://")},
    "empty host": {"MONGODB_URI": f"mongodb://{USER}:{PASSWORD}@/"},
    "unescaped @ in the password": {"MONGODB_URI": f"mongodb://{USER}:{PASSWORD}@x@127.0.0.1:27017/"},
    "unescaped : in the password": {"MONGODB_URI": f"mongodb://{USER}:{PASSWORD}:x@127.0.0.1:27017/"},
    "bad % escape in the password": {"MONGODB_URI": f"mongodb://{USER}:{PASSWORD}%zz@127.0.0.1:27017/"},
    "named source with a bad port": {"MONGODB_URI_ANALYTICS": uri_with(PASSWORD, "127.0.0.1:notaport")},
    "named source with a bad name": {"MONGODB_URI_BAD-NAME": uri_with(PASSWORD, "127.0.0.1:27017")},
    "two default sources": {"MONGODB_URI": uri_with(PASSWORD, "127.0.0.1:27017"), "MONGODB_URI_SECRET_ID": "prod/mongo"},
    "a bad setting next to a good URI": {"MONGODB_URI": uri_with(PASSWORD, "127.0.0.1:27017"), "MONGO_SIDECAR_PORT": "eighty"},
    "a bad token mode": {"MONGODB_URI": uri_with(PASSWORD, "127.0.0.1:27017"), "MONGO_SIDECAR_AUTH": "maybe"},
    "token and remote host": {"MONGODB_URI": uri_with(PASSWORD, "127.0.0.1:27017"), "MONGO_SIDECAR_TOKEN": TOKEN,
                              "MONGO_SIDECAR_HOST": "0.0.0.0"},
}


def run_to_exit(sidecar_bin, env: dict, level="TRACE", fmt="Text") -> tuple[int, str, str]:
    full = {"PATH": "/usr/bin:/bin", "MONGO_SIDECAR_PORT": str(free_port()), "AWS_LAMBDA_LOG_LEVEL": level,
            "AWS_LAMBDA_LOG_FORMAT": fmt, **env}
    done = subprocess.run([str(sidecar_bin)], env=full, capture_output=True, timeout=20)
    return done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("fmt", ["Text", "JSON"])
def test_configuration_errors_do_not_show_the_password(sidecar_bin, fmt):
    evidence = Evidence()
    for name, env in CONFIG_ERRORS.items():
        code, out, err = run_to_exit(sidecar_bin, env, fmt=fmt)
        evidence.output(f"{name}: stdout", out)
        evidence.output(f"{name}: stderr", err)
        assert code == 1, f"{name}: exit code {code}\n{err}"
        assert "invalid configuration" in err, f"{name}: {err}"
    report(evidence, f"configuration errors ({fmt})")
    assert evidence.hits() == []


@pytest.mark.parametrize("separator", ["/", "?", "#/"])
def test_a_password_with_an_unescaped_delimiter_is_not_shown(sidecar_bin, separator):
    """`mongodb://leakuser:Pa55/LEAK-qz7w9@host/`: redact_uri (and the driver's parser) take the
    authority to end at the first '/' or '?', find no '@' before it, and print the URI as is."""
    uri = f"mongodb://{USER}:Pa55{separator}LEAK-qz7w9@127.0.0.1:27017/"
    code, out, err = run_to_exit(sidecar_bin, {"MONGODB_URI": uri})
    assert code == 1
    assert "qz7w9" not in out + err, err
