"""`MONGO_SIDECAR_MAX_DOCUMENTS`: a capped find or aggregate larger than one 64 KiB chunk is
answered whole, never freezes the sidecar, and a result over the cap is refused before any byte
(a clean 400) or, once streaming began, cut short so that every HTTP/1.1 client sees it failed.
Memory stays bounded by one chunk plus one cursor batch, whatever the cap."""

import http.client
import json

from support import action, health, in_background

ITEM_PAD = "x" * 180  # about 200 bytes of BSON per document


def fill(mongo, database: str, n: int, pad: str = ITEM_PAD) -> None:
    mongo[database]["items"].insert_many([{"i": i, "pad": pad} for i in range(n)])


def test_a_capped_find_over_one_chunk_is_answered_whole_while_health_keeps_answering(
    mongo, database, ferretdb, start_sidecar
):
    fill(mongo, database, 1000)
    sidecar = start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_MAX_DOCUMENTS": "50000"})

    thread, outcome = in_background(action, sidecar, "find",
                                    {"database": database, "collection": "items", "filter": {}},
                                    timeout=10)
    health_status, _, health_elapsed = health(sidecar, timeout=5)
    thread.join(12)

    assert "error" not in outcome, f"the find got no answer: {outcome.get('error')!r}"
    status, _, body, _ = outcome["result"]
    assert status == 200, body
    assert [d["i"] for d in body["documents"]] == list(range(1000))
    assert health_status == 200 and health_elapsed < 5


def test_the_same_for_aggregate(mongo, database, ferretdb, start_sidecar):
    fill(mongo, database, 1000)
    sidecar = start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_MAX_DOCUMENTS": "50000"})

    status, _, body, _ = action(sidecar, "aggregate", {"database": database, "collection": "items",
                                                       "pipeline": [{"$sort": {"i": 1}}]}, timeout=10)

    assert status == 200, body
    assert len(body["documents"]) == 1000


def test_a_result_over_the_cap_found_in_the_first_chunk_is_a_clean_400(mongo, database, ferretdb, start_sidecar):
    fill(mongo, database, 1000)
    sidecar = start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_MAX_DOCUMENTS": "100"})

    status, headers, body, _ = action(sidecar, "find", {"database": database, "collection": "items"}, timeout=10)

    assert status == 400 and body["error_code"] == "InvalidParameter", body
    assert "MONGO_SIDECAR_MAX_DOCUMENTS" in body["error"]
    assert "transfer-encoding" not in headers


def test_a_result_over_the_cap_found_while_streaming_ends_as_a_failed_stream(
    mongo, database, ferretdb, start_sidecar
):
    fill(mongo, database, 1000)
    sidecar = start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_MAX_DOCUMENTS": "600"})
    conn = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=10)
    body = json.dumps({"database": database, "collection": "items"})

    conn.request("POST", "/action/find", body, {"Content-Type": "application/json"})
    # The status line may have left before the cap was reached (then the chunked body ends without
    # its last chunk), or still be in the server's buffer when the connection is cut: either way
    # the client must see a failure, never a complete-looking answer.
    try:
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Transfer-Encoding") == "chunked"
        data = response.read()
    except (http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionResetError):
        data = None
    conn.close()
    assert data is None, f"a result over the cap was ended as if whole ({len(data)} bytes)"
    # And the sidecar is fine afterwards.
    assert health(sidecar)[0] == 200


def test_a_limit_within_the_cap_streams_without_holding_the_result(mongo, database, ferretdb, start_sidecar):
    fill(mongo, database, 20_000, pad="y" * 480)  # about 10 MB as JSON
    sidecar = start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_MAX_DOCUMENTS": "1000000"})
    before = vm_hwm_kib(sidecar.pid())

    status, _, body, _ = action(sidecar, "find", {"database": database, "collection": "items",
                                                  "batchSize": 200}, timeout=60)

    assert status == 200 and len(body["documents"]) == 20_000
    growth_mib = (vm_hwm_kib(sidecar.pid()) - before) / 1024
    # One 64 KiB chunk and one cursor batch of 200 documents, plus the allocator's slack: far below
    # the 10 MB a buffered answer would take.
    assert growth_mib < 6, f"peak RSS grew {growth_mib:.1f} MiB while streaming a capped 10 MB find"


def vm_hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")

