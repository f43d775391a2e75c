"""End to end: the sample "items" API functions run under the Lambda emulator with the layer in
/opt: the mongo-sidecar extension in /opt/extensions and the thin clients the Node.js and Python
handlers import. The Go handler (aws-lambda-go, its own runtime) and the Java one (Lambda's Java
runtime interface client) call the sidecar over plain HTTP, with no client library; they are the
builds of `make sample-functions`. Each request is the API Gateway HTTP API event it would be; the
extension talks to a real FerretDB. What a request wrote is checked with pymongo directly, never
through the extension, and what a request reads was put there with pymongo.

Also: the bash custom runtime sample, which calls the sidecar with curl."""

import base64
import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from harness.demo import MISSING_ID, http_event
from harness.lambda_env import SAMPLE_FUNCTIONS, SHUTDOWN_DEADLINE_MS, ExecutionEnvironment

RUNTIMES = ["node", "python", "go", "java"]
COLLECTION = "items"
ISO_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def answer(result) -> tuple[int, dict, object]:
    """(statusCode, headers, decoded JSON body) of the function's API Gateway answer."""
    assert result.status == 200 and result.function_error is None, f"the invocation failed: {result.body}"
    response = result.body
    body = response.get("body")
    return response["statusCode"], response.get("headers", {}), json.loads(body) if body else None


