"""`Server-Timing` on every answer to an action, and logs that cost nothing when all is well: at
the default level no line per successful request, at DEBUG one structured line per request, and
every warning named after its subsystem."""

import re
import time

from harness.procs import free_port

TIMING = re.compile(r"^queue;dur=(\d+\.\d{3}), db;dur=(\d+\.\d{3}), total;dur=(\d+\.\d{3})$")


def timing(headers) -> tuple[float, float, float]:
    match = TIMING.match(headers.get("server-timing", ""))
    assert match, f"no Server-Timing in {headers}"
    return tuple(float(x) for x in match.groups())


def test_every_answer_to_an_action_carries_server_timing(mongo, database, ferretdb, start_sidecar):
    mongo[database]["c"].insert_many([{"k": i} for i in range(3)])
    sidecar = start_sidecar(ferretdb.uri)
    for action, body in [("findOne", {"filter": {"k": 1}}), ("find", {}), ("insertOne", {"document": {}}),
                         ("findOne", {"nonsense": 1})]:
        status, headers, _ = sidecar.request("POST", f"/action/{action}",
                                             {"database": database, "collection": "c", **body})
        queue, db, total = timing(headers)
        assert total >= db and total >= queue, (action, headers["server-timing"])
        if status == 200:
            assert db > 0, headers["server-timing"]


def test_the_default_level_writes_nothing_per_successful_request(database, ferretdb, start_sidecar):
    sidecar = start_sidecar(ferretdb.uri, env={"AWS_LAMBDA_LOG_LEVEL": "INFO"})
    before = sidecar.log_text().splitlines()
    for _ in range(20):
        status, _, _ = sidecar.request("POST", "/action/insertOne",
                                       {"database": database, "collection": "c", "document": {"k": 1}})
        assert status == 200
    after = sidecar.log_text().splitlines()
    assert after == before, after[len(before):]


def test_at_debug_each_request_has_one_structured_line(database, ferretdb, start_sidecar):
    sidecar = start_sidecar(ferretdb.uri, env={"AWS_LAMBDA_LOG_LEVEL": "DEBUG"})
    sidecar.request("POST", "/action/insertOne", {"database": database, "collection": "c", "document": {}})
    sidecar.request("POST", "/action/findOne", {"database": database, "collection": "c", "bogus": 1})
    lines = [line for line in sidecar.log_text().splitlines() if "mongo_sidecar::http:" in line]
    served = [line for line in lines if " served " in line]
    rejected = [line for line in lines if " rejected " in line]
    assert len(served) == 1 and len(rejected) == 1, lines
    for field in ("action=", "namespace=", "status=", "elapsed_us=", "documents=", "bytes="):
        assert field in served[0], (field, served[0])
    assert 'error_code="InvalidParameter"' in rejected[0] and 'action="findOne"' in rejected[0]


def test_warnings_name_their_subsystem(start_sidecar):
    sidecar = start_sidecar(f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=300",
                            env={"AWS_LAMBDA_LOG_LEVEL": "INFO"}, wait_ready=False)
    warnings = []
    for _ in range(100):
        warnings = [line for line in sidecar.log_text().splitlines() if " WARN " in line]
        if any("mongo_sidecar::mongo:" in line for line in warnings):
            break
        time.sleep(0.05)
    assert warnings, "no warning at all"
    for line in warnings:
        assert re.search(r" WARN mongo_sidecar::(lifecycle|http|mongo|policy): ", line), line
    assert any("mongo_sidecar::mongo:" in line and "refused" in line for line in warnings)
