"""The OpenAPI document, extension/openapi.json, against the code and the running sidecar.

- The document is valid OpenAPI 3.1 and describes every route and every action the sidecar has:
  the actions come from `Action::name` in extension/src/mongo/ops/mod.rs and from the running sidecar,
  so adding an action to one and not the other fails here.
- Every documented example answers as documented, in each response format the document lists.
- The answers a fuzzer does not provoke (no token, a wrong one, unknown routes, limits, an
  unreachable database, ...) are documented statuses with documented bodies and headers.
- Schemathesis generates requests from the document and checks the answers against it.
- Defects schemathesis found have regression tests of their own at the end.

Run (MONGO_SIDECAR_BIN=target/debug/mongo-sidecar for a debug build):
    PYTHONPATH=tests .tools/venv/bin/python -m harness.ferretdb run -- .tools/venv/bin/python -m pytest tests/api
MONGO_SIDECAR_FUZZ_SEED=<n>, or =random, changes schemathesis' seed (fixed by default, so a run repeats).
MONGO_SIDECAR_FUZZ_EXAMPLES=<n> caps the cases per operation below schemathesis.toml's max-examples.

`make test-api-arm64` runs this whole suite against the arm64 binary under qemu-user (through the
wrapper of harness/qemu.py), every test as on x86_64, with MONGO_SIDECAR_FUZZ_EXAMPLES=4: the
schemathesis coverage phase stays whole (its cases do not depend on the cap), the example and
fuzzing phases generate 4 cases per operation; about 8,300 requests in 4 minutes here.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import jsonschema_rs
import pytest
from openapi_spec_validator import validate as validate_openapi  # comes with moto[server]

from harness import REPO_ROOT

ACTIONS_RS = REPO_ROOT / "extension" / "src" / "mongo" / "ops" / "mod.rs"
ROUTER_RS = REPO_ROOT / "extension" / "src" / "http" / "mod.rs"
CARGO_TOML = REPO_ROOT / "extension" / "Cargo.toml"
HERE = Path(__file__).resolve().parent

ACTION_PATH = re.compile(r"/action/([A-Za-z]+)")
APP_ACTION_PATH = re.compile(r"/app/\{appId\}/endpoint/data/v1/action/([A-Za-z]+)")
CURSOR_ACTIONS = {"find", "aggregate"}
DEFAULT_FUZZ_SEED = "20261130"


# ---------------------------------------------------------------------------------------------
# What the code says


def code_actions() -> list[str]:
    """The names `Action::name` gives, in mongo/ops/mod.rs."""
    source = ACTIONS_RS.read_text()
    found = re.search(r"pub fn name\(self\) -> &'static str \{(.*?)\n    \}", source, re.S)
    assert found, f"no `pub fn name(self) -> &'static str` in {ACTIONS_RS}"
    return re.findall(r'Action::\w+ => "([^"]+)"', found.group(1))


def router_routes() -> list[tuple[str, str]]:
    """(path, method) for each `.route(PATH, METHOD(handler))` in `router()` of http/mod.rs."""
    source = ROUTER_RS.read_text()
    body = source[source.index("pub fn router("):]
    body = body[: body.index("\n}\n")]
    routes = re.findall(r'\.route\(\s*"([^"]+)",\s*([a-z]+)\(', body)
    assert routes, f"no routes found in router() of {ROUTER_RS}"
    return routes


def route_regex(route: str) -> re.Pattern:
    """An axum route as a regex over paths, `{param}` standing for one segment."""
    return re.compile("".join("[^/]*" if part.startswith("{") else re.escape(part)
                              for part in re.split(r"(\{[^}]+\})", route)))


# ---------------------------------------------------------------------------------------------
# What the document says


def documented_actions(openapi, pattern: re.Pattern) -> set[str]:
    return {m.group(1) for path in openapi["paths"] if (m := pattern.fullmatch(path))}


def json_at(openapi, pointer: str):
    node = openapi
    for part in pointer.strip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def resolve(openapi, node: dict, pointer: str = "") -> tuple[dict, str]:
    """Follows a chain of local `$ref`s: the object and its JSON pointer in the document."""
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node = json_at(openapi, pointer)
    return node, pointer


def schema_errors(openapi, pointer: str, value) -> list[str]:
    """Validation errors of `value` against the schema at `pointer` in the document (its `$ref`s
    resolve inside the document)."""
    validator = jsonschema_rs.Draft202012Validator({**openapi, "$ref": "#" + pointer})
    return [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(value)]


def parse_body(content_type: str, raw: bytes):
    if content_type == "application/x-ndjson":
        text = raw.decode()
        assert text == "" or text.endswith("\n"), f"NDJSON without a final newline: {text[:200]!r}"
        return [json.loads(line) for line in text.split("\n")[:-1]]
    return json.loads(raw)


def check_response(openapi, pointer: str, status: int, headers: dict, raw: bytes):
    """The answer matches the response object at `pointer`: its Content-Type, its required
    headers and its body schema. Returns the parsed body."""
    node, pointer = resolve(openapi, json_at(openapi, pointer), pointer)
    content_type = headers.get("content-type", "").split(";")[0].strip()
    assert content_type in node.get("content", {}), (
        f"Content-Type {content_type!r} of a {status} is not documented at {pointer}")
    for name, header in node.get("headers", {}).items():
        if resolve(openapi, header)[0].get("required"):
            assert name.lower() in headers, f"required header {name} missing from a {status} ({pointer})"
    body = parse_body(content_type, raw)
    errors = schema_errors(openapi, f"{pointer}/content/{escape(content_type)}/schema", body)
    assert not errors, f"a {status} {content_type} body does not match {pointer}: {errors}\n{raw[:500]!r}"
    return body


def check_answer(openapi, path: str, method: str, status: int, headers: dict, raw: bytes):
    """The status is documented for the operation, and the answer matches its response."""
    responses = f"/paths/{escape(path)}/{method}/responses"
    assert str(status) in json_at(openapi, responses), (
        f"status {status} is not documented for {method.upper()} {path}: {raw[:300]!r}")
    return check_response(openapi, f"{responses}/{status}", status, headers, raw)


_OWN = object()


def send(sidecar, path, body=None, headers=None, method="POST", token=_OWN):
    """One request with the sidecar's token (or `token`); (status, headers, body bytes)."""
    return sidecar.request(method, path, body, token=sidecar.token if token is _OWN else token, headers=headers)