def iso(moment: datetime) -> str:
    """A date as the functions write it (JavaScript's toISOString); pymongo reads naive UTC."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def seed(mongo, database: str, name: str, *, tags=(), price=None, age_s: int = 0) -> dict:
    """An item written with pymongo, as the functions store one; returns it as stored."""
    created = datetime.now(timezone.utc) - timedelta(seconds=age_s)
    document = {"_id": ObjectId(), "name": name, "price": price, "tags": list(tags),
                "createdAt": created, "updatedAt": created}
    mongo[database][COLLECTION].insert_one(document)
    return mongo[database][COLLECTION].find_one({"_id": document["_id"]})


def as_item(document: dict) -> dict:
    """What the API should answer for a stored document."""
    return {"id": str(document["_id"]), "name": document["name"], "price": document["price"],
            "tags": document["tags"], "createdAt": iso(document["createdAt"]),
            "updatedAt": iso(document["updatedAt"])}


# --- the five operations ---------------------------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_create_stores_the_item_in_mongodb_and_answers_201_with_it(
    runtime, start_env, mongo, database, record_timing
):
    fn = start_env(runtime)
    before = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)

    result = fn.invoke(http_event("POST", "/items", {"name": "kettle", "price": 39.5, "tags": ["kitchen"]}))

    status, headers, item = answer(result)
    assert status == 201, item
    assert fn.extension_pid() is not None, "the extension is not running in the environment"
    record_timing("cold create invocation", result.elapsed_ms)
    stored = list(mongo[database][COLLECTION].find({}))
    assert len(stored) == 1
    document = stored[0]
    assert {k: document[k] for k in ("name", "price", "tags")} == {"name": "kettle", "price": 39.5,
                                                                   "tags": ["kitchen"]}
    assert isinstance(document["createdAt"], datetime) and document["createdAt"] >= before
    assert document["updatedAt"] == document["createdAt"]
    assert item == as_item(document)
    assert headers["location"] == f"/items/{document['_id']}"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_create_defaults_price_and_tags_and_takes_a_base64_body(runtime, start_env, mongo, database):
    fn = start_env(runtime)
    event = http_event("POST", "/items", base64.b64encode(json.dumps({"name": "teapot"}).encode()).decode())
    event["isBase64Encoded"] = True

    status, _, item = answer(fn.invoke(event))

    assert status == 201, item
    document = mongo[database][COLLECTION].find_one({"_id": ObjectId(item["id"])})
    assert document is not None and document["name"] == "teapot"
    assert document["price"] is None and document["tags"] == []
    assert item["price"] is None and item["tags"] == [] and ISO_DATE.fullmatch(item["createdAt"])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_get_returns_the_item_stored_in_mongodb(runtime, start_env, mongo, database, record_timing):
    wanted = seed(mongo, database, "kettle", tags=["kitchen"], price=39.5)
    seed(mongo, database, "teapot")  # another item the lookup must skip
    fn = start_env(runtime)
    fn.invoke(http_event("GET", "/items"))  # the cold start, so the next figure is a warm one

    result = fn.invoke(http_event("GET", f"/items/{wanted['_id']}"))

    status, _, item = answer(result)
    assert status == 200, item
    assert item == as_item(wanted)
    record_timing("warm get invocation", result.elapsed_ms)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_list_answers_newest_first_filtered_by_tag_and_cut_at_limit(runtime, start_env, mongo, database):
    oldest = seed(mongo, database, "kettle", tags=["kitchen"], age_s=30)
    middle = seed(mongo, database, "lamp", tags=["living"], age_s=20)
    newest = seed(mongo, database, "teapot", tags=["kitchen", "tea"], age_s=10)
    fn = start_env(runtime)

    def names(query=None):
        status, _, body = answer(fn.invoke(http_event("GET", "/items", query=query)))
        assert status == 200, body
        return [item["name"] for item in body["items"]]

    assert names() == [newest["name"], middle["name"], oldest["name"]]
    assert names({"tag": "kitchen"}) == ["teapot", "kettle"]
    assert names({"tag": "tea"}) == ["teapot"]
    assert names({"tag": "garden"}) == []
    assert names({"limit": 2}) == ["teapot", "lamp"]
    assert names({"tag": "kitchen", "limit": 1}) == ["teapot"]
    status, _, body = answer(fn.invoke(http_event("GET", "/items", query={"limit": 1})))
    assert body["items"] == [as_item(newest)]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_update_changes_the_stored_item_and_only_the_given_fields(runtime, start_env, mongo, database):
    original = seed(mongo, database, "kettle", tags=["kitchen"], price=39.5, age_s=60)
    fn = start_env(runtime)

    status, _, item = answer(fn.invoke(http_event("PATCH", f"/items/{original['_id']}",
                                                  {"price": 34.9, "tags": ["kitchen", "sale"]})))

    assert status == 200, item
    stored = mongo[database][COLLECTION].find_one({"_id": original["_id"]})
    assert stored["price"] == 34.9 and stored["tags"] == ["kitchen", "sale"]
    assert stored["name"] == "kettle" and stored["createdAt"] == original["createdAt"]
    assert stored["updatedAt"] > original["updatedAt"]
    assert item == as_item(stored)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_delete_removes_the_stored_item_and_no_other(runtime, start_env, mongo, database):
    doomed = seed(mongo, database, "kettle")
    kept = seed(mongo, database, "teapot")
    fn = start_env(runtime)

    result = fn.invoke(http_event("DELETE", f"/items/{doomed['_id']}"))
    again = fn.invoke(http_event("DELETE", f"/items/{doomed['_id']}"))

    status, _, body = answer(result)
    assert status == 204 and body is None
    assert [d["_id"] for d in mongo[database][COLLECTION].find({})] == [kept["_id"]]
    assert answer(again)[0] == 404


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_five_operations_over_tls_as_with_atlas(runtime, start_env, ferretdb, mongo, database):
    """Every Atlas connection is TLS: the same API through a sidecar that reaches FerretDB with
    tls=true and the run's own CA (tlsCAFile), checked with pymongo over plain TCP."""
    fn = start_env(runtime, env={"MONGODB_URI": ferretdb.tls_uri})

    status, _, created = answer(fn.invoke(http_event("POST", "/items", {"name": "kettle", "tags": ["kitchen"]})))
    assert status == 201, created
    stored = mongo[database][COLLECTION].find_one({"_id": ObjectId(created["id"])})
    assert stored is not None and stored["name"] == "kettle"

    status, _, item = answer(fn.invoke(http_event("GET", f"/items/{created['id']}")))
    assert status == 200 and item == as_item(stored), item
    status, _, listed = answer(fn.invoke(http_event("GET", "/items", query={"tag": "kitchen"})))
    assert status == 200 and [i["id"] for i in listed["items"]] == [created["id"]], listed

    status, _, item = answer(fn.invoke(http_event("PATCH", f"/items/{created['id']}", {"price": 12.5})))
    assert status == 200, item
    assert mongo[database][COLLECTION].find_one({"_id": stored["_id"]})["price"] == 12.5

    status, _, _ = answer(fn.invoke(http_event("DELETE", f"/items/{created['id']}")))
    assert status == 204
    assert mongo[database][COLLECTION].count_documents({}) == 0


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_missing_id_gives_404_for_get_update_and_delete(runtime, start_env, mongo, database):
    kept = seed(mongo, database, "kettle")
    fn = start_env(runtime)

    for method, body in [("GET", None), ("PATCH", {"name": "lid"}), ("DELETE", None)]:
        status, _, error = answer(fn.invoke(http_event(method, f"/items/{MISSING_ID}", body)))
        assert (status, error) == (404, {"error": f"no item with id {MISSING_ID}"}), method

    assert list(mongo[database][COLLECTION].find({})) == [kept], "a 404 request changed the collection"


