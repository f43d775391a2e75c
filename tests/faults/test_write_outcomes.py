"""Writes say what is known about their outcome. A write still in flight at its deadline, or whose
connection failed after the request left, may or may not have been applied: the answer says
`WriteOutcomeUnknown`, with no Retry-After, so nobody retries an `$inc` twice. Every write also
carries a server-side time limit (maxTimeMS), so the server stops what the sidecar gave up on. Reads
whose connection failed are retried once: they change nothing."""

import time

from support import action, wait_until

WRITE_ACTIONS = {
    "insertOne": {"document": {"k": 1}},
    "insertMany": {"documents": [{"k": 2}, {"k": 3}]},
    "updateOne": {"filter": {"k": 1}, "update": {"$inc": {"n": 1}}},
    "updateMany": {"filter": {}, "update": {"$inc": {"n": 1}}},
    "replaceOne": {"filter": {"k": 2}, "replacement": {"k": 2, "replaced": True}},
    "deleteOne": {"filter": {"k": 3}},
    "deleteMany": {"filter": {"k": 99}},
    "findOneAndUpdate": {"filter": {"k": 1}, "update": {"$inc": {"n": 1}}},
    "findOneAndReplace": {"filter": {"k": 2}, "replacement": {"k": 2}},
    "findOneAndDelete": {"filter": {"k": 99}},
    "bulkWrite": {"operations": [{"insertOne": {"document": {"k": 4}}},
                                 {"updateOne": {"filter": {"k": 4}, "update": {"$set": {"b": 1}}}},
                                 {"deleteOne": {"filter": {"k": 4}}}]},
}
WRITE_COMMANDS = {"insert", "update", "delete", "findAndModify"}


def test_a_write_in_flight_at_its_deadline_reports_an_unknown_outcome(mongo, database, proxy, start_sidecar):
    p = proxy()
    sidecar = start_sidecar(p.uri, env={"MONGO_SIDECAR_MAX_TIME_MS": "400"})
    p.delay_replies("insert", 1.5)

    status, headers, body, elapsed = action(sidecar, "insertOne", {"database": database, "collection": "c",
                                                                   "document": {"marker": "late"}})

    assert status == 504, body
    assert body["error_code"] == "WriteOutcomeUnknown", body
    assert body["outcome"] == "unknown"
    assert "retry-after" not in headers
    assert "may or may not" in body["error"]
    assert elapsed < 1.4, f"answered after {elapsed:.2f} s, past the 400 ms limit"
    # The server did apply it: exactly why the answer must not invite a retry.
    wait_until(lambda: mongo[database]["c"].count_documents({"marker": "late"}) == 1, 5,
               what="the delayed insert to land")


def test_a_connection_lost_after_a_write_was_sent_reports_an_unknown_outcome(mongo, database, proxy, start_sidecar):
    mongo[database]["c"].insert_many([{"k": i, "n": 0} for i in range(3)])
    p = proxy()
    sidecar = start_sidecar(p.uri)
    p.drop_after_request("update")

    status, headers, body, _ = action(sidecar, "updateMany", {"database": database, "collection": "c",
                                                              "filter": {}, "update": {"$inc": {"n": 1}}})

    assert status == 502, body
    assert body["error_code"] == "WriteOutcomeUnknown", body
    assert body["outcome"] == "unknown"
    assert "retry-after" not in headers
    # Applied once, and only once: the sidecar did not resend it either.
    assert sorted(d["n"] for d in mongo[database]["c"].find()) == [1, 1, 1]
    assert len(p.commands_named("update")) == 1


WRITE_CONCERN_ERROR = {"writeConcernError": {"code": 64, "codeName": "WriteConcernFailed",
                                             "errmsg": "waiting for replication timed out",
                                             "errInfo": {"wtimeout": True}}}