def raw_exchange(port: int, head: str, body: bytes) -> tuple[int, dict, bytes]:
    """Sends a request head and only `body` (maybe less than Content-Length), then reads the
    answer of a sidecar that does not wait for the rest."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head.encode() + b"\r\n\r\n" + body)
        reply = b""
        while True:
            header_end = reply.find(b"\r\n\r\n")
            if header_end >= 0:
                length = re.search(rb"(?i)content-length: *(\d+)", reply[:header_end])
                if length and len(reply) >= header_end + 4 + int(length.group(1)):
                    break
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
    head_bytes, _, raw = reply.partition(b"\r\n\r\n")
    lines = head_bytes.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, raw


def error_code(raw: bytes) -> str:
    return json.loads(raw)["error_code"]


def clean(sidecar, database: str, collection: str = "c"):
    status, _, raw = send(sidecar, "/action/deleteMany", {"database": database, "collection": collection, "filter": {}})
    assert status == 200, raw


# ---------------------------------------------------------------------------------------------
# The document itself


def test_the_document_is_valid_openapi_3_1(openapi):
    validate_openapi(openapi)
    assert openapi["openapi"].startswith("3.1.")


def test_the_document_version_is_the_crate_version(openapi):
    version = re.search(r'^version = "([^"]+)"', CARGO_TOML.read_text(), re.M).group(1)
    assert openapi["info"]["version"] == version


def test_every_action_in_the_code_is_documented_on_both_paths_and_no_other(openapi):
    actions = code_actions()
    assert len(actions) == len(set(actions)) >= 17, actions
    assert documented_actions(openapi, ACTION_PATH) == set(actions)
    assert documented_actions(openapi, APP_ACTION_PATH) == set(actions)


def test_every_action_documents_an_exact_request_body_and_its_answers(openapi):
    for path, item in openapi["paths"].items():
        if not (ACTION_PATH.fullmatch(path) or APP_ACTION_PATH.fullmatch(path)):
            continue
        operation = item["post"]
        body, _ = resolve(openapi, operation["requestBody"], "")
        assert body["required"] and set(body["content"]) == {"application/json", "application/ejson"}, path
        for media in body["content"].values():
            schema, _ = resolve(openapi, media["schema"], "")
            assert schema["additionalProperties"] is False, path
            assert {"database", "collection"} <= set(schema["required"]), path
            assert set(schema["required"]) <= set(schema["properties"]), path
        ok, _ = resolve(openapi, operation["responses"]["200"], "")
        expected = {"application/json", "application/ejson"}
        if path.rsplit("/", 1)[1] in CURSOR_ACTIONS:
            expected.add("application/x-ndjson")
        assert set(ok["content"]) == expected, path
        for status in ("400", "401", "403", "408", "413", "415", "502", "503", "504"):
            assert status in operation["responses"], (path, status)


def test_every_route_of_the_router_is_documented_and_nothing_else(openapi):
    routes = [(route_regex(path), method) for path, method in router_routes()]
    documented = [(path, method) for path, item in openapi["paths"].items()
                  for method in item if method in ("get", "post", "put", "patch", "delete", "head")]
    for path, method in documented:
        assert any(regex.fullmatch(path) and method == m for regex, m in routes), (
            f"{method.upper()} {path} is documented but the router has no such route")
    for regex, method in routes:
        assert any(regex.fullmatch(path) and method == m for path, m in documented), (
            f"the router's {method.upper()} {regex.pattern} is not documented")


# ---------------------------------------------------------------------------------------------
# The running sidecar has exactly the documented actions


def test_the_sidecar_serves_every_documented_action_and_no_other(openapi, sidecar):
    documented = documented_actions(openapi, ACTION_PATH)
    headers = {"Content-Type": "application/json"}
    for action in sorted(documented):
        for path in (f"/action/{action}", f"/app/data-abcde/endpoint/data/v1/action/{action}"):
            status, _, raw = send(sidecar, path, {}, headers)
            assert status != 404, f"{path} is documented but the sidecar answers 404: {raw!r}"
            assert (status, json.loads(raw)["error_code"]) == (400, "InvalidParameter"), raw

    # The sidecar names its actions when it does not know one.
    status, _, raw = send(sidecar, "/action/noSuchAction", {}, headers)
    assert status == 404, raw
    listed = re.search(r"the actions are (.*)$", json.loads(raw)["error"]).group(1).split(", ")
    assert set(listed) == documented

    near_misses = {"listCollections", "runCommand", "watch", "count", "insert", "update", "delete",
                   "FindOne", "FINDONE", "findone", "find_one", "bulkwrite"}
    near_misses |= {action + "s" for action in documented}
    for name in sorted(near_misses - documented):
        for path in (f"/action/{name}", f"/app/x/endpoint/data/v1/action/{name}"):
            status, _, raw = send(sidecar, path, {}, headers)
            assert (status, json.loads(raw)["error_code"]) == (404, "ActionNotFound"), (path, raw)


# ---------------------------------------------------------------------------------------------
# Documented answers, in every documented format

# Writes first, so that the reads find something; the deletes last.
EXAMPLE_ORDER = ["insertOne", "insertMany", "updateOne", "updateMany", "replaceOne", "bulkWrite",
                 "findOneAndUpdate", "findOneAndReplace", "findOne", "find", "aggregate",
                 "countDocuments", "estimatedDocumentCount", "distinct", "findOneAndDelete",
                 "deleteOne", "deleteMany"]


def accept_headers(action: str) -> list[str | None]:
    accepts = [None, "application/json", "application/ejson", "application/ejson; mode=relaxed"]
    if action in CURSOR_ACTIONS:
        accepts += ["application/x-ndjson", "application/x-ndjson; format=ejson",
                    "application/x-ndjson; format=ejson; mode=relaxed"]
    return accepts


def test_every_example_answers_as_documented_in_each_format(openapi, sidecar):
    assert set(EXAMPLE_ORDER) == set(code_actions())
    for collection in ("users", "counters", "jobs"):
        clean(sidecar, "api_examples", collection)
    for action in EXAMPLE_ORDER:
        path = f"/action/{action}"
        media = openapi["paths"][path]["post"]["requestBody"]
        media, _ = resolve(openapi, media, "")
        example = media["content"]["application/json"]["examples"]["example"]["value"]
        body = {**example, "database": "api_examples"}
        for accept in accept_headers(action):
            headers = {"Content-Type": "application/json"} | ({"Accept": accept} if accept else {})
            status, got, raw = send(sidecar, path, body, headers)
            assert status == 200, (action, accept, raw)
            expected_type = (accept or "application/json").split(";")[0]
            assert got["content-type"] == expected_type, (action, accept, got["content-type"])
            answer = check_answer(openapi, path, "post", status, got, raw)
            if accept and "ejson" in accept and action in ("countDocuments", "deleteOne", "deleteMany"):
                # EJSON mode writes counts as canonical Extended JSON too; relaxed as numbers.
                relaxed = "mode=relaxed" in accept
                assert all(isinstance(v, int if relaxed else dict) for v in answer.values()), answer


def test_json_and_ejson_write_bson_types_as_documented(sidecar):
    clean(sidecar, "api_types", "types")
    body = {"database": "api_types", "collection": "types",
            "document": {"_id": {"$oid": "65a0f0f0f0f0f0f0f0f0f0f0"},
                         "when": {"$date": "2024-01-31T12:00:00Z"},
                         "big": {"$numberLong": "9007199254740993"}}}
    status, _, raw = send(sidecar, "/action/insertOne", body)
    assert status == 200, raw
    assert json.loads(raw) == {"insertedId": "65a0f0f0f0f0f0f0f0f0f0f0"}
    find = {"database": "api_types", "collection": "types", "filter": {}}
    _, _, raw = send(sidecar, "/action/findOne", find)
    assert json.loads(raw)["document"] == {"_id": "65a0f0f0f0f0f0f0f0f0f0f0", "when": "2024-01-31T12:00:00.000Z",
                                           "big": 9007199254740993}
    _, headers, raw = send(sidecar, "/action/findOne", find, {"Accept": "application/ejson"})
    assert headers["content-type"] == "application/ejson"
    assert json.loads(raw)["document"] == {"_id": {"$oid": "65a0f0f0f0f0f0f0f0f0f0f0"},
                                           "when": {"$date": {"$numberLong": "1706702400000"}},
                                           "big": {"$numberLong": "9007199254740993"}}


def test_health_answers_as_documented(openapi, sidecar):
    status, headers, raw = sidecar.request("GET", "/health")
    assert status == 200
    body = check_answer(openapi, "/health", "get", status, headers, raw)
    assert body["status"] == "ready"


# ---------------------------------------------------------------------------------------------
# Answers a fuzzer does not provoke


def test_authentication_answers_as_the_data_api_did(openapi, sidecar):
    path = "/action/countDocuments"
    body = {"database": "api_auth", "collection": "c"}
    for token, headers, expected in [
        (None, {}, (400, "InvalidParameter")),
        ("wrong", {}, (401, "InvalidSession")),
        ("", {}, (400, "InvalidParameter")),
        (None, {"Authorization": f"Bearer {sidecar.token}"}, (200, None)),
        (None, {"Authorization": "Bearer wrong"}, (401, "InvalidSession")),
        (None, {"api-key": sidecar.token}, (200, None)),
        (sidecar.token, {"X-Forwarded-For": "10.0.0.1"}, (400, "InvalidParameter")),
    ]:
        status, got, raw = send(sidecar, path, body, {"Content-Type": "application/json", **headers}, token=token)
        assert (status, None if status == 200 else error_code(raw)) == expected, (token, headers, raw)
        check_answer(openapi, path, "post", status, got, raw)
    assert "error finding user" in json.loads(send(sidecar, path, body, token="wrong")[2])["error"]


def test_routing_errors_answer_as_documented(openapi, sidecar):
    status, got, raw = send(sidecar, "/nowhere", method="GET")
    assert (status, error_code(raw)) == (404, "NotFound")
    check_response(openapi, "/components/responses/NotFound", status, got, raw)

    status, got, raw = send(sidecar, "/action/find", method="GET")
    assert (status, error_code(raw), got["allow"]) == (405, "MethodNotAllowed", "POST")
    check_response(openapi, "/components/responses/MethodNotAllowed", status, got, raw)

    status, got, raw = send(sidecar, "/health", method="POST")
    assert (status, got["allow"]) == (405, "GET,HEAD")
    check_response(openapi, "/components/responses/MethodNotAllowed", status, got, raw)

    status, got, raw = send(sidecar, "/app/any/endpoint/data/v1/action/noSuchAction", {})
    assert (status, error_code(raw)) == (404, "ActionNotFound")
    check_answer(openapi, "/app/{appId}/endpoint/data/v1/action/{action}", "post", status, got, raw)


def test_request_errors_answer_as_documented(openapi, sidecar):
    clean(sidecar, "api_errors")
    insert = {"database": "api_errors", "collection": "c", "document": {"_id": 1}}
    javascript = {"database": "api_errors", "collection": "c", "filter": {"$where": "true"}}
    as_json = {"Content-Type": "application/json"}
    cases = [  # in order: the first insert makes the second a duplicate
        ("no Content-Type", "/action/insertOne", json.dumps(insert), {}, 415, "UnsupportedMediaType"),
        ("text/plain", "/action/insertOne", json.dumps(insert), {"Content-Type": "text/plain"}, 415,
         "UnsupportedMediaType"),
        ("not JSON", "/action/insertOne", "{", as_json, 400, "InvalidParameter"),
        ("unknown field", "/action/insertOne", json.dumps({**insert, "upsert": True}), as_json, 400,
         "InvalidParameter"),
        ("server-side JavaScript", "/action/deleteMany", json.dumps(javascript), as_json, 403, "Forbidden"),
        ("first insert", "/action/insertOne", json.dumps(insert), {"Content-Type": "application/ejson"}, 200, None),
        ("duplicate key", "/action/insertOne", json.dumps(insert), as_json, 409, "DuplicateKey"),
    ]
    for what, path, body, headers, expected_status, expected_code in cases:
        status, got, raw = send(sidecar, path, body, headers)
        assert (status, expected_code and error_code(raw)) == (expected_status, expected_code), (what, raw)
        check_answer(openapi, path, "post", status, got, raw)

    # A partly applied write says what failed and what was applied.
    many = {"database": "api_errors", "collection": "c", "documents": [{"_id": 2}, {"_id": 1}]}
    status, got, raw = send(sidecar, "/action/insertMany", many)
    assert (status, json.loads(raw)["failedIndexes"]) == (409, [1]), raw
    check_answer(openapi, "/action/insertMany", "post", status, got, raw)
    bulk = {"database": "api_errors", "collection": "c", "ordered": False,
            "operations": [{"insertOne": {"document": {"_id": 1}}}, {"insertOne": {"document": {"_id": 3}}}]}
    status, got, raw = send(sidecar, "/action/bulkWrite", bulk)
    answer = json.loads(raw)
    assert (status, answer["failedIndex"], answer["applied"]["insertedCount"]) == (409, 0, 1), raw
    check_answer(openapi, "/action/bulkWrite", "post", status, got, raw)


def test_policy_and_limit_errors_answer_as_documented(openapi, start_sidecar):
    db = {"database": "api_limits", "collection": "c"}
    read_only = start_sidecar(MONGO_SIDECAR_READ_ONLY="true")
    status, got, raw = send(read_only, "/action/insertOne", {**db, "document": {}})
    assert (status, error_code(raw)) == (403, "Forbidden"), raw
    check_answer(openapi, "/action/insertOne", "post", status, got, raw)

    sidecar = start_sidecar(MONGO_SIDECAR_MAX_WRITE_BATCH="2", MONGO_SIDECAR_BODY_TIMEOUT_MS="300",
                            MONGO_SIDECAR_MAX_BODY_BYTES="2048", MONGODB_URI_SECOND="mongodb://127.0.0.1:1/")
    status, got, raw = send(sidecar, "/action/insertMany", {**db, "documents": [{}, {}, {}]})
    assert (status, error_code(raw)) == (413, "TooManyOperations"), raw
    check_answer(openapi, "/action/insertMany", "post", status, got, raw)

    status, got, raw = send(sidecar, "/action/find", {**db, "dataSource": "nowhere"})
    assert (status, error_code(raw)) == (400, "DataSourceNotFound"), raw
    check_answer(openapi, "/action/find", "post", status, got, raw)

    head = (f"POST /action/find HTTP/1.1\r\nHost: x\r\napiKey: {sidecar.token}\r\n"
            "Content-Type: application/json\r\nContent-Length: {length}")
    # Larger than MONGO_SIDECAR_MAX_BODY_BYTES: refused on the declared length.
    status, got, raw = raw_exchange(sidecar.port, head.format(length=4096), b"{")
    assert (status, error_code(raw)) == (413, "PayloadTooLarge"), raw
    check_answer(openapi, "/action/find", "post", status, got, raw)
    # A body that does not arrive within MONGO_SIDECAR_BODY_TIMEOUT_MS.
    status, got, raw = raw_exchange(sidecar.port, head.format(length=100), b"{")
    assert (status, error_code(raw)) == (408, "RequestTimeout"), raw
    check_answer(openapi, "/action/find", "post", status, got, raw)


def test_an_unreachable_database_answers_503_with_retry_after(openapi, start_sidecar):
    sidecar = start_sidecar(uri="mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300",
                            wait_ready=False, MONGO_SIDECAR_READY_TIMEOUT_MS="200")
    status, got, raw = send(sidecar, "/health", method="GET")
    assert status == 503 and got["retry-after"] == "1", raw
    check_answer(openapi, "/health", "get", status, got, raw)

    status, got, raw = send(sidecar, "/action/findOne", {"database": "api_down", "collection": "c"})
    assert status == 503 and error_code(raw) in ("Warming", "DatabaseUnavailable"), raw
    check_answer(openapi, "/action/findOne", "post", status, got, raw)


# ---------------------------------------------------------------------------------------------
# Schemathesis


def fuzz_seed() -> str | None:
    seed = os.environ.get("MONGO_SIDECAR_FUZZ_SEED", DEFAULT_FUZZ_SEED)
    return None if seed == "random" else seed


def test_schemathesis_finds_no_failures(openapi_path, sidecar, tmp_path, report_line):
    """Generated requests for every documented operation, checked against the document: no
    5xx, documented statuses, Content-Types, headers and body schemas, schema-violating requests
    rejected, other methods 405 with Allow. Settings: schemathesis.toml; hooks: st_hooks.py."""
    command = [str(Path(sys.executable).with_name("st")), "--config-file", str(HERE / "schemathesis.toml"),
               "run", str(openapi_path), "--url", f"http://127.0.0.1:{sidecar.port}", "--header", f"apiKey: {sidecar.token}",
               "--report", "json", "--report-dir", str(tmp_path / "report"), "--no-color"]
    if seed := fuzz_seed():
        command += ["--seed", seed]
    if examples := os.environ.get("MONGO_SIDECAR_FUZZ_EXAMPLES"):
        command += ["--max-examples", examples]
    dropped_path = tmp_path / "dropped.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "ST_HOOKS_DROPPED": str(dropped_path)}
    started = time.monotonic()
    # In tmp_path, so the caches schemathesis and hypothesis keep in the working directory go with it.
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    elapsed = time.monotonic() - started
    output = run.stdout + run.stderr
    reports = list((tmp_path / "report").glob("*.json"))
    report = json.loads(reports[0].read_text()) if reports else {}
    cases = report.get("test_cases", {})
    dropped = json.loads(dropped_path.read_text()) if dropped_path.exists() else {}
    report_line(f"schemathesis {report.get('schemathesis_version', '?')}: {cases.get('generated', '?')} "
                f"test cases generated in {elapsed:.0f} s (seed {report.get('seed', '?')})")
    for reason, count in sorted(dropped.items()):
        report_line(f"  not counted as failures: {count} x {reason}")
    assert run.returncode == 0, f"schemathesis failed (exit code {run.returncode}):\n{output[-20000:]}"


# ---------------------------------------------------------------------------------------------
# Regression tests for defects schemathesis found.


def test_a_nul_in_a_filter_key_is_a_400(sidecar):
    # Found by schemathesis: such a key once reached the driver and came back as 502.
    body = {"database": "api_defects", "collection": "c", "filter": {"a\u0000b": 1}}
    status, _, raw = send(sidecar, "/action/findOne", body)
    assert (status, error_code(raw)) == (400, "InvalidParameter"), raw


def test_ndjson_is_only_for_find_and_aggregate(sidecar):
    # find and aggregate stream documents as lines; every other action answers one JSON
    # object, labelled application/json even when the client asked for NDJSON.
    body = {"database": "api_defects", "collection": "c"}
    status, headers, raw = send(sidecar, "/action/countDocuments", body,
                                {"Content-Type": "application/json", "Accept": "application/x-ndjson"})
    assert status == 200, raw
    assert headers["content-type"] == "application/json", raw


def test_pool_in_use_never_goes_negative(openapi, start_sidecar):
    # Requests cut short by a 1 ms maxTimeMS drop the driver's operation mid-flight; the
    # connection check-in events then outnumber the check-outs the sidecar counted.
    sidecar = start_sidecar()
    body = {"database": "api_defects", "collection": "c", "maxTimeMS": 1,
            "operations": [{"insertOne": {"document": {"x": 1}}}, {"updateMany": {"filter": {}, "update": {"$set": {"y": 1}}}}]}
    cut_short = sum(send(sidecar, "/action/bulkWrite", body)[0] == 504 for _ in range(200))
    if cut_short == 0:
        pytest.skip("no request was cut short by its maxTimeMS on this machine")
    status, headers, raw = send(sidecar, "/health", method="GET")
    check_answer(openapi, "/health", "get", status, headers, raw)
