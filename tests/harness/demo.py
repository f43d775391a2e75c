"""Demo: the Node.js sample function (the "items" API) with the mongo-sidecar extension, under the
Lambda emulator, against a real FerretDB. Run with `make demo` (or
`PYTHONPATH=tests python -m harness.demo`).

Each request is sent as the API Gateway HTTP API event it would be; prints the request, the answer
and the invocation's duration, then how the extension shut down.

`http_event` is also what the end-to-end tests send.
"""

import json
import shutil
import sys
import time
from urllib.parse import urlencode

from . import HarnessError
from .ferretdb import FerretDB
from .lambda_env import SAMPLE_FUNCTIONS, ExecutionEnvironment
from .layer import layer_dir
from .procs import exit_on_sigterm

MISSING_ID = "000000000000000000000000"


def http_event(method: str, path: str, body=None, query: dict | None = None) -> dict:
    """An API Gateway HTTP API (payload format 2.0) event for `method path`, as the route
    `/items` or `/items/{id}` would deliver it. `body` is sent as JSON unless it is a str."""
    parts = path.strip("/").split("/")
    route = "/items/{id}" if len(parts) == 2 else path
    event = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {"content-type": "application/json", "host": "api.example.com"},
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1",
                     "userAgent": "demo"},
            "routeKey": f"{method} {route}",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = {key: str(value) for key, value in query.items()}
    if len(parts) == 2:
        event["pathParameters"] = {"id": parts[1]}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def response_body(result) -> object:
    """The JSON body of the function's answer (None if it has none)."""
    body = result.body.get("body") if isinstance(result.body, dict) else None
    return json.loads(body) if body else None


def main() -> int:
    exit_on_sigterm()
    opt = layer_dir()
    started = time.perf_counter()
    try:
        with FerretDB() as db:
            print(f"FerretDB ready at {db.uri} ({(time.perf_counter() - started) * 1000:.0f} ms)")
            env = {"MONGODB_URI": db.uri, "MONGODB_DATABASE": "demo"}
            with ExecutionEnvironment("node", SAMPLE_FUNCTIONS / "node", env=env, layer_dir=opt) as fn:
                print(f"Lambda emulator up: Node.js items API, extension on port {fn.sidecar_port}\n")
                run_requests(fn)
                stopped = fn.stop()
    finally:
        shutil.rmtree(opt.parent, ignore_errors=True)
    if stopped.extension_exit_ms is None:
        print("extension: did not exit after SIGTERM (see log below)")
        print(fn.log_text())
        return 1
    how = "by itself" if stopped.extension_exited_by_itself else "KILLED by the emulator"
    print(f"SIGTERM -> SHUTDOWN: extension exited {how} after {stopped.extension_exit_ms:.1f} ms")
    return 0


def run_requests(fn: ExecutionEnvironment) -> None:
    number = 0

    def send(method: str, path: str, body=None, query=None):
        nonlocal number
        number += 1
        result = fn.invoke(http_event(method, path, body, query))
        # A failed invocation has no statusCode: then the runtime's error body is shown instead.
        status = result.body.get("statusCode") if isinstance(result.body, dict) else None
        answer = response_body(result)
        request = path + (f"?{urlencode(query)}" if query else "")
        print(f"#{number} {method} {request}" + (f"  {json.dumps(body)}" if body is not None else ""))
        print(f"   -> {status or result.body}" + (f" {json.dumps(answer)}" if answer is not None else ""))
        print(f"   ({result.elapsed_ms:.1f} ms, {'cold start' if number == 1 else 'warm'})")
        return answer

    kettle = send("POST", "/items", {"name": "kettle", "price": 39.5, "tags": ["kitchen"]})
    if not isinstance(kettle, dict) or "id" not in kettle:
        raise HarnessError(f"the first request failed; the environment's log:\n{fn.log_text()}")
    send("POST", "/items", {"name": "teapot", "tags": ["kitchen", "tea"]})
    send("GET", "/items", query={"tag": "kitchen", "limit": 10})
    send("GET", f"/items/{kettle['id']}")
    send("PATCH", f"/items/{kettle['id']}", {"price": 34.9})
    send("GET", f"/items/{MISSING_ID}")
    print()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