def test_a_write_concern_error_says_the_write_was_applied(mongo, database, proxy, start_sidecar):
    """A replica set applied the write but could not confirm it at the requested level: not a
    client error, not a retry, and the result of what was applied comes with it."""
    mongo[database]["c"].insert_one({"k": 1, "n": 0})
    p = proxy()
    sidecar = start_sidecar(p.uri)
    p.amend_replies("update", WRITE_CONCERN_ERROR)
    p.amend_replies("findAndModify", WRITE_CONCERN_ERROR)

    status, headers, body, _ = action(sidecar, "updateOne", {"database": database, "collection": "c",
                                                             "filter": {"k": 1}, "update": {"$inc": {"n": 1}}})

    assert status == 502, body
    assert body["error_code"] == "WriteConcernFailed", body
    assert body["outcome"] == "applied" and "applied" in body["error"], body
    assert "waiting for replication timed out" in body["error"], body
    assert body["result"] == {"matchedCount": 1, "modifiedCount": 1}, body
    assert "retry-after" not in headers

    status, headers, body, _ = action(sidecar, "findOneAndUpdate", {
        "database": database, "collection": "c", "filter": {"k": 1}, "update": {"$inc": {"n": 1}}})

    assert status == 502 and body["error_code"] == "WriteConcernFailed", body
    assert body["outcome"] == "applied", body
    found = body["result"]["document"]
    assert {"k": found["k"], "n": found["n"]} == {"k": 1, "n": 1}, body  # as it was before the update
    assert "retry-after" not in headers
    # Each applied once: nothing was resent.
    assert mongo[database]["c"].find_one({"k": 1})["n"] == 2
    assert len(p.commands_named("update")) == 1 and len(p.commands_named("findAndModify")) == 1


def test_a_bulk_write_stopped_at_its_deadline_still_reports_what_was_applied(
    mongo, database, proxy, start_sidecar
):
    p = proxy()
    sidecar = start_sidecar(p.uri, env={"MONGO_SIDECAR_MAX_TIME_MS": "500"})
    p.delay_replies("update", 1.5)

    status, _, body, _ = action(sidecar, "bulkWrite", {
        "database": database, "collection": "c",
        "operations": [{"insertOne": {"document": {"k": 1}}},
                       {"updateOne": {"filter": {"k": 1}, "update": {"$set": {"done": True}}}},
                       {"insertOne": {"document": {"k": 2}}}]})

    assert status == 504, body
    assert body["error_code"] == "WriteOutcomeUnknown", body
    assert body["failedIndex"] == 1
    assert body["applied"]["insertedCount"] == 1
    assert body["applied"]["matchedCount"] == 0
    time.sleep(1.2)
    assert mongo[database]["c"].count_documents({"k": 2}) == 0, "an operation after the unknown one ran"


def test_every_write_carries_a_server_side_time_limit_within_the_sidecars(database, proxy, start_sidecar):
    p = proxy()
    sidecar = start_sidecar(p.uri, env={"MONGO_SIDECAR_MAX_TIME_MS": "5000"})

    for name, fields in WRITE_ACTIONS.items():
        status, _, body, _ = action(sidecar, name, {"database": database, "collection": "c", **fields})
        assert status == 200, (name, body)

    writes = [c for c in p.commands if c.name in WRITE_COMMANDS]
    assert {c.name for c in writes} == WRITE_COMMANDS
    for command in writes:
        limit = command.body.get("maxTimeMS")
        assert limit is not None and 0 < limit <= 5000, (command.name, command.body)


def test_distinct_is_bounded_on_the_server_where_the_server_takes_it(database, mongo, proxy, start_sidecar):
    mongo[database]["c"].insert_many([{"k": "a"}, {"k": "b"}, {"k": "a"}])
    p = proxy()
    sidecar = start_sidecar(p.uri, env={"MONGO_SIDECAR_MAX_TIME_MS": "5000"})

    for _ in range(2):
        status, _, body, _ = action(sidecar, "distinct", {"database": database, "collection": "c", "key": "k"})
        assert status == 200, body
        assert sorted(body["values"]) == ["a", "b"]

    sent = p.commands_named("distinct")
    # The first asks with the limit; FerretDB refuses maxTimeMS on distinct, so the sidecar asks again
    # without it and remembers, and the second distinct goes without it at once.
    assert 0 < sent[0].body.get("maxTimeMS", 0) <= 5000, sent[0].body
    assert "maxTimeMS" not in sent[-1].body
    assert len(sent) == 3


def test_a_read_whose_connection_failed_is_retried_once(mongo, database, proxy, start_sidecar):
    mongo[database]["c"].insert_one({"k": 1})
    p = proxy()
    sidecar = start_sidecar(p.uri)
    p.drop_after_request("find")

    status, _, body, _ = action(sidecar, "findOne", {"database": database, "collection": "c", "filter": {"k": 1}})

    assert status == 200, body
    assert body["document"]["k"] == 1
    assert len(p.commands_named("find")) == 2
