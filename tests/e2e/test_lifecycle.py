"""The extension's lifecycle under the Lambda emulator: ready before the first call, healthy
across a freeze with a database restart in between, draining in-flight requests at SHUTDOWN,
failing loudly on bad configuration, recovering from a database that was down at init, and
reading its connection string from Secrets Manager or SSM (served by moto).

Figures each test measures are printed in the "figures" section after the run."""

import json
import os
import re
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pymongo import MongoClient

from harness.demo import http_event
from harness.faultproxy import FaultProxy
from harness.ferretdb import FerretDB
from harness.lambda_env import SAMPLE_FUNCTIONS, ExecutionEnvironment
from harness.moto import MotoServer
from harness.netstat import established_to, local_ports_to

FUNCTIONS = Path(__file__).parent / "functions"
#: The bound this project states for the first request after a thaw with a restarted server.
THAW_BOUND_MS = 2000


@pytest.fixture
def environment(request, layer, database):
    """environment(function_dir, uri, runtime="python", env=..., **ExecutionEnvironment kwargs) -> a started
    environment."""
    envs: list[ExecutionEnvironment] = []
    request.node.lambda_envs = envs

    def start(function_dir: Path, uri: str | None, runtime: str = "python", env: dict | None = None, **kwargs):
        base = {"MONGODB_DATABASE": database}
        if uri is not None:
            base["MONGODB_URI"] = uri
        fn = ExecutionEnvironment(runtime, function_dir, layer_dir=layer, env=base | (env or {}), **kwargs)
        envs.append(fn)
        return fn.start()

    yield start
    for fn in envs:
        fn.close()


def sidecar_request(fn: ExecutionEnvironment, method: str, path: str, body: dict | None = None):
    """A request straight to the environment's sidecar, with the environment's token."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", fn.sidecar_port, timeout=30)
    try:
        headers = {"Content-Type": "application/json", "apiKey": fn.env["AWS_SESSION_TOKEN"]}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"null")
    finally:
        conn.close()


def create(name: str) -> dict:
    """The sample items API's create request."""
    return http_event("POST", "/items", {"name": name})


def status_code(result) -> int | None:
    """The statusCode of the function's API Gateway answer, None if the invocation failed."""
    return result.body.get("statusCode") if isinstance(result.body, dict) and not result.function_error else None


def log_figure(fn: ExecutionEnvironment, message: str, field: str) -> float | None:
    """A number the extension logged, e.g. elapsed_ms on its "init done" line."""
    match = re.search(rf"{re.escape(message)}.*?{field}=(\d+)", fn.log_text())
    return float(match.group(1)) if match else None


def test_first_invocation_is_served_when_the_handler_calls_during_its_own_init(
    environment, ferretdb, mongo, database, record_timing
):
    fn = environment(FUNCTIONS / "init_call", ferretdb.uri)

    result = fn.invoke({})

    assert result.function_error is None, result.body
    assert result.body["status"] == 200, f"the call made during init failed: {result.body}"
    assert mongo[database]["init"].count_documents({"phase": "init"}) == 1
    record_timing("init-time call (function side)", result.body["elapsed_ms"])
    exec_to_ready = log_figure(fn, "init done", "elapsed_ms")
    assert exec_to_ready is not None, fn.log_text()
    record_timing("extension exec -> ready", exec_to_ready)


def test_first_query_after_a_freeze_and_a_database_restart_succeeds_within_the_bound(
    environment, database, record_timing
):
    with FerretDB() as db, MongoClient(db.uri, directConnection=True) as mongo:
        fn = environment(SAMPLE_FUNCTIONS / "python", db.uri, env={"ITEMS_COLLECTION": "thaw"})
        first = fn.invoke(create("first"))
        assert status_code(first) == 201, first.body
        pid = fn.extension_pid()
        assert pid is not None

        os.kill(pid, signal.SIGSTOP)  # Lambda's freeze
        try:
            db.restart()  # every socket the extension held is now closed by the server
            time.sleep(1.2)  # a quiet spell longer than MONGO_SIDECAR_REVALIDATE_AFTER_MS
        finally:
            os.kill(pid, signal.SIGCONT)

        after = fn.invoke(create("second"))

        assert status_code(after) == 201, after.body
        assert after.elapsed_ms < THAW_BOUND_MS, f"{after.elapsed_ms:.0f} ms"
        assert sorted(d["name"] for d in mongo[database]["thaw"].find()) == ["first", "second"]
        record_timing("first insert after thaw", after.elapsed_ms)


