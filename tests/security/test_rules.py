"""Each security rule of the configuration (extension/src/config/), against the running binary.

Every test here was also run against a binary with its rule removed and failed there; see
README.md in this directory for the table and how it was done.
"""

import json
import os
import re
import socket
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from harness import REPO_ROOT
from harness.procs import free_port
from secsupport import TOKEN, raw_exchange, split_response

JS = {"body": "function() { return 1 }", "args": [], "lang": "js"}


def ns(db: str, coll: str = "c") -> dict:
    return {"dataSource": "mongodb-atlas", "database": db, "collection": coll}


def run_to_exit(sidecar_bin, env: dict, timeout: float = 10) -> tuple[int, str]:
    """Runs the binary until it exits (a configuration it must refuse); (exit code, log)."""
    full = {"PATH": "/usr/bin:/bin", "MONGO_SIDECAR_PORT": str(free_port()), **env}
    done = subprocess.run([str(sidecar_bin)], env=full, capture_output=True, timeout=timeout)
    return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")


def listening_addresses(port: int) -> set[str]:
    """The local addresses a LISTEN socket on `port` is bound to, from /proc/net/tcp and tcp6."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if int(port_hex, 16) != port or fields[3] != "0A":
                continue
            raw = bytes.fromhex(address)
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:  # four little-endian 32-bit words
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback, if it has one."""
    candidates = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.254.254.254", 1))  # no packet is sent; this only picks a route
            candidates.append(s.getsockname()[0])
    except OSError:
        pass
    try:
        candidates += subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        pass
    return next((a for a in candidates if "." in a and not a.startswith("127.")), None)


def can_connect(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def code_of(answer) -> str | None:
    """The error_code of an answer, or None when it is not an error."""
    return answer.get("error_code") if isinstance(answer, dict) else None


def post(sc, action: str, body, token: str | None = TOKEN, headers=None):
    """(status, parsed body, headers) of POST /action/ACTION."""
    status, response_headers, raw = sc.request("POST", f"/action/{action}", body, token=token, headers=headers)
    return status, (json.loads(raw) if raw else None), response_headers


# ---------------------------------------------------------------------------------------------
# Where the sidecar listens


def test_the_default_listener_is_loopback_only(start_sidecar, mongo_uri):
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN})
    assert listening_addresses(sc.port) == {"127.0.0.1"}
    other = non_loopback_address()
    if other is not None:
        assert not can_connect(other, sc.port), f"reachable on {other}"
    assert can_connect("127.0.0.1", sc.port)


def test_a_non_loopback_host_needs_allow_remote(sidecar_bin, start_sidecar, mongo_uri):
    for host, allow in [("0.0.0.0", None), ("0.0.0.0", "false"), ("::", None), ("10.1.2.3", None)]:
        env = {"MONGODB_URI": mongo_uri, "MONGO_SIDECAR_HOST": host}
        if allow is not None:
            env["MONGO_SIDECAR_ALLOW_REMOTE"] = allow
        code, log = run_to_exit(sidecar_bin, env)
        assert code == 1, f"{host}: exit code {code}\n{log}"
        why = [line for line in log.splitlines() if "MONGO_SIDECAR_HOST" in line]
        assert why and "MONGO_SIDECAR_ALLOW_REMOTE" in why[0] and "loopback" in why[0], log

    # The opt-in works, and then the port is reachable from elsewhere.
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_HOST": "0.0.0.0",
                                   "MONGO_SIDECAR_ALLOW_REMOTE": "true"})
    assert listening_addresses(sc.port) == {"0.0.0.0"}
    other = non_loopback_address()
    if other is not None:
        assert can_connect(other, sc.port)


