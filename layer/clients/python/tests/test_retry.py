"""The client's retry rules, against small local servers of the test's own that misbehave on
purpose (the real sidecar cannot be made to do these on cue): a 503 Warming is retried exactly
once, after Retry-After capped at max_retry_wait; other 503s are not; a request sent on a
kept-alive connection the server had already dropped is sent again on a new one."""

import time

import pytest

from mongo_sidecar import MongoSidecar, MongoSidecarError
from support import DroppingServer, SilentServer

WARMING = (503, {"Retry-After": "0"}, {"error": "the database connection is still warming up", "error_code": "Warming"})
FOUND = (200, {}, {"document": {"_id": {"$numberInt": "1"}}})


def collection_at(server, **options):
    return MongoSidecar(port=server.port, token="t", timeout=10, **options).db("d").collection("c")


def test_a_503_warming_is_retried_once_and_the_second_answer_returned(scripted):
    server = scripted(WARMING, FOUND)
    assert collection_at(server).find_one({}) == {"_id": 1}
    assert server.requests == 2


def test_a_second_503_warming_is_not_retried_again_and_surfaces_as_the_error(scripted):
    server = scripted(WARMING, WARMING, FOUND)
    with pytest.raises(MongoSidecarError) as caught:
        collection_at(server).find_one({})
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (503, "Warming", 0)
    assert server.requests == 2


@pytest.mark.parametrize("code", ["Overloaded", "DatabaseUnavailable"])
def test_other_503s_are_not_retried(scripted, code):
    server = scripted((503, {"Retry-After": "0"}, {"error": "busy", "error_code": code}), FOUND)
    with pytest.raises(MongoSidecarError) as caught:
        collection_at(server).find_one({})
    assert caught.value.code == code
    assert server.requests == 1


def test_the_wait_honours_retry_after_but_never_exceeds_the_cap_of_1_s_by_default(scripted):
    long_wait = (503, {"Retry-After": "30"}, WARMING[2])
    server = scripted(long_wait, FOUND, long_wait, FOUND)
    started = time.monotonic()
    collection_at(server).find_one({})
    default_wait = time.monotonic() - started
    assert 0.95 <= default_wait < 2, f"waited {default_wait:.2f} s with the default cap"

    started = time.monotonic()
    collection_at(server, max_retry_wait=0.1).find_one({})
    capped_wait = time.monotonic() - started
    assert 0.095 <= capped_wait < 0.9, f"waited {capped_wait:.2f} s with a 0.1 s cap"


def test_a_short_retry_after_is_honoured_as_given(scripted):
    server = scripted(WARMING, FOUND)
    started = time.monotonic()
    collection_at(server).find_one({})
    assert time.monotonic() - started < 0.5


def test_a_request_on_a_kept_alive_connection_the_server_dropped_is_sent_again_on_a_new_one():
    server = DroppingServer()
    try:
        coll = collection_at(server)
        assert coll.find_one({}) is None
        assert coll.find_one({}) is None, "the second call succeeds despite the dropped connection"
        assert (server.connections, server.requests) == (2, 3)
    finally:
        server.close()


def test_a_failure_on_a_new_connection_is_not_retried():
    server = DroppingServer(drop_first=True)
    try:
        with pytest.raises(MongoSidecarError) as caught:
            collection_at(server).find_one({})
        assert caught.value.code == "SidecarUnreachable"
        assert server.requests == 1
    finally:
        server.close()


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_connection_that_fails_after_the_answer_began_is_not_retried(how):
    server = DroppingServer(cut_second=how)
    try:
        coll = collection_at(server)
        assert coll.find_one({}) is None
        with pytest.raises(MongoSidecarError) as caught:
            coll.find_one({})
        assert caught.value.code == "SidecarUnreachable"
        assert (server.connections, server.requests) == (1, 2)
    finally:
        server.close()


def test_no_answer_within_the_timeout_is_a_client_timeout_error():
    server = SilentServer()
    try:
        started = time.monotonic()
        with pytest.raises(MongoSidecarError) as caught:
            MongoSidecar(port=server.port, token="t", timeout=0.2).db("d").collection("c").find_one({})
        assert (caught.value.status, caught.value.code) == (0, "ClientTimeout")
        assert time.monotonic() - started < 1
    finally:
        server.close()


def test_a_call_names_its_invocation_with_the_runtime_trace_id_and_none_outside_one(scripted, monkeypatch):
    server = scripted(FOUND)
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
    monkeypatch.setenv("_X_AMZN_TRACE_ID", trace)
    collection_at(server).find_one({})
    assert server.last_headers.get("X-Amzn-Trace-Id") == trace
    monkeypatch.delenv("_X_AMZN_TRACE_ID")
    collection_at(server).find_one({})
    assert "X-Amzn-Trace-Id" not in server.last_headers
