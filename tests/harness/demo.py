"""Demo: the Node.js sample function with the mongo-sidecar extension, under the Lambda emulator,
against a real FerretDB. Run with `make demo` (or `PYTHONPATH=tests python -m harness.demo`).

Prints each invocation's event, result and duration, then how the extension shut down.
"""

import json
import sys
import time

from . import HarnessError
from .ferretdb import FerretDB
from .lambda_env import SAMPLE_FUNCTIONS, ExecutionEnvironment
from .procs import exit_on_sigterm

EVENTS = [
    {"op": "insert", "collection": "items", "document": {"sku": "A-100", "name": "kettle", "price": 39.5}},
    {"op": "insert", "collection": "items", "document": {"sku": "B-200", "name": "teapot", "tags": ["tea"]}},
    {"op": "find", "collection": "items", "filter": {"sku": "A-100"}},
    {"op": "find", "collection": "items", "filter": {"sku": "B-200"}, "projection": {"_id": 0, "name": 1}},
    {"op": "find", "collection": "items", "filter": {"sku": "Z-999"}},
]


def show(label: str, value) -> None:
    print(f"  {label:<7} {json.dumps(value)}")


def main() -> int:
    exit_on_sigterm()
    started = time.perf_counter()
    with FerretDB() as db:
        print(f"FerretDB ready at {db.uri} ({(time.perf_counter() - started) * 1000:.0f} ms)")
        env = {"MONGODB_URI": db.uri, "MONGODB_DATABASE": "demo"}
        with ExecutionEnvironment("node", SAMPLE_FUNCTIONS / "node", env=env) as fn:
            print(f"Lambda emulator up: Node.js sample function, extension on port {fn.sidecar_port}\n")
            for number, event in enumerate(EVENTS, 1):
                status, body, ms = fn.invoke(event)
                kind = "cold start" if number == 1 else "warm"
                print(f"#{number} ({kind}) {ms:.1f} ms, HTTP {status}")
                show("event", event)
                show("result", body)
            stopped = fn.stop()
        print()
        if stopped.extension_exit_ms is None:
            print("extension: did not exit after SIGTERM (see log below)")
            print(fn.log_text())
            return 1
        how = "by itself" if stopped.extension_exited_by_itself else "KILLED by the emulator"
        print(f"SIGTERM -> SHUTDOWN: extension exited {how} after {stopped.extension_exit_ms:.1f} ms")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