def test_the_unix_socket_is_owner_only_and_serves(start_sidecar, mongo_uri):
    path = Path(tempfile.mkdtemp(prefix="sec-sock-")) / "sidecar.sock"
    # A stale socket from an earlier run is replaced.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()
    old_umask = os.umask(0o022)  # what a default environment has; the sidecar must not rely on it
    try:
        sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_SOCKET": str(path)})
    finally:
        os.umask(old_umask)
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600, oct(stat.S_IMODE(mode))

    def over_socket(request: bytes):
        _, received, _ = raw_exchange(0, [request], wait=10, path=str(path))
        return split_response(received)

    body = json.dumps({**ns("sec_rules_socket"), "document": {"_id": "via-socket"}}).encode()
    head = b"POST /action/insertOne HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nConnection: close\r\n"
    status, _, raw = over_socket(head + b"apiKey: " + TOKEN.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert (status, json.loads(raw)) == (200, {"insertedId": "via-socket"})
    status, _, raw = over_socket(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert status == 400 and json.loads(raw)["error"] == "no authentication methods were specified"
    status, _, _ = over_socket(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert status == 200
    assert sc.stop() == 0
    assert not path.exists(), "the socket file is removed at shutdown"


def test_a_regular_file_at_the_socket_path_is_left_alone(sidecar_bin, mongo_uri):
    path = Path(tempfile.mkdtemp(prefix="sec-sock-")) / "precious.txt"
    path.write_text("not a socket")
    code, log = run_to_exit(sidecar_bin, {"MONGODB_URI": mongo_uri, "MONGO_SIDECAR_SOCKET": str(path)})
    assert code == 1, log
    assert path.read_text() == "not a socket"


# ---------------------------------------------------------------------------------------------
# Who may call


def test_the_token_is_checked(start_sidecar, mongo_uri):
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN})
    body = {**ns("sec_rules_token"), "filter": {}}
    assert post(sc, "find", body)[0] == 200
    assert post(sc, "find", body, token=None, headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
    status, answer, _ = post(sc, "find", body, token="not-the-token")
    assert (status, code_of(answer)) == (401, "InvalidSession")
    status, answer, _ = post(sc, "find", body, token=None)
    assert (status, code_of(answer)) == (400, "InvalidParameter")
    assert "auth=\"token\"" in sc.log_text()


def test_auth_none_disables_the_check(start_sidecar, mongo_uri):
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_AUTH": "none"})
    body = {**ns("sec_rules_auth_none"), "filter": {}}
    assert post(sc, "find", body, token=None)[0] == 200
    assert post(sc, "find", body, token="anything")[0] == 200
    assert "MONGO_SIDECAR_AUTH=none" in sc.log_text()


def test_standalone_without_a_token_runs_and_says_so(start_sidecar, mongo_uri):
    sc = start_sidecar(mongo_uri, {})
    assert post(sc, "find", {**ns("sec_rules_no_token"), "filter": {}}, token=None)[0] == 200
    start = [line for line in sc.log_text().splitlines() if "no token is required" in line]
    assert start and "WARN" in start[0] and "MONGO_SIDECAR_TOKEN" in start[0], sc.log_text()[:2000]


def test_inside_lambda_the_session_token_is_the_default_token():
    """Inside Lambda (AWS_LAMBDA_RUNTIME_API set) the token defaults to AWS_SESSION_TOKEN. A real
    run would register with an Extensions API, so this default is covered by the configuration's
    unit tests (config/tests.rs), run by `cargo test`; this checks they exist and assert it."""
    config = REPO_ROOT / "extension/src/config"
    source = "\n".join(f.read_text() for f in sorted(config.glob("*.rs")))
    test = re.search(r"fn inside_lambda_the_session_token_is_the_default_token\(\) \{(.*?)\n\}\n", source, re.S)
    assert test, "the config unit test for the Lambda default token is gone"
    body = test.group(1)
    assert "AWS_LAMBDA_RUNTIME_API" in body and "AWS_SESSION_TOKEN" in body
    assert 'Auth::Token("session-token".into())' in body
    assert "(AWS_LAMBDA_RUNTIME_API, \"127.0.0.1:9001\")" in body
    # And inside Lambda without either token, start-up fails rather than running open.
    assert "neither is set" in source


def test_proxied_requests_are_refused_even_without_a_token(start_sidecar, mongo_uri):
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_AUTH": "none"})
    body = {**ns("sec_rules_proxy"), "filter": {}}
    for header in ({"X-Forwarded-For": "10.0.0.1"}, {"Forwarded": "for=10.0.0.1"}):
        status, answer, _ = post(sc, "find", body, token=None, headers={"Content-Type": "application/json", **header})
        assert status == 400 and "proxy" in answer["error"], answer
    assert post(sc, "find", body, token=None)[0] == 200


# ---------------------------------------------------------------------------------------------
# What requests may do


def test_the_allowlist_limits_namespaces(start_sidecar, mongo_uri, mongo):
    allowed_db, logs_db = "sec_rules_allow", "sec_rules_logs"
    for db in (allowed_db, logs_db, "sec_rules_allowx", "sec_rules_other"):
        mongo.drop_database(db)
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN,
                                   "MONGO_SIDECAR_ALLOW": f"{allowed_db}.users, {logs_db}.*"})
    assert post(sc, "insertOne", {**ns(allowed_db, "users"), "document": {"_id": 1}})[0] == 200
    assert post(sc, "insertOne", {**ns(logs_db, "anything"), "document": {"_id": 1}})[0] == 200
    assert post(sc, "find", {**ns(allowed_db, "users"), "filter": {}})[1] == {"documents": [{"_id": 1}]}
    assert post(sc, "aggregate", {**ns(logs_db, "other"), "pipeline": []})[0] == 200
    denied = [
        ("find", ns(allowed_db, "orders"), {"filter": {}}),
        ("find", ns("sec_rules_allowx", "users"), {"filter": {}}),
        ("find", ns("sec_rules_other", "users"), {"filter": {}}),
        ("insertOne", ns(allowed_db, "orders"), {"document": {"x": 1}}),
        ("insertOne", ns("sec_rules_other", "users"), {"document": {"x": 1}}),
        ("aggregate", ns(allowed_db, "orders"), {"pipeline": []}),
        ("deleteMany", ns("sec_rules_other", "x"), {"filter": {}}),
        ("bulkWrite", ns(allowed_db, "orders"), {"operations": [{"insertOne": {"document": {}}}]}),
        ("estimatedDocumentCount", ns(allowed_db, "Users"), {}),
    ]
    for action, namespace, fields in denied:
        status, answer, _ = post(sc, action, {**namespace, **fields})
        assert (status, code_of(answer)) == (403, "Forbidden"), (action, namespace, answer)
        assert "MONGO_SIDECAR_ALLOW" in answer["error"]
    assert "orders" not in mongo[allowed_db].list_collection_names()
    assert "sec_rules_other" not in mongo.list_database_names()


