"""End to end: a sample function (Node.js or Python) runs under the Lambda emulator with the
mongo-sidecar extension in /opt/extensions; its handler calls the extension over localhost and
the extension talks to a real FerretDB. What the extension wrote is checked with pymongo
directly, never through the extension itself."""

import uuid

import pytest
from bson import ObjectId

from harness.lambda_env import SHUTDOWN_DEADLINE_MS

RUNTIMES = ["node", "python"]
COLLECTION = "items"


def new_item() -> dict:
    return {"marker": uuid.uuid4().hex, "name": "widget", "qty": 3, "tags": ["a", "b"], "dims": {"w": 1.5}}


def without_id(document: dict) -> dict:
    return {k: v for k, v in document.items() if k != "_id"}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_insert_invocation_writes_document_through_extension_to_mongodb(
    runtime, start_env, mongo, database, record_timing
):
    fn = start_env(runtime)
    item = new_item()

    result = fn.invoke({"op": "insert", "collection": COLLECTION, "document": item})

    assert result.status == 200 and result.function_error is None, result.body
    assert fn.extension_pid() is not None, "the extension is not running in the environment"
    record_timing("cold insert invocation", result.elapsed_ms)
    stored = list(mongo[database][COLLECTION].find({}))
    assert [without_id(doc) for doc in stored] == [item]
    assert stored[0]["_id"] == ObjectId(result.body["insertedId"])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_find_invocation_returns_document_stored_in_mongodb(runtime, start_env, mongo, database, record_timing):
    item = new_item()
    inserted_id = mongo[database][COLLECTION].insert_one(dict(item)).inserted_id
    mongo[database][COLLECTION].insert_one(new_item())  # another document the filter must skip
    fn = start_env(runtime)

    found = fn.invoke({"op": "find", "collection": COLLECTION, "filter": {"marker": item["marker"]}})
    missing = fn.invoke({"op": "find", "collection": COLLECTION, "filter": {"marker": "no-such-marker"}})

    assert found.status == 200 and found.function_error is None, found.body
    document = found.body["document"]
    assert document is not None, "findOne found nothing"
    assert without_id(document) == item
    # The Data API answers Extended JSON ({"$oid": ...}); a plain hex string would do as well.
    assert document["_id"] in ({"$oid": str(inserted_id)}, str(inserted_id))
    assert missing.status == 200 and missing.body == {"document": None}
    record_timing("warm find invocation", missing.elapsed_ms)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_extension_exits_by_itself_after_shutdown(runtime, start_env, record_timing):
    fn = start_env(runtime)
    warmup = fn.invoke({"op": "find", "collection": COLLECTION, "filter": {}})  # starts the extension
    assert warmup.function_error is None, warmup.body
    assert fn.extension_pid() is not None, "the extension is not running in the environment"

    stopped = fn.stop()

    assert stopped.extension_exit_ms is not None, "the extension was still running after SIGTERM + 5 s"
    record_timing("SIGTERM/SHUTDOWN -> exit", stopped.extension_exit_ms)
    assert not stopped.extension_killed, "the emulator SIGKILLed the extension after the deadline"
    assert stopped.extension_exited_by_itself, (
        f"the extension took {stopped.extension_exit_ms:.0f} ms, past the {SHUTDOWN_DEADLINE_MS} ms deadline"
    )


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_insert_fails_visibly_when_extension_is_missing(runtime, start_env, mongo, database):
    """Proves the other tests can fail: without the extension nothing reaches MongoDB."""
    fn = start_env(runtime, with_extension=False)
    item = new_item()

    result = fn.invoke({"op": "insert", "collection": COLLECTION, "document": item})

    assert result.function_error is not None, f"the invocation did not report an error: {result.body}"
    assert "ECONNREFUSED" in str(result.body) or "Connection refused" in str(result.body), result.body
    assert fn.extension_pid() is None
    assert mongo[database][COLLECTION].find_one({"marker": item["marker"]}) is None


def test_environments_side_by_side_each_use_their_own_extension(start_env, mongo, database):
    envs = {runtime: start_env(runtime) for runtime in RUNTIMES}
    items = {runtime: new_item() | {"runtime": runtime} for runtime in RUNTIMES}

    results = {rt: fn.invoke({"op": "insert", "collection": COLLECTION, "document": items[rt]})
               for rt, fn in envs.items()}

    for rt, result in results.items():
        assert result.function_error is None, f"{rt}: {result.body}"
    pids = {rt: fn.extension_pid() for rt, fn in envs.items()}
    assert None not in pids.values() and len(set(pids.values())) == len(RUNTIMES), pids
    for rt in RUNTIMES:
        stored = mongo[database][COLLECTION].find_one({"marker": items[rt]["marker"]})
        assert stored is not None and stored["runtime"] == rt
    for rt, fn in envs.items():
        assert fn.stop().extension_exited_by_itself, rt