def test_a_dead_path_to_the_database_is_answered_before_the_functions_timeout(environment, ferretdb, record_timing):
    """Lambda's default timeout is 3 s. Every wait the sidecar makes (revalidation after a quiet
    spell, the operation itself) fits in the invocation's deadline less the margin, so the handler
    gets an answer it can handle instead of being killed."""
    with FaultProxy(ferretdb.port) as proxy:
        fn = environment(SAMPLE_FUNCTIONS / "python", proxy.uri, timeout_s=3)
        assert status_code(fn.invoke(create("first"))) == 201
        proxy.stall()  # the path dies while the environment is idle
        time.sleep(1.2)  # longer than MONGO_SIDECAR_REVALIDATE_AFTER_MS

        result = fn.invoke(http_event("GET", "/items"))

        assert result.function_error is None, f"the function did not answer in time: {result.body}"
        assert status_code(result) in (503, 504), result.body
        record_timing("dead path answered (3 s function timeout)", result.elapsed_ms)


def test_shutdown_lets_an_in_flight_request_finish_then_exits(environment, ferretdb, mongo, database, record_timing):
    fn = environment(SAMPLE_FUNCTIONS / "python", ferretdb.uri)
    assert status_code(fn.invoke(http_event("GET", "/items"))) == 200
    marker = uuid.uuid4().hex
    body = json.dumps({"dataSource": "x", "database": database, "collection": "drain",
                       "document": {"marker": marker}}).encode()
    head = (f"POST /action/insertOne HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"apiKey: {fn.env['AWS_SESSION_TOKEN']}\r\nContent-Length: {len(body)}\r\n\r\n").encode()

    with socket.create_connection(("127.0.0.1", fn.sidecar_port), timeout=10) as sock:
        sock.sendall(head + body[:10])  # the request is in flight: its body has not all arrived
        time.sleep(0.1)
        stopped = {}
        stopper = threading.Thread(target=lambda: stopped.update(result=fn.stop()))
        shutdown_sent = time.perf_counter()
        stopper.start()
        time.sleep(0.3)
        sock.sendall(body[10:])
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
        answered_ms = (time.perf_counter() - shutdown_sent) * 1000
        stopper.join(10)

    assert response.startswith(b"HTTP/1.1 200"), response
    assert b"insertedId" in response
    assert mongo[database]["drain"].count_documents({"marker": marker}) == 1
    result = stopped["result"]
    # A whole answer is proof the process was there to send it; comparing two clocks read by two
    # threads on a loaded machine is not.
    assert result.extension_exited_by_itself, result
    record_timing("in-flight answered after SHUTDOWN", answered_ms)
    record_timing("SHUTDOWN -> exit (1 in flight)", result.extension_exit_ms)


def test_shutdown_with_nothing_in_flight_exits_quickly(environment, ferretdb, record_timing):
    fn = environment(SAMPLE_FUNCTIONS / "python", ferretdb.uri)
    assert status_code(fn.invoke(http_event("GET", "/items"))) == 200

    result = fn.stop()

    assert result.extension_exited_by_itself, result
    record_timing("SHUTDOWN -> exit (idle)", result.extension_exit_ms)
    drained = log_figure(fn, "drained; exiting", "elapsed_ms")
    assert drained is not None, fn.log_text()
    record_timing("extension: SHUTDOWN -> drained", drained)


def test_a_configuration_error_fails_init_loudly(environment, ferretdb):
    fn = environment(SAMPLE_FUNCTIONS / "python", ferretdb.uri, env={"MONGO_SIDECAR_MAX_DEPTH": "deep"})

    result = fn.invoke(http_event("GET", "/items"))

    log = fn.log_text()
    assert "Extension.ConfigInvalid" in log, log
    assert "MONGO_SIDECAR_MAX_DEPTH" in log and '"deep"' in log, log
    assert result.status != 200 or result.function_error is not None, result
    again = fn.invoke(http_event("GET", "/items"))
    assert again.status != 200 or again.function_error is not None, "init failed, so invocations must fail"


def test_a_database_down_at_init_answers_503_then_recovers_without_a_restart(environment, database, record_timing):
    with FerretDB() as db:
        db.stop()
        fn = environment(SAMPLE_FUNCTIONS / "python", db.uri, env={"ITEMS_COLLECTION": "recover"})

        down = fn.invoke(create("first"))

        assert status_code(down) == 503, down.body  # the handler answers 503, it does not crash
        assert json.loads(down.body["body"])["code"] == "DatabaseUnavailable", down.body
        status, headers, health = sidecar_request(fn, "GET", "/health")
        assert status == 503 and health["status"] == "unavailable", health
        assert headers.get("retry-after") == "1"
        pid_before = fn.extension_pid()

        db.restart()
        started = time.perf_counter()
        while sidecar_request(fn, "GET", "/health")[0] != 200:
            assert time.perf_counter() - started < 15, "the extension did not recover"
            time.sleep(0.1)
        record_timing("database back -> sidecar ready", (time.perf_counter() - started) * 1000)

        up = fn.invoke(create("second"))
        assert status_code(up) == 201, up.body
        assert fn.extension_pid() == pid_before, "the extension was restarted"
        with MongoClient(db.uri, directConnection=True) as mongo:
            assert [d["name"] for d in mongo[database]["recover"].find()] == ["second"]


@pytest.mark.parametrize("store", ["secretsmanager", "ssm"])
def test_the_connection_string_is_read_from_aws_at_init(store, environment, ferretdb, mongo, database):
    with MotoServer() as aws:
        name = f"prod/mongo-{uuid.uuid4().hex[:8]}"
        if store == "secretsmanager":
            aws.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps({"uri": ferretdb.uri}))
            env = {"MONGODB_URI_SECRET_ID": name}
        else:
            aws.client("ssm").put_parameter(Name=f"/{name}", Value=ferretdb.uri, Type="SecureString")
            env = {"MONGODB_URI_PARAMETER": f"/{name}"}
        fn = environment(SAMPLE_FUNCTIONS / "python", None,
                         env=env | {"AWS_ENDPOINT_URL": aws.url, "ITEMS_COLLECTION": "aws"})
        marker = uuid.uuid4().hex

        result = fn.invoke(create(marker))

        assert status_code(result) == 201, result.body
        assert mongo[database]["aws"].count_documents({"name": marker}) == 1
        assert ferretdb.uri not in fn.log_text(), "the connection string was logged"