def test_read_only_refuses_every_write(start_sidecar, mongo_uri, mongo):
    db = "sec_rules_read_only"
    mongo.drop_database(db)
    mongo[db]["c"].insert_one({"_id": 1, "a": 1})
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_READ_ONLY": "true",
                                   "MONGO_SIDECAR_ALLOW_OUT": "true", "MONGO_SIDECAR_ALLOW_MERGE": "true"})
    writes = {
        "insertOne": {"document": {"_id": 2}}, "insertMany": {"documents": [{"_id": 3}]},
        "updateOne": {"filter": {}, "update": {"$set": {"a": 2}}},
        "updateMany": {"filter": {}, "update": {"$set": {"a": 2}}},
        "replaceOne": {"filter": {}, "replacement": {"a": 2}}, "deleteOne": {"filter": {}},
        "deleteMany": {"filter": {}}, "findOneAndUpdate": {"filter": {}, "update": {"$set": {"a": 2}}},
        "findOneAndReplace": {"filter": {}, "replacement": {"a": 2}}, "findOneAndDelete": {"filter": {}},
        "bulkWrite": {"operations": [{"deleteOne": {"filter": {}}}]},
        "aggregate": {"pipeline": [{"$out": "copy"}]},
    }
    for action, fields in writes.items():
        status, answer, _ = post(sc, action, {**ns(db), **fields})
        assert (status, code_of(answer)) == (403, "Forbidden"), (action, answer)
        assert "MONGO_SIDECAR_READ_ONLY" in answer["error"]
    status, answer, _ = post(sc, "aggregate", {**ns(db), "pipeline": [{"$facet": {"x": [{"$merge": "copy"}]}}]})
    assert status == 403
    reads = {"find": {"filter": {}}, "findOne": {"filter": {}}, "countDocuments": {"filter": {}},
             "estimatedDocumentCount": {}, "distinct": {"key": "a"}, "aggregate": {"pipeline": [{"$match": {}}]}}
    for action, fields in reads.items():
        assert post(sc, action, {**ns(db), **fields})[0] == 200, action
    assert list(mongo[db]["c"].find()) == [{"_id": 1, "a": 1}]


