"""Sample Lambda function (Python) that stores and reads items through the mongo-sidecar
extension's localhost Data API.

Events: {"op": "insert", "collection": "items", "document": {...}}
        {"op": "find", "collection": "items", "filter": {...}, "projection": {...}}
Returns the sidecar's JSON answer; a sidecar error becomes a function error.
"""

import http.client
import json
import os

SIDECAR_HOST = "127.0.0.1"
SIDECAR_PORT = int(os.environ.get("MONGO_SIDECAR_PORT", "27080"))
DATABASE = os.environ.get("MONGODB_DATABASE", "app")
DATA_SOURCE = "mongodb-atlas"

# Module scope: created once per execution environment, so the connection to the sidecar is
# reused across invocations (http.client keeps it alive and reconnects after it was closed).
_connection = http.client.HTTPConnection(SIDECAR_HOST, SIDECAR_PORT, timeout=30)

# Errors that mean the kept-alive connection had been closed by the other side before the
# request was sent; the request is then safe to send again on a new connection.
_STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class SidecarError(Exception):
    """The sidecar answered with an error status."""


def _call_sidecar(action, body):
    payload = json.dumps({"dataSource": DATA_SOURCE, "database": DATABASE, **body})
    headers = {
        "Content-Type": "application/json",
        "apiKey": os.environ.get("MONGO_SIDECAR_TOKEN") or os.environ.get("AWS_SESSION_TOKEN", ""),
    }
    for attempt in (1, 2):
        try:
            _connection.request("POST", f"/action/{action}", body=payload, headers=headers)
            response = _connection.getresponse()
            text = response.read().decode("utf-8")
            break
        except _STALE_CONNECTION:
            _connection.close()
            if attempt == 2:
                raise
    if response.status >= 400:
        raise SidecarError(f"sidecar {action} answered {response.status}: {text}")
    return json.loads(text)


def handler(event, context):
    op = event.get("op")
    if op == "insert":
        return _call_sidecar("insertOne", {"collection": event["collection"], "document": event["document"]})
    if op == "find":
        body = {"collection": event["collection"], "filter": event.get("filter", {})}
        if "projection" in event:
            body["projection"] = event["projection"]
        return _call_sidecar("findOne", body)
    raise ValueError(f'unknown op {op!r}: expected "insert" or "find"')