def test_a_missing_secret_is_an_init_error(environment):
    with MotoServer() as aws:
        fn = environment(SAMPLE_FUNCTIONS / "python", None,
                         env={"MONGODB_URI_SECRET_ID": "no/such/secret", "AWS_ENDPOINT_URL": aws.url})

        result = fn.invoke(http_event("GET", "/items"))

        log = fn.log_text()
        assert "Extension.DataSourceInvalid" in log and "no/such/secret" in log, log
        assert result.status != 200 or result.function_error is not None


def test_connections_per_environment_idle_and_under_eight_concurrent_requests(
    environment, ferretdb, database, record_timing
):
    fn = environment(SAMPLE_FUNCTIONS / "python", ferretdb.uri, env={"ITEMS_COLLECTION": "conn"})
    assert status_code(fn.invoke(create("first"))) == 201
    pid = fn.extension_pid()
    time.sleep(0.5)
    idle = established_to(pid, ferretdb.port)

    stop = threading.Event()
    peak = [0]
    at_peak: dict = {}

    def watch():
        while not stop.is_set():
            ports = local_ports_to(pid, ferretdb.port)
            if len(ports) > peak[0]:
                peak[0] = len(ports)
                at_peak.update(ports=ports, at=time.monotonic())
            time.sleep(0.002)

    def client(i):
        for _ in range(40):
            status, _, _ = sidecar_request(fn, "POST", "/action/find",
                                           {"database": database, "collection": "conn", "filter": {}})
            assert status == 200

    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client, range(8)))
    stop.set()
    watcher.join()

    record_timing("connections idle", idle, "conns")
    record_timing("connections peak, 8 concurrent", peak[0], "conns")
    assert idle <= 2, f"an idle environment holds {idle} connections"
    # Should it fail: which sockets (their local ports) at the peak, and the driver's own
    # figures, from its pool events, as /health reports them.
    assert peak[0] <= 1 + 4, (f"{peak[0]} connections under load, more than monitor + maxPoolSize: "
                              f"local ports {at_peak.get('ports')}; /health {sidecar_request(fn, 'GET', '/health')[2]}")
