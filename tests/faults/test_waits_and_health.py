"""Every wait a request can meet ends within its time budget (its maxTimeMS, the sidecar's
maximum, the invocation's deadline less the margin): the wait for a first connection, the
revalidation after a quiet spell, the pool. And `/health` reports the data source's state without
ever changing it: a slow health probe must not take the database offline for everybody."""

import time

from support import action, health, in_background


def test_the_wait_for_a_first_connection_ends_within_the_requests_time_limit(database, proxy, start_sidecar):
    p = proxy()
    p.stall()  # the server never answers: the sidecar stays warming
    sidecar = start_sidecar(p.uri, env={"MONGO_SIDECAR_READY_TIMEOUT_MS": "10000"}, wait_ready=False)

    status, headers, body, elapsed = action(sidecar, "findOne", {"database": database, "collection": "c",
                                                                 "maxTimeMS": 300})

    assert status in (503, 504), body
    assert body["error_code"] in ("Warming", "OperationTimedOut", "DatabaseUnavailable"), body
    assert elapsed < 1.5, f"waited {elapsed:.2f} s for a request with maxTimeMS 300"


def test_revalidation_after_a_quiet_spell_ends_within_the_requests_time_limit(database, proxy, start_sidecar):
    p = proxy()
    sidecar = start_sidecar(p.uri, env={"MONGO_SIDECAR_REVALIDATE_AFTER_MS": "100"})
    assert action(sidecar, "insertOne", {"database": database, "collection": "c", "document": {}})[0] == 200
    p.stall()  # the path to the server dies while the environment is "frozen"
    time.sleep(0.3)

    status, _, body, elapsed = action(sidecar, "findOne", {"database": database, "collection": "c",
                                                           "maxTimeMS": 300})

    assert status in (503, 504), body
    assert elapsed < 1.5, f"waited {elapsed:.2f} s for a request with maxTimeMS 300"


def test_a_busy_pool_makes_a_request_wait_only_until_its_limit(mongo, database, proxy, start_sidecar):
    mongo[database]["c"].insert_one({"k": 1})
    p = proxy()
    sidecar = start_sidecar(p.uri)
    p.delay_replies("find", 3.0)
    busy = [in_background(action, sidecar, "find", {"database": database, "collection": "c"})
            for _ in range(4)]  # maxPoolSize is 4
    time.sleep(0.3)

    status, _, body, elapsed = action(sidecar, "countDocuments", {"database": database, "collection": "c",
                                                                  "maxTimeMS": 400})

    assert status in (503, 504), body
    assert elapsed < 1.5, f"waited {elapsed:.2f} s for a request with maxTimeMS 400"
    for thread, _ in busy:
        thread.join(10)


def test_health_answers_from_state_and_never_takes_the_source_offline(mongo, database, proxy, start_sidecar):
    mongo[database]["c"].insert_one({"k": 1})
    p = proxy()
    sidecar = start_sidecar(p.uri)
    p.delay_replies("find", 2.5)
    busy = [in_background(action, sidecar, "find", {"database": database, "collection": "c"})
            for _ in range(4)]  # every pooled connection is busy with a slow query
    time.sleep(0.3)

    status, body, elapsed = health(sidecar)
    write = action(sidecar, "insertOne", {"database": database, "collection": "c", "document": {"k": 2}})

    assert status == 200 and body["status"] == "ready", body
    assert elapsed < 0.5, f"/health took {elapsed:.2f} s"
    assert body["pool"]["inUse"] == 4
    assert write[0] == 200, f"a write after the health probe failed: {write[2]}"
    for thread, outcome in busy:
        thread.join(10)
        assert outcome["result"][0] == 200


def test_health_does_not_probe_a_dead_path_either(mongo, database, proxy, start_sidecar):
    mongo[database]["c"].insert_one({"k": 1})
    p = proxy()
    sidecar = start_sidecar(p.uri)
    p.stall()

    probes = [health(sidecar) for _ in range(3)]
    p.heal()
    status, _, body, _ = action(sidecar, "findOne", {"database": database, "collection": "c"})

    assert all(elapsed < 0.5 for _, _, elapsed in probes), probes
    assert status == 200, f"the health probes took the data source offline: {body}"
