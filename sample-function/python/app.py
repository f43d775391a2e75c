"""Sample Lambda function (Python): a small "items" API behind an API Gateway HTTP API (payload
format 2.0), storing its items in MongoDB through the mongo-sidecar extension.

    POST   /items               create: {"name": "...", "price": 12.5, "tags": ["..."]}
    GET    /items?limit=&tag=   list, newest first
    GET    /items/{id}          get one
    PATCH  /items/{id}          update any of name, price, tags
    DELETE /items/{id}          delete

The client comes from the layer (/opt/python/mongo_sidecar): this function bundles no MongoDB
driver and has no dependencies. Environment: MONGODB_DATABASE (default "app"), ITEMS_COLLECTION
(default "items"); the extension reads the connection string itself. Answers, including every
error message, are the same as the Node.js sample's.
"""

import base64
import binascii
import json
import math
import os
import re
from datetime import datetime, timezone

from mongo_sidecar import MongoSidecar, MongoSidecarError, ObjectId

# Created once per execution environment, outside the handler, as MongoDB advises for a driver's
# client: it keeps its localhost connections to the sidecar alive across invocations, and the
# sidecar holds the execution environment's one pooled connection to MongoDB.
items = (
    MongoSidecar()
    .db(os.environ.get("MONGODB_DATABASE") or "app")
    .collection(os.environ.get("ITEMS_COLLECTION") or "items")
)

NAME_MAX_CHARS = 100
TAGS_MAX = 20
TAG_MAX_CHARS = 50
LIST_DEFAULT_LIMIT = 20
LIST_MAX_LIMIT = 100
ITEM_FIELDS = ("name", "price", "tags")

_ITEMS_PATH = re.compile(r"/items(?:/([^/]+))?")
_LIMIT = re.compile(r"[0-9]{1,3}")


class HttpError(Exception):
    """An answer to send as it is: 4xx for what the caller got wrong."""

    def __init__(self, status_code, message, headers=None):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers or {}


def handler(event, context):
    # Any other exception is a bug here: it fails the invocation, so it shows in the function's
    # Errors metric and log (API Gateway answers 500).
    try:
        return _route(event)
    except HttpError as e:
        return _json(e.status_code, {"error": e.message}, e.headers)
    except MongoSidecarError as e:
        return _sidecar_failure(e)


def _route(event):
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method") or ""
    path = event.get("rawPath") or ""
    match = _ITEMS_PATH.fullmatch(path)
    if not match:
        raise HttpError(404, f"no route for {method} {path}")
    # An HTTP API route gives the id as a path parameter; without one, it is in the path.
    item_id = (event.get("pathParameters") or {}).get("id", match.group(1))
    pattern = "/items" if item_id is None else "/items/{id}"
    action = ROUTES.get(f"{method} {pattern}")
    if action is None:
        allowed = ", ".join(key.split(" ")[0] for key in ROUTES if key.endswith(f" {pattern}"))
        raise HttpError(405, f"{method} is not allowed on {pattern}; use {allowed}", {"allow": allowed})
    return action(event, item_id)


# --- the five operations ----------------------------------------------------------------------


def create_item(event, _item_id):
    fields = _check_item_fields(_parse_body(event), partial=False)
    now = datetime.now(timezone.utc)
    # The id is made here, so the answer needs no read back.
    document = {"_id": ObjectId(), "price": None, "tags": [], **fields, "createdAt": now, "updatedAt": now}
    items.insert_one(document)
    item = _to_item(document)
    return _json(201, item, {"location": f"/items/{item['id']}"})


def list_items(event, _item_id):
    query = event.get("queryStringParameters") or {}
    limit = _parse_limit(query.get("limit"))
    # A repeated ?tag= arrives joined with commas: it is then one tag, which matches nothing.
    by_tag = {} if query.get("tag") is None else {"tags": query["tag"]}
    documents = items.find(by_tag, sort={"createdAt": -1, "_id": -1}, limit=limit)
    return _json(200, {"items": [_to_item(d) for d in documents]})


def get_item(event, item_id):
    document = items.find_one({"_id": _parse_id(item_id)})
    if document is None:
        raise _not_found(item_id)
    return _json(200, _to_item(document))


def update_item(event, item_id):
    _id = _parse_id(item_id)  # a malformed id is refused before the body is even read
    fields = _check_item_fields(_parse_body(event), partial=True)
    document = items.find_one_and_update(
        {"_id": _id},
        {"$set": {**fields, "updatedAt": datetime.now(timezone.utc)}},
        return_document="after",
    )
    if document is None:
        raise _not_found(item_id)
    return _json(200, _to_item(document))


def delete_item(event, item_id):
    if items.delete_one({"_id": _parse_id(item_id)}).deleted_count == 0:
        raise _not_found(item_id)
    return {"statusCode": 204}


