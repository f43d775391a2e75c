"""How the client reaches the real sidecar: the token it sends, TCP and the Unix socket,
kept-alive connections, and how the sidecar's errors surface."""

import os
import stat
import time

import pytest

from mongo_sidecar import MongoSidecar, MongoSidecarError
from support import CountingProxy, Sidecar, free_port

DB = "client_py_transport"


def probe(sidecar, **options):
    """find_one through a client made with ``options`` (after the environment is set)."""
    options.setdefault("port", sidecar.port)
    return MongoSidecar(timeout=10, **options).db(DB).collection("probe").find_one({"_id": "none"})


def test_the_token_is_sent_from_mongo_sidecar_token_when_no_option_gives_one(sidecar, monkeypatch):
    monkeypatch.setenv("MONGO_SIDECAR_TOKEN", sidecar.token)
    assert probe(sidecar) is None


def test_the_token_is_sent_from_aws_session_token_when_mongo_sidecar_token_is_unset(sidecar, monkeypatch):
    monkeypatch.setenv("AWS_SESSION_TOKEN", sidecar.token)
    assert probe(sidecar) is None


def test_mongo_sidecar_token_wins_over_aws_session_token_and_the_option_over_both(sidecar, monkeypatch):
    monkeypatch.setenv("MONGO_SIDECAR_TOKEN", sidecar.token)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "wrong")
    assert probe(sidecar) is None
    monkeypatch.setenv("MONGO_SIDECAR_TOKEN", "wrong")
    assert probe(sidecar, token=sidecar.token) is None


def test_the_token_is_read_at_each_call(sidecar, monkeypatch):
    coll = MongoSidecar(port=sidecar.port).db(DB).collection("probe")
    monkeypatch.setenv("MONGO_SIDECAR_TOKEN", sidecar.token)
    assert coll.find_one({"_id": "none"}) is None


def test_a_wrong_token_raises_mongo_sidecar_error_with_status_401_and_code_invalid_session(sidecar, monkeypatch):
    monkeypatch.setenv("MONGO_SIDECAR_TOKEN", "wrong-token")
    with pytest.raises(MongoSidecarError) as caught:
        probe(sidecar)
    assert caught.value.status == 401
    assert caught.value.code == "InvalidSession"
    assert caught.value.body["error_code"] == "InvalidSession"


def test_no_token_at_all_is_a_400_invalid_parameter_because_no_header_is_sent(sidecar):
    with pytest.raises(MongoSidecarError) as caught:
        probe(sidecar)
    assert (caught.value.status, caught.value.code) == (400, "InvalidParameter")
    assert "no authentication methods" in str(caught.value)


def test_the_unix_socket_is_used_when_given_as_an_option(sidecar):
    assert stat.S_ISSOCK(os.stat(sidecar.socket_path).st_mode)
    # An unused TCP port: only the socket can answer.
    client = MongoSidecar(socket_path=sidecar.socket_path, port=free_port(), token=sidecar.token, timeout=10)
    coll = client.db(DB).collection("unix")
    coll.delete_many({})
    coll.insert_one({"_id": "over-unix"})
    assert coll.find_one({}) == {"_id": "over-unix"}


def test_the_unix_socket_is_used_when_mongo_sidecar_socket_is_set(sidecar, monkeypatch):
    monkeypatch.setenv("MONGO_SIDECAR_SOCKET", sidecar.socket_path)
    monkeypatch.setenv("MONGO_SIDECAR_PORT", str(free_port()))
    monkeypatch.setenv("MONGO_SIDECAR_TOKEN", sidecar.token)
    coll = MongoSidecar(timeout=10).db(DB).collection("unix_env")
    coll.delete_many({})
    coll.insert_one({"_id": 1})
    assert coll.count_documents({}) == 1