SERVER_JS_FILTERS = {"$where": {"$where": "true"}, "$function": {"$expr": {"$function": JS}}}


def test_server_javascript_is_denied_by_default(start_sidecar, mongo_uri):
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN})
    for name, flt in SERVER_JS_FILTERS.items():
        status, answer, _ = post(sc, "find", {**ns("sec_rules_js"), "filter": flt})
        assert (status, code_of(answer)) == (403, "Forbidden"), answer
        assert name in answer["error"] and "MONGO_SIDECAR_ALLOW_SERVER_JS" in answer["error"]
    status, answer, _ = post(sc, "aggregate", {**ns("sec_rules_js"),
                                               "pipeline": [{"$group": {"_id": 1, "x": {"$accumulator": {}}}}]})
    assert status == 403 and "$accumulator" in answer["error"]


def test_allow_server_js_lets_it_through_to_the_database(start_sidecar, mongo_uri):
    """FerretDB itself refuses server JavaScript with a 400: what matters is that the refusal
    is the database's, not the policy's 403."""
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_ALLOW_SERVER_JS": "true"})
    for flt in SERVER_JS_FILTERS.values():
        status, answer, _ = post(sc, "find", {**ns("sec_rules_js"), "filter": flt})
        assert status != 403 and code_of(answer) != "Forbidden", answer
    status, answer, _ = post(sc, "aggregate", {**ns("sec_rules_js"),
                                               "pipeline": [{"$group": {"_id": 1, "x": {"$accumulator": {}}}}]})
    assert status != 403, answer


OUT = [{"$match": {}}, {"$out": "sec_copy"}]
MERGE = [{"$match": {}}, {"$merge": {"into": "sec_copy"}}]


@pytest.mark.parametrize("allow", [None, "MONGO_SIDECAR_ALLOW_OUT", "MONGO_SIDECAR_ALLOW_MERGE"])
def test_out_and_merge_are_denied_unless_allowed(start_sidecar, mongo_uri, allow):
    env = {"MONGO_SIDECAR_TOKEN": TOKEN}
    if allow:
        env[allow] = "true"
    sc = start_sidecar(mongo_uri, env)
    for pipeline, variable in [(OUT, "MONGO_SIDECAR_ALLOW_OUT"), (MERGE, "MONGO_SIDECAR_ALLOW_MERGE")]:
        for wrapped in (pipeline, [{"$facet": {"x": pipeline}}]):
            status, answer, _ = post(sc, "aggregate", {**ns("sec_rules_out"), "pipeline": wrapped})
            if allow == variable:
                assert status != 403 and code_of(answer) != "Forbidden", answer
            else:
                assert (status, code_of(answer)) == (403, "Forbidden"), (wrapped, answer)
                assert variable in answer["error"]


# ---------------------------------------------------------------------------------------------
# Limits


def padded_find(size: int, db: str) -> bytes:
    """A valid find body of exactly `size` bytes."""
    body = json.dumps({**ns(db), "filter": {}, "comment": ""}).encode()
    assert len(body) <= size
    return body.replace(b'"comment": ""', b'"comment": "' + b"x" * (size - len(body)) + b'"')