# --- validation --------------------------------------------------------------------------------

SEEDED = "{seeded}"  # replaced with the id of the item each validation test seeds

# (method, path, body or raw text, query, the whole error message). Every runtime must give the
# same message, word for word.
INVALID_REQUESTS = [
    ("POST", "/items", None, None, "a JSON body is required"),
    ("POST", "/items", "{name: 'kettle'}", None, "the body is not valid JSON"),
    ("POST", "/items", '{"name": "kettle", "price": NaN}', None, "the body is not valid JSON"),
    ("POST", "/items", ["kettle"], None, "the body must be a JSON object"),
    ("POST", "/items", {}, None, "name is required"),
    ("POST", "/items", {"name": "   "}, None, "name must be a non-blank string of at most 100 characters"),
    ("POST", "/items", {"name": 42}, None, "name must be a non-blank string of at most 100 characters"),
    ("POST", "/items", {"name": "k" * 101}, None, "name must be a non-blank string of at most 100 characters"),
    ("POST", "/items", {"name": "kettle", "price": -0.01}, None, "price must be a non-negative number"),
    ("POST", "/items", {"name": "kettle", "price": "39.5"}, None, "price must be a non-negative number"),
    ("POST", "/items", {"name": "kettle", "price": True}, None, "price must be a non-negative number"),
    ("POST", "/items", '{"name": "kettle", "price": 1e400}', None, "price must be a non-negative number"),
    ("POST", "/items", {"name": "kettle", "tags": "kitchen"}, None,
     "tags must be an array of at most 20 non-blank strings of at most 50 characters"),
    ("POST", "/items", {"name": "kettle", "tags": ["kitchen", 7]}, None,
     "tags must be an array of at most 20 non-blank strings of at most 50 characters"),
    ("POST", "/items", {"name": "kettle", "tags": [f"t{i}" for i in range(21)]}, None,
     "tags must be an array of at most 20 non-blank strings of at most 50 characters"),
    ("POST", "/items", {"name": "kettle", "colour": "red", "_id": "x"}, None,
     "unknown field(s) colour, _id: an item has only name, price, tags"),
    ("POST", "/items", {"price": -1, "tags": [""]}, None,
     "name is required; price must be a non-negative number; "
     "tags must be an array of at most 20 non-blank strings of at most 50 characters"),
    ("PATCH", f"/items/{SEEDED}", {}, None, "nothing to update: give any of name, price, tags"),
    ("PATCH", f"/items/{SEEDED}", {"createdAt": "2020-01-01T00:00:00.000Z"}, None,
     "unknown field(s) createdAt: an item has only name, price, tags"),
    ("PATCH", f"/items/{SEEDED}", {"$set": {"name": "lid"}}, None,
     "unknown field(s) $set: an item has only name, price, tags"),
    ("PATCH", f"/items/{SEEDED}", {"name": ""}, None, "name must be a non-blank string of at most 100 characters"),
    ("PATCH", "/items/not-an-id", {"name": "lid"}, None, "an item id is 24 hexadecimal characters"),
    ("GET", "/items/not-an-id", None, None, "an item id is 24 hexadecimal characters"),
    ("DELETE", "/items/1234", None, None, "an item id is 24 hexadecimal characters"),
    ("GET", "/items", None, {"limit": "0"}, "limit must be an integer from 1 to 100"),
    ("GET", "/items", None, {"limit": "101"}, "limit must be an integer from 1 to 100"),
    ("GET", "/items", None, {"limit": "ten"}, "limit must be an integer from 1 to 100"),
    ("GET", "/items", None, {"limit": "2.5"}, "limit must be an integer from 1 to 100"),
]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_invalid_requests_get_400_saying_what_is_wrong_and_change_nothing(runtime, start_env, mongo, database):
    seeded = seed(mongo, database, "kettle", tags=["kitchen"], price=39.5)
    fn = start_env(runtime)

    wrong = []
    for method, path, body, query, message in INVALID_REQUESTS:
        path = path.replace(SEEDED, str(seeded["_id"]))
        status, _, error = answer(fn.invoke(http_event(method, path, body, query)))
        if (status, error) != (400, {"error": message}):
            wrong.append(f"{method} {path} {body!r} {query!r}: {status} {error}")

    assert not wrong, "\n".join(wrong)
    assert list(mongo[database][COLLECTION].find({})) == [seeded], "a refused request changed the collection"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_names_are_measured_in_characters_not_bytes_or_utf16_units(runtime, start_env, mongo, database):
    fn = start_env(runtime)
    longest = "🫖" * 100  # 100 characters, 200 UTF-16 units, 400 bytes

    created = answer(fn.invoke(http_event("POST", "/items", {"name": longest})))
    refused = answer(fn.invoke(http_event("POST", "/items", {"name": longest + "🫖"})))

    assert created[0] == 201, created
    assert mongo[database][COLLECTION].find_one({"_id": ObjectId(created[2]["id"])})["name"] == longest
    assert refused[0] == 400, refused
    assert mongo[database][COLLECTION].count_documents({}) == 1


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_unknown_routes_get_404_and_other_methods_405_with_allow(runtime, start_env):
    fn = start_env(runtime)

    unknown = answer(fn.invoke(http_event("GET", "/orders")))
    put = answer(fn.invoke(http_event("PUT", f"/items/{MISSING_ID}", {"name": "lid"})))
    delete_all = answer(fn.invoke(http_event("DELETE", "/items")))

    assert unknown[0] == 404 and unknown[2] == {"error": "no route for GET /orders"}
    assert put[0] == 405 and put[1]["allow"] == "GET, PATCH, DELETE", put
    assert delete_all[0] == 405 and delete_all[1]["allow"] == "POST, GET", delete_all


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_items_api_works_within_the_templates_allow_list_and_is_refused_outside_it(
    runtime, start_env, mongo, database
):
    """sample-function/template.yaml limits the extension to the items collection
    (MONGO_SIDECAR_ALLOW=<db>.<collection>): every operation the API uses must pass it, and a
    function pointed at another collection must be refused (a 500: a misconfiguration)."""
    allowed = start_env(runtime, env={"MONGO_SIDECAR_ALLOW": f"{database}.{COLLECTION}"})
    elsewhere = start_env(runtime, env={"MONGO_SIDECAR_ALLOW": f"{database}.{COLLECTION}",
                                        "ITEMS_COLLECTION": "other"})

    status, _, item = answer(allowed.invoke(http_event("POST", "/items", {"name": "kettle"})))
    assert status == 201, item
    path = f"/items/{item['id']}"
    for event in [http_event("GET", "/items", query={"tag": "x", "limit": 5}), http_event("GET", path),
                  http_event("PATCH", path, {"price": 1}), http_event("DELETE", path)]:
        status, _, body = answer(allowed.invoke(event))
        assert status in (200, 204), (event["routeKey"], body)
    refused = answer(elsewhere.invoke(http_event("POST", "/items", {"name": "kettle"})))

    assert refused[0] == 500 and refused[2] == {"error": "internal error"}, refused
    assert "Forbidden" in elsewhere.log_text(), "the refusal was not logged"
    assert mongo[database].list_collection_names() in ([COLLECTION], []), "something was written elsewhere"
    assert mongo[database]["other"].count_documents({}) == 0


