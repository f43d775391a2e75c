"""Overload: ten times MONGO_SIDECAR_MAX_CONCURRENCY at once, and a pool exhausted by slow queries.

The slow queries are large unindexed sorts, which FerretDB does in memory (about 0.5 to 2 s for
10,000 documents here, more when several run at once)."""

import http.client
import json
import random
import statistics
import threading
import time

import pytest
from pymongo import MongoClient

TOKEN = "overload-token"
MAX_CONCURRENCY = 16
BURST = 10 * MAX_CONCURRENCY
SLOW_DOCUMENTS = 10_000
#: What "bounded" means for the sidecar's memory under the burst: far above what it needs (the
#: benchmark's 32-client peak is about 12 MiB), far below what would mean one buffer per request.
RSS_BOUND_MIB = 64
#: A waiting request's own deadline, as a handler would send it (maxTimeMS), far shorter than the
#: slow queries that hold the pool.
WAITER_MAX_TIME_MS = 500
#: Scheduling and the answer's own way back, on a loaded 2-core machine.
DEADLINE_SLACK_MS = 1000
#: A waiter still unanswered after this is a hang.
HANG_MS = 30_000


@pytest.fixture(scope="module")
def slow_collection(ferretdb):
    """(database, collection): 10,000 documents whose sort on `r` has no index."""
    with MongoClient(ferretdb.uri, directConnection=True) as mongo:
        coll = mongo["overload"]["slow"]
        coll.drop()
        coll.insert_many([{"_id": i, "r": random.random(), "pad": "x" * 100} for i in range(SLOW_DOCUMENTS)])
    return "overload", "slow"


def slow_sort(database: str, collection: str) -> dict:
    return {"database": database, "collection": collection, "filter": {}, "sort": {"r": -1}, "limit": 1}


