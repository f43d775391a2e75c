"""The sidecar's Server-Timing header (where an answer's time went), read by the client: the
parser, the client's last timing, and the timing on an error."""

import threading

import pytest

from mongo_sidecar import MongoSidecar, MongoSidecarError
from mongo_sidecar.errors import parse_server_timing

TIMING = "queue;dur=0.012, db;dur=0.412, total;dur=0.520"


@pytest.mark.parametrize("header, parsed", [
    (TIMING, {"queue": 0.012, "db": 0.412, "total": 0.52}),
    ("db;dur=1", {"db": 1.0}),
    ('db;desc="database";dur=2.5,total;dur=3', {"db": 2.5, "total": 3.0}),
    ("db;dur=x, total;dur=0.5", {"total": 0.5}),
    ("cache, db;dur=0.1", {"db": 0.1}),
    ("", None),
    (None, None),
    ("garbage", None),
])
def test_server_timing_is_read_as_milliseconds_per_metric(header, parsed):
    assert parse_server_timing(header) == parsed


def test_the_client_keeps_the_last_answers_timing(scripted):
    server = scripted((200, {"Server-Timing": TIMING}, {"document": None}), (200, {}, {"document": None}))
    client = MongoSidecar(port=server.port, token="t")
    assert client.last_server_timing is None
    client.db("d").collection("c").find_one({})
    assert client.last_server_timing == {"queue": 0.012, "db": 0.412, "total": 0.52}
    client.db("d").collection("c").find_one({})
    assert client.last_server_timing is None, "an answer without the header leaves no stale timing"


def test_the_last_timing_belongs_to_the_thread_that_made_the_call(scripted):
    server = scripted((200, {"Server-Timing": TIMING}, {"document": None}))
    client = MongoSidecar(port=server.port, token="t")
    client.db("d").collection("c").find_one({})
    seen = []
    thread = threading.Thread(target=lambda: seen.append(client.last_server_timing))
    thread.start()
    thread.join()
    assert seen == [None]


def test_an_error_carries_its_answers_timing(scripted):
    server = scripted((409, {"Server-Timing": "db;dur=0.3, total;dur=0.4"},
                       {"error": "duplicate key", "error_code": "DuplicateKey", "code": 11000}))
    with pytest.raises(MongoSidecarError) as caught:
        MongoSidecar(port=server.port, token="t").db("d").collection("c").insert_one({"_id": 1})
    assert caught.value.server_timing == {"db": 0.3, "total": 0.4}


def test_the_sidecar_sends_a_timing_that_the_client_reads(client):
    client.db("client_py").collection("timing").find_one({})
    timing = client.last_server_timing
    assert set(timing) == {"queue", "db", "total"}
    assert 0 <= timing["queue"] and 0 < timing["db"] <= timing["total"]