# --- failures, shutdown, several environments -------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_create_answers_503_and_writes_nothing_when_the_extension_is_missing(runtime, start_env, mongo, database):
    """Proves the other tests can fail: without the extension nothing reaches MongoDB, and the
    handler turns the failed call into a 503 instead of crashing."""
    fn = start_env(runtime, with_extension=False)

    status, _, error = answer(fn.invoke(http_event("POST", "/items", {"name": "kettle"})))

    assert status == 503, error
    assert error == {"error": "the database is unavailable; try again shortly", "code": "SidecarUnreachable"}
    assert fn.extension_pid() is None
    assert mongo[database][COLLECTION].count_documents({}) == 0
    # Node.js says ECONNREFUSED, Python and Go "connection refused", Java's HttpClient a ConnectException.
    assert re.search(r"ECONNREFUSED|connection refused|ConnectException", fn.log_text(), re.I), "the cause was not logged"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_extension_exits_by_itself_after_shutdown(runtime, start_env, record_timing):
    fn = start_env(runtime)
    warmup = answer(fn.invoke(http_event("GET", "/items")))  # starts the runtime and the extension
    assert warmup[0] == 200, warmup
    assert fn.extension_pid() is not None, "the extension is not running in the environment"

    stopped = fn.stop()

    assert stopped.extension_exit_ms is not None, "the extension was still running after SIGTERM + 5 s"
    record_timing("SIGTERM/SHUTDOWN -> exit", stopped.extension_exit_ms)
    assert not stopped.extension_killed, "the emulator SIGKILLed the extension after the deadline"
    assert stopped.extension_exited_by_itself, (
        f"the extension took {stopped.extension_exit_ms:.0f} ms, past the {SHUTDOWN_DEADLINE_MS} ms deadline"
    )