def post(port: int, action: str, body: dict, timeout: float = 60) -> tuple[int, dict, dict, float]:
    """(status, lowercase headers, JSON body, elapsed ms) of one request on its own connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        started = time.perf_counter()
        conn.request("POST", f"/action/{action}", body=json.dumps(body),
                     headers={"Content-Type": "application/json", "apiKey": TOKEN})
        response = conn.getresponse()
        raw = response.read()
        elapsed_ms = (time.perf_counter() - started) * 1000
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(raw), elapsed_ms
    finally:
        conn.close()


def memory_mib(pid: int) -> dict[str, float]:
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(rest.split()[0]) / 1024
    return found


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def test_ten_times_the_concurrency_limit_is_shed_at_once_with_503_and_service_resumes(
    ferretdb, slow_collection, start_sidecar, record_figure
):
    sidecar = start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_TOKEN": TOKEN,
                                               "MONGO_SIDECAR_MAX_CONCURRENCY": str(MAX_CONCURRENCY)})
    pid = sidecar.pid()
    before = memory_mib(pid)
    answers: list[tuple[int, dict, dict, float] | BaseException] = [None] * BURST
    barrier = threading.Barrier(BURST)

    def one(i: int) -> None:
        barrier.wait()
        try:
            answers[i] = post(sidecar.port, "find", slow_sort(*slow_collection))
        except BaseException as e:  # noqa: BLE001 - a request that got no answer is the finding
            answers[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(BURST)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    after = memory_mib(pid)

    unanswered = [a for a in answers if not isinstance(a, tuple)]
    assert not unanswered, f"{len(unanswered)} of {BURST} requests got no answer: {unanswered[:3]}"
    served = [a for a in answers if a[0] == 200]
    shed = [a for a in answers if a[0] == 503]
    assert len(served) + len(shed) == BURST, sorted({a[0] for a in answers})
    assert shed, "nothing was shed at ten times the concurrency limit"
    assert len(served) >= MAX_CONCURRENCY, f"only {len(served)} served"
    for status, headers, body, _ in shed:
        assert body["error_code"] == "Overloaded", body
        assert "MONGO_SIDECAR_MAX_CONCURRENCY" in body["error"], body
        assert headers.get("retry-after") == "1", headers
    assert all(body["documents"] for _, _, body, _ in served)
    assert after["VmHWM"] < RSS_BOUND_MIB, f"peak RSS {after['VmHWM']:.1f} MiB under the burst"

    # The load is gone: full service, no restart.
    assert sidecar.proc.poll() is None, "the sidecar exited"
    follow_up = [post(sidecar.port, "findOne", {"database": slow_collection[0], "collection": slow_collection[1],
                                                "filter": {"_id": i}}) for i in range(MAX_CONCURRENCY)]
    assert [a[0] for a in follow_up] == [200] * MAX_CONCURRENCY, [a[2] for a in follow_up if a[0] != 200]
    assert sidecar.request("GET", "/health")[0] == 200

    shed_ms = [a[3] for a in shed]
    served_ms = [a[3] for a in served]
    record_figure(f"{BURST} at once, limit {MAX_CONCURRENCY}",
                  f"{len(served)} served (median {statistics.median(served_ms):.0f} ms), {len(shed)} shed with 503 "
                  f"Overloaded: p50 {percentile(shed_ms, 50):.1f} ms, p99 {percentile(shed_ms, 99):.1f} ms, "
                  f"max {max(shed_ms):.1f} ms")
    record_figure("sidecar RSS under the burst",
                  f"{before['VmRSS']:.1f} MiB before, peak {after['VmHWM']:.1f} MiB, {after['VmRSS']:.1f} MiB after")


def hold_the_pool(sidecar, database: str, collection: str, waiter_delay_s: float) -> tuple[list, list]:
    """Queues three rounds of slow sorts on the sidecar's pool, then, `waiter_delay_s` later,
    sends three quick findOne at once, each with maxTimeMS WAITER_MAX_TIME_MS. Returns
    (the waiters' answers, the sorts' answers), once everything has answered."""
    pool_size = json.loads(sidecar.request("GET", "/health")[2])["pool"]["maxPoolSize"]
    sorts: list = []
    sorting = [threading.Thread(target=lambda: sorts.append(post(sidecar.port, "find", slow_sort(database, collection))))
               for _ in range(3 * pool_size)]
    for t in sorting:
        t.start()
    time.sleep(waiter_delay_s)
    waiters: list = [None] * 3

    def wait(i: int) -> None:
        waiters[i] = post(sidecar.port, "findOne", {"database": database, "collection": collection, "filter": {"_id": i},
                                                    "maxTimeMS": WAITER_MAX_TIME_MS})

    waiting = [threading.Thread(target=wait, args=(i,)) for i in range(3)]
    for t in waiting:
        t.start()
    for t in waiting:
        t.join(HANG_MS / 1000)
    still_sorting = sum(t.is_alive() for t in sorting)
    for t in sorting:
        t.join(300)
    assert still_sorting > 0, "the sorts ended before the waiters: the pool was not held (more SLOW_DOCUMENTS?)"
    assert [a[0] for a in sorts] == [200] * len(sorting), [a[2] for a in sorts if a[0] != 200]
    return waiters, sorts


def check_waiters_ended_at_their_deadline(waiters: list) -> None:
    for answer in waiters:
        assert answer is not None, f"a waiter got no answer within {HANG_MS} ms"
        status, _, body, elapsed_ms = answer
        assert status in (503, 504), (status, body)
        assert body["error_code"] in ("OperationTimedOut", "DatabaseUnavailable", "Overloaded"), body
        assert elapsed_ms < WAITER_MAX_TIME_MS + DEADLINE_SLACK_MS, f"{elapsed_ms:.0f} ms for maxTimeMS {WAITER_MAX_TIME_MS}"


def describe(waiters: list, sorts: list) -> str:
    return (", ".join(f"{s} {b['error_code']} after {ms:.0f} ms" for s, _, b, ms in waiters)
            + f" (the sorts took {min(a[3] for a in sorts):.0f}-{max(a[3] for a in sorts):.0f} ms)")


def test_a_pool_held_by_slow_queries_makes_others_wait_only_until_their_deadline(
    ferretdb, slow_collection, start_sidecar, record_figure
):
    sidecar = start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_TOKEN": TOKEN})

    waiters, sorts = hold_the_pool(sidecar, *slow_collection, waiter_delay_s=0.3)

    check_waiters_ended_at_their_deadline(waiters)
    status, _, body, _ = post(sidecar.port, "findOne", {"database": slow_collection[0],
                                                        "collection": slow_collection[1], "filter": {"_id": 1}})
    assert status == 200 and body["document"]["_id"] == 1, body
    record_figure(f"waiting on a held pool, maxTimeMS {WAITER_MAX_TIME_MS}", describe(waiters, sorts))


def test_a_pool_held_by_slow_queries_past_a_quiet_spell_makes_others_wait_only_until_their_deadline(
    ferretdb, slow_collection, start_sidecar, record_figure
):
    # No answer from the server for longer than this while the sorts run: the next request revalidates.
    sidecar = start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_REVALIDATE_AFTER_MS": "100"})

    waiters, sorts = hold_the_pool(sidecar, *slow_collection, waiter_delay_s=0.3)

    record_figure(f"waiting on a held pool after a quiet spell, maxTimeMS {WAITER_MAX_TIME_MS}", describe(waiters, sorts))
    check_waiters_ended_at_their_deadline(waiters)