def test_mongo_sidecar_host_and_port_select_the_tcp_address(sidecar, monkeypatch):
    monkeypatch.setenv("MONGO_SIDECAR_HOST", "127.0.0.1")
    monkeypatch.setenv("MONGO_SIDECAR_PORT", str(sidecar.port))
    monkeypatch.setenv("MONGO_SIDECAR_TOKEN", sidecar.token)
    assert MongoSidecar(timeout=10).db(DB).collection("probe").find_one({"_id": "none"}) is None


def test_sequential_calls_reuse_one_kept_alive_connection(sidecar):
    proxy = CountingProxy(sidecar.port)
    try:
        coll = MongoSidecar(port=proxy.port, token=sidecar.token, timeout=10).db(DB).collection("keepalive")
        coll.delete_many({})
        coll.insert_one({"_id": 1})
        coll.find_one({"_id": 1})
        coll.count_documents({})
        assert proxy.connections == 1
    finally:
        proxy.close()


def test_a_connection_closed_while_idle_is_replaced(sidecar):
    """A kept-alive connection the other side closed while idle (a proxy, a restart) is
    replaced: the next call opens a new one and succeeds."""
    proxy = CountingProxy(sidecar.port)
    try:
        coll = MongoSidecar(port=proxy.port, token=sidecar.token, timeout=10).db(DB).collection("idle")
        assert coll.find_one({"_id": "none"}) is None
        proxy.drop_connections()
        time.sleep(0.1)
        assert coll.find_one({"_id": "none"}) is None
        assert proxy.connections == 2
    finally:
        proxy.close()


def test_the_sidecar_keeps_an_idle_connection_open():
    """Idle time between requests is not timed by the sidecar: after a pause longer than its
    header timeout, the next call still reuses the same connection."""
    short = Sidecar(MONGO_SIDECAR_HEADER_TIMEOUT_MS="100")
    proxy = CountingProxy(short.port)
    try:
        coll = MongoSidecar(port=proxy.port, token=short.token, timeout=10).db(DB).collection("idle")
        assert coll.find_one({"_id": "none"}) is None
        time.sleep(0.4)
        assert coll.find_one({"_id": "none"}) is None
        assert proxy.connections == 1
    finally:
        proxy.close()
        assert short.stop() == 0


def test_a_duplicate_key_is_a_409_duplicate_key_error_with_server_code_11000(coll):
    coll.insert_one({"_id": "same"})
    with pytest.raises(MongoSidecarError) as caught:
        coll.insert_one({"_id": "same"})
    err = caught.value
    assert (err.status, err.code, err.server_code, err.code_name) == (409, "DuplicateKey", 11000, "DuplicateKey")
    assert str(err).startswith("insertOne: duplicate key")


def test_an_invalid_request_is_a_400_invalid_parameter_naming_the_problem(coll):
    with pytest.raises(MongoSidecarError) as caught:
        coll.update_one({}, {"plain": "document"})
    assert (caught.value.status, caught.value.code) == (400, "InvalidParameter")
    assert "update operators" in str(caught.value)
    with pytest.raises(MongoSidecarError, match='unknown field "noSuchOption"'):
        coll.find_one({}, no_such_option=1)


def test_an_unknown_action_is_a_404_action_not_found(client):
    with pytest.raises(MongoSidecarError) as caught:
        client.action("dropDatabase", DB, "x")
    assert (caught.value.status, caught.value.code) == (404, "ActionNotFound")


def test_the_raw_action_call_returns_the_data_api_body_decoded(client):
    assert client.action("findOne", DB, "probe", {"filter": {"_id": "none"}}) == {"document": None}


def test_health_reports_ready(sidecar):
    assert MongoSidecar(port=sidecar.port, timeout=10).health()["status"] == "ready"


def test_an_address_where_nothing_listens_raises_sidecar_unreachable():
    with pytest.raises(MongoSidecarError) as caught:
        MongoSidecar(port=free_port(), token="x", timeout=10).db(DB).collection("x").find_one({})
    assert (caught.value.status, caught.value.code) == (0, "SidecarUnreachable")
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)