def test_environments_side_by_side_each_use_their_own_extension(start_env, mongo, database):
    envs = {runtime: start_env(runtime) for runtime in RUNTIMES}

    created = {rt: answer(fn.invoke(http_event("POST", "/items", {"name": f"made by {rt}"})))
               for rt, fn in envs.items()}

    for rt, (status, _, item) in created.items():
        assert status == 201, f"{rt}: {item}"
        stored = mongo[database][COLLECTION].find_one({"_id": ObjectId(item["id"])})
        assert stored is not None and stored["name"] == f"made by {rt}"
    pids = {rt: fn.extension_pid() for rt, fn in envs.items()}
    assert None not in pids.values() and len(set(pids.values())) == len(RUNTIMES), pids
    for rt, fn in envs.items():
        assert fn.stop().extension_exited_by_itself, rt


# --- the bash custom runtime ------------------------------------------------------------------


class CustomRuntimeEnvironment(ExecutionEnvironment):
    """An environment whose runtime is a custom runtime's `bootstrap` (runtime provided.al2023).

    The emulator runs any command as the runtime: this passes it the function's bootstrap and the
    handler setting, and drops the Python runtime's variables the base class sets."""

    def __init__(self, function_dir, handler: str, **kwargs):
        super().__init__("python", function_dir, handler=handler, **kwargs)
        for name in ("PYTHONPATH", "AWS_EXECUTION_ENV"):
            self.env.pop(name, None)

    def _runtime_command(self) -> list[str]:
        # The emulator takes the last argument as the handler and sets _HANDLER from it.
        return [str(self.function_dir / "bootstrap"), self.handler]


def test_bash_custom_runtime_stores_its_event_by_calling_the_sidecar_with_curl(
    request, ferretdb, layer, mongo, database
):
    fn = CustomRuntimeEnvironment(SAMPLE_FUNCTIONS / "bash", "function.handler", layer_dir=layer,
                                  env={"MONGODB_URI": ferretdb.uri, "MONGODB_DATABASE": database})
    request.node.lambda_envs = [fn]
    event = {"source": "billing", "detail": {"invoice": f"INV-{uuid.uuid4().hex[:8]}", "total": 12.5}}
    with fn:
        first = fn.invoke(event)
        second = fn.invoke({"source": "billing", "detail": {"invoice": "INV-2"}})
        pid = fn.extension_pid()
        stopped = fn.stop()

    assert first.status == 200 and first.function_error is None, first.body
    assert pid is not None, "the extension is not running in the environment"
    stored = mongo[database]["events"].find_one({"_id": ObjectId(first.body["insertedId"])})
    assert stored is not None and stored["event"] == event
    assert isinstance(stored["receivedAt"], datetime)
    assert second.function_error is None and mongo[database]["events"].count_documents({}) == 2
    assert stopped.extension_exited_by_itself


def test_bash_custom_runtime_fails_the_invocation_when_the_sidecar_refuses_the_call(request, ferretdb, layer, mongo,
                                                                                     database):
    """Proves the bash test can fail: with a wrong apiKey the sidecar answers 401, curl exits
    non-zero and the bootstrap reports a function error."""
    fn = CustomRuntimeEnvironment(SAMPLE_FUNCTIONS / "bash", "function.handler", layer_dir=layer,
                                  env={"MONGODB_URI": ferretdb.uri, "MONGODB_DATABASE": database,
                                       "MONGO_SIDECAR_TOKEN": "a-token-the-handler-does-not-send"})
    request.node.lambda_envs = [fn]
    with fn:
        result = fn.invoke({"source": "billing"})

    assert result.function_error == "HandlerFailed", result.body
    assert mongo[database]["events"].count_documents({}) == 0