def test_the_body_size_limit(start_sidecar, mongo_uri):
    limit = 2048
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_MAX_BODY_BYTES": str(limit)})
    headers = {"Content-Type": "application/json"}
    for size in (limit - 1, limit):
        body = padded_find(size, "sec_rules_body")
        assert len(body) == size
        status, _, raw = sc.request("POST", "/action/find", body, token=TOKEN, headers=headers)
        assert status == 200, (size, raw)
    status, _, raw = sc.request("POST", "/action/find", padded_find(limit + 1, "sec_rules_body"), token=TOKEN,
                                headers=headers)
    assert (status, code_of(json.loads(raw) if raw else None)) == (413, "PayloadTooLarge")
    # Without a Content-Length (chunked), the limit applies while reading.
    for size, expected in ((limit, 200), (limit + 1, 413)):
        body = padded_find(size, "sec_rules_body")
        head = (b"POST /action/find HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\napiKey: "
                + TOKEN.encode() + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 500]), body[i:i + 500]) for i in range(0, len(body), 500))
        _, received, _ = raw_exchange(sc.port, [head + chunks + b"0\r\n\r\n"], wait=10)
        assert split_response(received)[0] == expected, (size, received[:300])


def nested_filter(levels: int) -> dict:
    flt = {"a": 1}
    for _ in range(levels - 1):
        flt = {"a": flt}
    return flt


def test_the_nesting_depth_limit(start_sidecar, mongo_uri):
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_MAX_DEPTH": "5"})
    # The body is level 1 and the filter level 2: a filter of 4 nested objects reaches level 5.
    assert post(sc, "find", {**ns("sec_rules_depth"), "filter": nested_filter(4)})[0] == 200
    status, answer, _ = post(sc, "find", {**ns("sec_rules_depth"), "filter": nested_filter(5)})
    assert status == 400 and "nested more than 5" in answer["error"], answer
    status, answer, _ = post(sc, "insertOne", {**ns("sec_rules_depth"), "document": {"x": [[[[[1]]]]]}})
    assert status == 400 and "nested" in answer["error"], answer


def test_the_write_batch_limit(start_sidecar, mongo_uri, mongo):
    db = "sec_rules_batch"
    mongo.drop_database(db)
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_MAX_WRITE_BATCH": "3"})
    assert post(sc, "insertMany", {**ns(db), "documents": [{"i": i} for i in range(3)]})[0] == 200
    status, answer, _ = post(sc, "insertMany", {**ns(db), "documents": [{"i": i} for i in range(4)]})
    assert (status, code_of(answer)) == (413, "TooManyOperations"), answer
    assert "MONGO_SIDECAR_MAX_WRITE_BATCH" in answer["error"]
    ops = [{"insertOne": {"document": {"b": i}}} for i in range(4)]
    assert post(sc, "bulkWrite", {**ns(db), "operations": ops[:3]})[0] == 200
    status, answer, _ = post(sc, "bulkWrite", {**ns(db), "operations": ops})
    assert (status, code_of(answer)) == (413, "TooManyOperations"), answer
    assert mongo[db]["c"].count_documents({}) == 6


def test_the_document_limit_caps_limit_and_results(start_sidecar, mongo_uri, mongo):
    db = "sec_rules_documents"
    mongo.drop_database(db)
    mongo[db]["c"].insert_many([{"_id": i} for i in range(6)])
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_MAX_DOCUMENTS": "5"})
    status, answer, _ = post(sc, "find", {**ns(db), "filter": {}, "limit": 5})
    assert status == 200 and len(answer["documents"]) == 5
    # A limit above the cap is refused up front, even when fewer documents would match.
    status, answer, _ = post(sc, "find", {**ns(db), "filter": {"_id": {"$lt": 2}}, "limit": 6})
    assert status == 400 and "limit 6 is larger" in answer["error"], answer
    assert "MONGO_SIDECAR_MAX_DOCUMENTS" in answer["error"]
    status, answer, _ = post(sc, "find", {**ns(db), "filter": {"_id": {"$lt": 5}}})
    assert status == 200 and len(answer["documents"]) == 5
    for action, fields in (("find", {"filter": {}}), ("aggregate", {"pipeline": [{"$match": {}}]})):
        status, answer, _ = post(sc, action, {**ns(db), **fields})
        assert status == 400 and "more than 5 documents" in answer["error"], (action, answer)


