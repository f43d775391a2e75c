"""What the client says when a call fails part-way: a write is never sent twice, and a failure
after a write may have reached the sidecar carries ``outcome == "unknown"``; a sidecar killed
(SIGKILL) with a request in flight makes the call fail at once, naming the sidecar."""

import threading
import time

import pytest

from mongo_sidecar import MongoSidecar, MongoSidecarError
from mongo_sidecar.transport import WRITE_ACTIONS
from support import CountingProxy, DroppingServer, ScriptedServer, Sidecar, database_uri

# Far more than a failing call needs, far less than a hang: the calls below set no client timeout.
NOT_A_HANG_S = 5


def collection_at(port, **options):
    return MongoSidecar(port=port, token="t", **options).db("d").collection("c")


@pytest.mark.parametrize("status, code, outcome", [
    (504, "WriteOutcomeUnknown", "unknown"),
    (502, "WriteOutcomeUnknown", "unknown"),
    (500, "WriteConcernFailed", "applied"),
])
def test_a_write_answered_with_an_outcome_exposes_it_and_is_not_retried(status, code, outcome):
    server = ScriptedServer([(status, {}, {"error": "the write's fate", "error_code": code, "outcome": outcome}),
                             (200, {}, {"insertedId": {"$numberInt": "1"}})])
    try:
        with pytest.raises(MongoSidecarError) as caught:
            collection_at(server.port).insert_one({"_id": 1})
        assert (caught.value.status, caught.value.code, caught.value.outcome) == (status, code, outcome)
        assert caught.value.retry_after is None
        assert server.requests == 1
    finally:
        server.close()


def test_an_error_without_an_outcome_has_none():
    server = ScriptedServer([(400, {}, {"error": "bad", "error_code": "InvalidParameter"})])
    try:
        with pytest.raises(MongoSidecarError) as caught:
            collection_at(server.port).insert_one({"_id": 1})
        assert caught.value.outcome is None
    finally:
        server.close()


def test_a_write_on_a_kept_alive_connection_dropped_as_it_arrives_is_not_sent_again():
    server = DroppingServer()
    try:
        coll = collection_at(server.port)
        assert coll.find_one({}) is None
        with pytest.raises(MongoSidecarError) as caught:
            coll.insert_one({"_id": 1})
        err = caught.value
        assert (err.status, err.code, err.outcome) == (0, "SidecarUnreachable", "unknown")
        assert f"mongo-sidecar at 127.0.0.1:{server.port}" in str(err)
        assert "outcome is unknown" in str(err)
        assert (server.connections, server.requests) == (1, 2), "the write went out once"
    finally:
        server.close()


def test_a_read_on_a_kept_alive_connection_dropped_as_it_arrives_is_sent_again():
    server = DroppingServer()
    try:
        coll = collection_at(server.port)
        assert coll.find_one({}) is None
        assert coll.find_one({}) is None
        assert (server.connections, server.requests) == (2, 3)
    finally:
        server.close()


def test_a_failure_before_connecting_leaves_no_outcome(tmp_path):
    client = MongoSidecar(socket_path=str(tmp_path / "nothing-listens-here.sock"), token="t")
    with pytest.raises(MongoSidecarError) as caught:
        client.db("d").collection("c").insert_one({"_id": 1})
    assert (caught.value.code, caught.value.outcome) == ("SidecarUnreachable", None)


def test_every_action_that_can_change_data_is_a_write():
    assert WRITE_ACTIONS == {"insertOne", "insertMany", "updateOne", "updateMany", "replaceOne", "deleteOne",
                             "deleteMany", "findOneAndUpdate", "findOneAndReplace", "findOneAndDelete",
                             "bulkWrite", "aggregate"}


def test_a_pooled_connection_the_sidecar_closed_while_idle_is_not_used_for_a_write(sidecar):
    """The closed connection is found before the write goes out: the write is sent once, on a
    new connection, and succeeds."""
    proxy = CountingProxy(sidecar.port)
    try:
        coll = MongoSidecar(port=proxy.port, token=sidecar.token, timeout=10).db("client_py").collection("idle_write")
        coll.delete_many({})
        proxy.drop_connections()
        time.sleep(0.1)
        coll.insert_one({"_id": "once"})
        assert proxy.connections == 2
        assert coll.count_documents({}) == 1
    finally:
        proxy.close()


# --- a sidecar killed with a request in flight -----------------------------------------------


@pytest.fixture
def held_sidecar():
    """A sidecar whose database traffic passes through a proxy the test can hold, so that an
    operation stays in flight inside the sidecar until the test kills it."""
    database_port = int(database_uri().rsplit(":", 1)[1].split("/")[0])
    proxy = CountingProxy(database_port)
    sidecar = Sidecar(MONGODB_URI=f"mongodb://127.0.0.1:{proxy.port}/")
    yield sidecar, proxy
    proxy.close()
    if sidecar._proc.poll() is None:
        sidecar.stop()


def call_in_thread(call):
    """Runs `call` in a thread; returns a function that waits for it and gives (error, seconds)."""
    outcome = {}

    def run():
        started = time.monotonic()
        try:
            call()
        except MongoSidecarError as err:
            outcome["error"] = err
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def finish(timeout):
        thread.join(timeout)
        assert not thread.is_alive(), f"the call still hangs {timeout} s after the sidecar was killed"
        return outcome.get("error"), outcome["seconds"]

    return finish


@pytest.mark.parametrize("action", ["find_one", "insert_one"])
def test_a_sidecar_killed_mid_request_fails_the_call_at_once_naming_the_sidecar(held_sidecar, action):
    sidecar, proxy = held_sidecar
    coll = MongoSidecar(port=sidecar.port, token=sidecar.token).db("client_py").collection("killed")
    coll.find_one({})  # a kept-alive connection, as in a warm function
    proxy.hold()
    finish = call_in_thread(lambda: getattr(coll, action)({"_id": "in-flight"}))
    assert proxy.held.wait(NOT_A_HANG_S), "the operation never reached the database"
    killed_at = time.monotonic()
    sidecar.kill()
    err, _ = finish(NOT_A_HANG_S)
    assert err is not None, "the call succeeded although the sidecar was killed"
    assert time.monotonic() - killed_at < NOT_A_HANG_S
    assert (err.status, err.code) == (0, "SidecarUnreachable")
    assert f"mongo-sidecar at 127.0.0.1:{sidecar.port}" in str(err)
    assert err.outcome == ("unknown" if action == "insert_one" else None)

    started = time.monotonic()
    with pytest.raises(MongoSidecarError) as caught:
        coll.find_one({})
    assert time.monotonic() - started < NOT_A_HANG_S
    assert caught.value.code == "SidecarUnreachable"
    assert "refused" in str(caught.value)
