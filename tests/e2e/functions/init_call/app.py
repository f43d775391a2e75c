"""A function that calls the sidecar from its own init, at import time, as Lambda runs it right
after the extension registers and possibly before the extension has connected to the database."""

import http.client
import json
import os
import time

_started = time.monotonic()


def _insert_at_init():
    connection = http.client.HTTPConnection("127.0.0.1", int(os.environ["MONGO_SIDECAR_PORT"]), timeout=30)
    body = json.dumps({"dataSource": "mongodb-atlas", "database": os.environ["MONGODB_DATABASE"],
                       "collection": "init", "document": {"phase": "init"}})
    headers = {"Content-Type": "application/json", "apiKey": os.environ["AWS_SESSION_TOKEN"]}
    try:
        connection.request("POST", "/action/insertOne", body=body, headers=headers)
        response = connection.getresponse()
        return {"status": response.status, "body": json.loads(response.read())}
    except OSError as e:
        return {"status": None, "error": repr(e)}
    finally:
        connection.close()


INIT_RESULT = _insert_at_init()
INIT_RESULT["elapsed_ms"] = (time.monotonic() - _started) * 1000


def handler(event, context):
    return INIT_RESULT