# Route keys as an HTTP API writes them; _route works out the same key from the path, so the
# function also serves a Function URL or a direct invocation, which carry no routeKey.
ROUTES = {
    "POST /items": create_item,
    "GET /items": list_items,
    "GET /items/{id}": get_item,
    "PATCH /items/{id}": update_item,
    "DELETE /items/{id}": delete_item,
}


# --- input ------------------------------------------------------------------------------------


def _bad_request(message):
    return HttpError(400, message)


def _json_int(text):
    # Integers as JavaScript reads them: exact up to 2**53, a float beyond it. A huge price then
    # fails validation as not finite, like in the Node.js sample, instead of overflowing BSON's
    # 64-bit integer in the client.
    value = int(text) if len(text) <= 17 else float(text)
    return value if abs(value) <= 2**53 else float(text)


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")  # json.loads would take NaN and Infinity otherwise


def _parse_body(event):
    body = event.get("body")
    if not body:
        raise _bad_request("a JSON body is required")
    try:
        # API Gateway base64-encodes bodies it does not take for text (by their content type).
        text = base64.b64decode(body).decode("utf-8") if event.get("isBase64Encoded") else body
        return json.loads(text, parse_int=_json_int, parse_constant=_refuse_constant)
    except (ValueError, binascii.Error, RecursionError):  # JSONDecodeError and UnicodeDecodeError too
        raise _bad_request("the body is not valid JSON") from None


def _check_item_fields(body, partial):
    """The item fields of a create (name required) or an update (any of them, at least one), or a
    400 that lists every problem found."""
    if not isinstance(body, dict):
        raise _bad_request("the body must be a JSON object")
    unknown = [key for key in body if key not in ITEM_FIELDS]
    if unknown:
        raise _bad_request(f"unknown field(s) {', '.join(unknown)}: an item has only {', '.join(ITEM_FIELDS)}")
    if partial and not body:
        raise _bad_request(f"nothing to update: give any of {', '.join(ITEM_FIELDS)}")

    problems = []
    if not partial and "name" not in body:
        problems.append("name is required")
    if "name" in body and not _is_text(body["name"], NAME_MAX_CHARS):
        problems.append(f"name must be a non-blank string of at most {NAME_MAX_CHARS} characters")
    if "price" in body and not _is_non_negative_number(body["price"]):
        problems.append("price must be a non-negative number")
    tags = body.get("tags")
    if "tags" in body and not (
        isinstance(tags, list) and len(tags) <= TAGS_MAX and all(_is_text(t, TAG_MAX_CHARS) for t in tags)
    ):
        problems.append(
            f"tags must be an array of at most {TAGS_MAX} non-blank strings of at most {TAG_MAX_CHARS} characters"
        )
    if problems:
        raise _bad_request("; ".join(problems))
    return body


def _is_text(value, max_chars):
    return isinstance(value, str) and value.strip() != "" and len(value) <= max_chars


def _is_non_negative_number(value):
    # bool is an int in Python, but true is not a price.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _parse_limit(text):
    if text is None:
        return LIST_DEFAULT_LIMIT
    limit = int(text) if _LIMIT.fullmatch(text) else 0
    if not 1 <= limit <= LIST_MAX_LIMIT:
        raise _bad_request(f"limit must be an integer from 1 to {LIST_MAX_LIMIT}")
    return limit


def _parse_id(item_id):
    if not ObjectId.is_valid(item_id):
        raise _bad_request("an item id is 24 hexadecimal characters")
    return ObjectId(item_id)


def _not_found(item_id):
    return HttpError(404, f"no item with id {item_id}")


# --- output -----------------------------------------------------------------------------------


def _to_item(document):
    return {
        "id": str(document["_id"]),
        "name": document.get("name"),
        "price": document.get("price"),
        "tags": document.get("tags", []),
        "createdAt": _iso_date(document.get("createdAt")),
        "updatedAt": _iso_date(document.get("updatedAt")),
    }


def _iso_date(value):
    # The same form as JavaScript's toISOString(): milliseconds and "Z".
    if not isinstance(value, datetime):
        return None
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(status_code, body, headers=None):
    return {
        "statusCode": status_code,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(body),
    }


def _sidecar_failure(error):
    """The sidecar answered with an error, or could not be reached. Unreachable (status 0) or a
    5xx (the database is down or slow, the sidecar is overloaded or still connecting) is worth a
    retry: 503. Any other refusal means this function sent something wrong: 500. The details go to
    the log, only the error code to the caller."""
    print(f"mongo-sidecar call failed: status={error.status} code={error.code}: {error}")
    if error.status == 0 or error.status >= 500:
        headers = {} if error.retry_after is None else {"retry-after": str(error.retry_after)}
        return _json(503, {"error": "the database is unavailable; try again shortly", "code": error.code}, headers)
    return _json(500, {"error": "internal error"})