def test_the_concurrency_limit_sheds_load(start_sidecar, mongo_uri, mongo):
    """MAX_CONCURRENCY=1: while one request is in flight, others get 503 Overloaded with
    Retry-After at once (no queue), and the one in flight completes."""
    db = "sec_rules_concurrency"
    mongo.drop_database(db)
    mongo[db]["big"].insert_many([{"_id": i, "pad": "x" * 2000} for i in range(3000)])
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_MAX_CONCURRENCY": "1"})

    # 1. Deterministic: a request whose body is still arriving holds the only permit.
    body = json.dumps({**ns(db, "big"), "filter": {"_id": 1}}).encode()
    held = socket.create_connection(("127.0.0.1", sc.port), timeout=10)
    held.sendall(b"POST /action/find HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\napiKey: "
                 + TOKEN.encode() + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body[:5])
    time.sleep(0.3)
    started = time.monotonic()
    shed = [sc.request("POST", "/action/find", {**ns(db, "big"), "filter": {"_id": 2}}, token=TOKEN) for _ in range(3)]
    assert time.monotonic() - started < 2, "shed requests must not wait"
    for status, headers, raw in shed:
        assert (status, code_of(json.loads(raw) if raw else None)) == (503, "Overloaded"), raw
        assert headers.get("retry-after") == "1"
    held.sendall(body[5:])
    held.settimeout(10)
    received = b""
    while chunk := held.recv(65536):
        received += chunk
    held.close()
    assert split_response(received)[0] == 200

    # 2. Several large finds at once.
    results, barrier = [], threading.Barrier(6)

    def large_find():
        barrier.wait()
        t0 = time.monotonic()
        status, headers, raw = sc.request("POST", "/action/find", {**ns(db, "big"), "filter": {}}, token=TOKEN,
                                          timeout=60)
        results.append((status, headers, raw, time.monotonic() - t0))

    threads = [threading.Thread(target=large_find) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    statuses = sorted(r[0] for r in results)
    assert len(results) == 6 and set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 1 and statuses.count(503) >= 1, statuses
    for status, headers, raw, elapsed in results:
        if status == 503:
            assert code_of(json.loads(raw) if raw else None) == "Overloaded" and headers.get("retry-after") == "1"
        else:
            assert len(json.loads(raw)["documents"]) == 3000
    print(f"6 parallel finds with MAX_CONCURRENCY=1: {statuses}")
    # The permit comes back: a request afterwards is served.
    assert post(sc, "find", {**ns(db, "big"), "filter": {"_id": 1}})[0] == 200


HEAD = b"POST /action/find HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\napiKey: " + TOKEN.encode() + b"\r\n"


def test_the_header_read_timeout(start_sidecar, mongo_uri):
    short = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_HEADER_TIMEOUT_MS": "300"})
    elapsed, received, ended = raw_exchange(short.port, [HEAD[:40]], wait=5)
    assert ended != "hang" and received == b"" and 0.25 < elapsed < 2, (elapsed, ended, received)
    # The setting, not something else, decides: a long timeout keeps the same connection open.
    long = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_HEADER_TIMEOUT_MS": "5000"})
    elapsed, received, ended = raw_exchange(long.port, [HEAD[:40]], wait=1.5)
    assert ended == "hang", (elapsed, ended)


def test_the_body_read_timeout(start_sidecar, mongo_uri):
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_BODY_TIMEOUT_MS": "300"})
    elapsed, received, ended = raw_exchange(
        sc.port, [HEAD + b"Connection: close\r\nContent-Length: 100\r\n\r\n", b'{"data'], wait=5)
    status, _, raw = split_response(received)
    assert (status, code_of(json.loads(raw) if raw else None)) == (408, "RequestTimeout"), received
    assert ended != "hang" and 0.25 < elapsed < 2, (elapsed, ended)


def test_idle_connections_are_capped(start_sidecar, mongo_uri):
    """Idle keep-alive connections are not timed (a thawed client must find its connection open),
    so their number is capped: at MONGO_SIDECAR_MAX_CONNECTIONS the oldest idle one is closed to
    make room for a new one, and when every one is busy a new one gets a 503 and is closed."""
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_MAX_CONNECTIONS": "3"})
    idle = [socket.create_connection(("127.0.0.1", sc.port)) for _ in range(3)]
    busy = []
    try:
        time.sleep(0.2)
        status, _, _ = post(sc, "find", {**ns("sec_rules_conns")})
        assert status == 200, "a new connection at the cap was not served"
        idle[0].settimeout(5)
        assert idle[0].recv(1) == b"", "the oldest idle connection was kept open"
        # Every slot busy: each has started a request head that has not ended.
        for sock in idle[1:]:
            sock.close()
        time.sleep(0.2)
        busy = [socket.create_connection(("127.0.0.1", sc.port)) for _ in range(3)]
        for sock in busy:
            sock.sendall(b"POST /action/find HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", sc.port))
        extra.settimeout(5)
        answer = extra.recv(4096)
        extra.close()
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b'"error_code":"Overloaded"' in answer and b"retry-after: 1" in answer.lower()
    finally:
        for s in idle + busy:
            s.close()


