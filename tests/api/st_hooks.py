"""Schemathesis hooks: the sidecar's media types and the test server's limits.

Loaded by `st run` through `hooks` in schemathesis.toml (tests/api on PYTHONPATH).

- application/ejson requests are JSON text (Extended JSON is JSON), so they are sent as JSON;
  application/ejson answers are JSON; application/x-ndjson answers are one JSON document per
  line, each ending with a newline, read as the array of those documents (as the document
  describes them).
- Accept is no parameter in the document, so no generator varies it: the cases take turns with
  each response format the document lists for their operation.
- FerretDB 1.24, the test server, drops the connection when it is sent a Decimal128, MinKey or
  MaxKey value (the sidecar then rightly answers 503). That is the test server's limit, not the
  API's, so cases carrying one of those Extended JSON wrappers are not sent.
- A 5xx that is the documented outcome of the request is not counted as a failure; how many were dropped, and why, is written as
  JSON to $ST_HOOKS_DROPPED when the run ends.
"""

import atexit
import collections
import itertools
import json
import os

import schemathesis

# Extended JSON wrappers of the BSON types FerretDB 1.24 cannot take.
FERRETDB_UNSUPPORTED = frozenset({"$numberDecimal", "$minKey", "$maxKey"})

# A request cut short by its maxTimeMS costs the pool its connection (the driver drops a
# connection whose operation was interrupted), and a run of them keeps the test server busy. A
# few milliseconds is a valid maxTimeMS but tests nothing the rest of the generated data does
# not, so valid values below this are raised to it.
MIN_MAX_TIME_MS = 2000

_ACCEPT_SINGLE = itertools.cycle([None, "application/json", "application/ejson", "application/ejson; mode=relaxed",
                                  "application/x-ndjson"])
_ACCEPT_CURSOR = itertools.cycle([None, "application/json", "application/ejson", "application/ejson; mode=relaxed",
                                  "application/x-ndjson", "application/x-ndjson; format=ejson",
                                  "application/x-ndjson; format=ejson; mode=relaxed"])
CURSOR_PATHS = ("/find", "/aggregate")

DROPPED: collections.Counter = collections.Counter()

# ---------------------------------------------------------------------------------------------
# Media types

schemathesis.serializer.alias("application/ejson", "application/json")


@schemathesis.deserializer("application/ejson")
def _ejson(ctx, response):
    return json.loads(response.content)


@schemathesis.deserializer("application/x-ndjson")
def _ndjson(ctx, response):
    text = response.content.decode("utf-8")
    if text and not text.endswith("\n"):
        raise ValueError("an NDJSON body must end with a newline")
    return [json.loads(line) for line in text.split("\n")[:-1]]


# ---------------------------------------------------------------------------------------------
# Cases


def _keys(value):
    """Every object key in a JSON value, at any depth."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield from item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def carries_unsupported_type(body) -> bool:
    return any(key in FERRETDB_UNSUPPORTED for key in _keys(body))


@schemathesis.hook
def filter_case(context, case):
    return not carries_unsupported_type(case.body)


@schemathesis.hook
def map_case(context, case):
    body = case.body
    if isinstance(body, dict):
        value = body.get("maxTimeMS")
        if type(value) is int and 0 < value < MIN_MAX_TIME_MS:
            body["maxTimeMS"] = MIN_MAX_TIME_MS
    accept = next(_ACCEPT_CURSOR if case.path.endswith(CURSOR_PATHS) else _ACCEPT_SINGLE)
    if accept is not None:
        case.headers = {**(case.headers or {}), "Accept": accept}
    return case


# ---------------------------------------------------------------------------------------------
# Failures


def _error_code(response) -> str | None:
    try:
        return json.loads(response.content).get("error_code")
    except (ValueError, AttributeError):
        return None


def expected_outcome(status: int, code: str | None, body: dict) -> str | None:
    """Why a 5xx is no failure of the API, or None when it is one."""
    # A request that sets maxTimeMS may run out of it: 504 OperationTimedOut is the documented answer.
    if status == 504 and code == "OperationTimedOut" and "maxTimeMS" in body:
        return "504 OperationTimedOut for a request with maxTimeMS"
    # The test server's limit (see above), in case a phase sends a case filter_case did not see.
    if status == 503 and carries_unsupported_type(body):
        return "503 for a type FerretDB cannot take"
    return None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure but those `expected_outcome` explains."""
    if failure.code != "ST101":  # not_a_server_error
        return True
    body = case.body if isinstance(case.body, dict) else {}
    reason = expected_outcome(response.status_code, _error_code(response), body)
    if reason is None:
        return True
    DROPPED[reason] += 1
    return False


@atexit.register
def _write_dropped():
    if path := os.environ.get("ST_HOOKS_DROPPED"):
        with open(path, "w") as f:
            json.dump(dict(DROPPED), f)
