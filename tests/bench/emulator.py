"""8. The Node.js sample function with the layer under the Lambda Runtime Interface Emulator:
the cold invocation (runtime + extension start + the first findOne), warm invocations, and
SIGTERM -> SHUTDOWN -> the extension's own exit. Medians over a few fresh environments.

The sample function's event shape may change: `sample_event` reads its source and builds an
event it answers with one read of a seeded item. That function is the only place that knows it.
"""

import datetime
import re
import statistics

import bson

from harness.lambda_env import SAMPLE_FUNCTIONS, ExecutionEnvironment

from .context import Context
from .report import Section

DATABASE = "bench_lambda"
COLLECTION = "items"
FUNCTION_DIR = SAMPLE_FUNCTIONS / "node"


def sample_event(source: str, item_id: str) -> dict:
    """An event the Node.js sample function (whose index.js is `source`) answers with a read of
    the item `item_id`: an API Gateway HTTP API `GET /items/{id}` for the items API, else the
    older `{"op": "find", ...}` shape."""
    if "rawPath" in source or "requestContext" in source:
        path = f"/items/{item_id}"
        return {
            "version": "2.0",
            "routeKey": "GET /items/{id}",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"host": "api.example.com"},
            "pathParameters": {"id": item_id},
            "requestContext": {"http": {"method": "GET", "path": path, "protocol": "HTTP/1.1",
                                        "sourceIp": "192.0.2.1", "userAgent": "bench"},
                               "routeKey": "GET /items/{id}", "stage": "$default"},
            "isBase64Encoded": False,
        }
    return {"op": "find", "collection": COLLECTION, "filter": {"_id": {"$oid": item_id}}}


def answered(body) -> bool:
    """Whether the function's answer looks like a success for either event shape."""
    if not isinstance(body, dict) or "errorType" in body:
        return False
    if "statusCode" in body:
        return body["statusCode"] == 200
    return body.get("document") is not None or "error" not in body


def seed(ctx: Context, database: str = DATABASE) -> str:
    """One item the function can read, in the fields the items API keeps, in `database`."""
    now = datetime.datetime.now(datetime.timezone.utc)
    item = {"_id": bson.ObjectId(), "name": "kettle", "price": 39.5, "tags": ["kitchen"],
            "createdAt": now, "updatedAt": now}
    coll = ctx.mongo[database][COLLECTION]
    coll.drop()
    coll.insert_one(item)
    return str(item["_id"])


def _extension_ready_ms(log: str) -> float | None:
    """What the extension logged on its "init done" line: exec -> registered and connected."""
    found = re.search(r"init done.*?elapsed_ms=(\d+)", log)
    return float(found.group(1)) if found else None


def one_environment(ctx: Context, event: dict) -> dict:
    env = {"MONGODB_URI": ctx.db.uri, "MONGODB_DATABASE": DATABASE, "ITEMS_COLLECTION": COLLECTION}
    with ExecutionEnvironment("node", FUNCTION_DIR, env=env, layer_dir=ctx.layer) as fn:
        cold = fn.invoke(event)
        warm = [fn.invoke(event) for _ in range(ctx.workload.lambda_warm_invocations)]
        stopped = fn.stop()
        log = fn.log_text()
    failures = [r.body for r in [cold, *warm] if r.status != 200 or not answered(r.body)]
    return {
        "cold_ms": cold.elapsed_ms,
        "warm_ms": [r.elapsed_ms for r in warm],
        "extension_ready_ms": _extension_ready_ms(log),
        "exit_ms": stopped.extension_exit_ms,
        "exited_by_itself": stopped.extension_exited_by_itself,
        "killed": stopped.extension_killed,
        "failures": failures[:3],
        "failure_count": len(failures),
        "log_tail": log[-1500:] if failures or not stopped.extension_exited_by_itself else "",
    }


def run(ctx: Context, section: Section) -> None:
    event = sample_event((FUNCTION_DIR / "index.js").read_text(), seed(ctx))
    runs = []
    for _ in range(ctx.workload.lambda_environments):
        try:
            runs.append(one_environment(ctx, event))
        except Exception as e:  # noqa: BLE001 - one broken environment: report it, try the next
            section.error("environment", e)
    section.details.update(event=event, environments=runs)
    if not runs:
        return
    warm = [ms for r in runs for ms in r["warm_ms"]]
    exits = [r["exit_ms"] for r in runs if r["exit_ms"] is not None]
    inits = [r["extension_ready_ms"] for r in runs if r["extension_ready_ms"] is not None]
    n = f"median of {len(runs)} environments"
    section.add("cold invocation (emulator: runtime + extension init + handler)",
                statistics.median(r["cold_ms"] for r in runs), "ms", note=n)
    if inits:
        section.add("extension exec -> init done (its own log line)", statistics.median(inits), "ms", note=n)
    if warm:
        section.add("warm invocation", statistics.median(warm), "ms",
                    note=f"median of {len(warm)} across the environments, p-max {max(warm):.1f} ms")
    if exits:
        by_itself = sum(r["exited_by_itself"] for r in runs)
        section.add("SIGTERM -> SHUTDOWN -> extension exit", statistics.median(exits), "ms",
                    note=f"{n}; exited by itself in {by_itself}/{len(runs)}")
    failed = sum(r["failure_count"] for r in runs)
    if failed:
        section.error("invocations", f"{failed} invocation(s) did not answer 200; first: {runs[0]['failures'][:1]}")