# ---------------------------------------------------------------------------------------------
# Regression tests for rules this suite found incomplete (each failed before its fix).


def test_server_javascript_is_denied_in_projections_and_let(start_sidecar, mongo_uri):
    """MongoDB evaluates aggregation expressions in a find projection (4.4+) and in `let`, so
    {"$function": ...} there runs JavaScript on the server; the policy never looks. FerretDB
    answers 400 NotImplemented, which shows the request got past the policy."""
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN})
    fn = {"$function": JS}
    requests = [
        ("find", {"projection": {"x": fn}}), ("findOne", {"projection": {"x": fn}}),
        ("findOneAndUpdate", {"filter": {}, "update": {"$set": {"a": 1}}, "projection": {"x": fn}}),
        ("findOneAndDelete", {"filter": {"_id": "none"}, "projection": {"x": fn}}),
        ("find", {"let": {"x": fn}}), ("aggregate", {"pipeline": [], "let": {"x": fn}}),
        ("updateOne", {"filter": {"_id": "none"}, "update": {"$set": {"a": 1}}, "let": {"x": fn}}),
        ("deleteMany", {"filter": {"_id": "none"}, "let": {"x": fn}}),
    ]
    outcomes = {f"{action} {next(iter(fields.keys() - {'filter', 'update', 'pipeline'}))}":
                post(sc, action, {**ns("sec_rules_js_bypass"), **fields})[0] for action, fields in requests}
    assert outcomes == dict.fromkeys(outcomes, 403)


def test_a_pipeline_cannot_reach_outside_the_allowlist(start_sidecar, mongo_uri):
    """From the allowed app.users, $lookup / $unionWith / $graphLookup read any other collection
    of the database, and $out / $merge (when allowed) write into any database. FerretDB does
    not implement these stages and answers 400; MongoDB would return or write the data."""
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_ALLOW": "sec_rules_app.users",
                                   "MONGO_SIDECAR_ALLOW_OUT": "true", "MONGO_SIDECAR_ALLOW_MERGE": "true"})
    pipelines = {
        "$lookup": [{"$lookup": {"from": "secrets", "pipeline": [], "as": "s"}}],
        "$unionWith": [{"$unionWith": "secrets"}],
        "$graphLookup": [{"$graphLookup": {"from": "secrets", "startWith": "$a", "connectFromField": "a",
                                           "connectToField": "b", "as": "s"}}],
        "$out to another database": [{"$out": {"db": "elsewhere", "coll": "copy"}}],
        "$merge into another collection": [{"$merge": {"into": "secrets"}}],
    }
    outcomes = {name: post(sc, "aggregate", {**ns("sec_rules_app", "users"), "pipeline": p})[0]
                for name, p in pipelines.items()}
    assert outcomes == dict.fromkeys(outcomes, 403)
