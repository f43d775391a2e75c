"""Warm per-request latency from Python, sequential, one request in flight: the layer's thin
client to the sidecar (TCP or Unix socket), or pymongo in-process straight to the database.
The twin of node_latency.js, run in its own interpreter so that neither side pays for the other's
imports.

    python py_latency.py '<json>'   ->  prints {"n", "p50", "p99", ..., "samples"} in microseconds

<json>: {"path": "sidecar"|"pymongo", "op": "findOne"|"find", "n", "warmup", "db", "collection",
         "id" (hex, for findOne), "expect" (documents, for find);
         sidecar: "client" (the folder holding mongo_sidecar), "port" or "socketPath", "token";
         pymongo: "uri"}
"""

import json
import resource
import statistics
import sys
import time


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p99 = ordered[max(0, min(len(ordered) - 1, -(-99 * len(ordered) // 100) - 1))]
    return {"n": len(ordered), "p50": statistics.median(ordered), "p99": p99,
            "mean": statistics.fmean(ordered), "min": ordered[0], "max": ordered[-1]}


def open_collection(spec: dict):
    """(collection, ObjectId class, close): the client's or pymongo's."""
    if spec["path"] == "sidecar":
        sys.path.insert(0, spec["client"])
        from mongo_sidecar import MongoSidecar, ObjectId

        target = {"socket_path": spec["socketPath"]} if spec.get("socketPath") else {"port": spec["port"]}
        client = MongoSidecar(token=spec["token"], **target)
        return client[spec["db"]][spec["collection"]], ObjectId, client.close
    from bson import ObjectId
    from pymongo import MongoClient

    client = MongoClient(spec["uri"])
    return client[spec["db"]][spec["collection"]], ObjectId, client.close


def main() -> None:
    spec = json.loads(sys.argv[1])
    coll, object_id, close = open_collection(spec)
    if spec["op"] == "findOne":
        query = {"_id": object_id(spec["id"])}

        def once():
            if coll.find_one(query) is None:
                raise SystemExit(f"find_one found no document {spec['id']}")
    else:
        def once():
            got = len(list(coll.find({})))
            if got != spec["expect"]:
                raise SystemExit(f"find gave {got} documents, not {spec['expect']}")

    for _ in range(spec["warmup"]):
        once()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(spec["n"]):
        started = clock()
        once()
        samples.append((clock() - started) / 1000)
    close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(summary(samples) | {"maxRssBytes": rss, "samples": samples}))


if __name__ == "__main__":
    main()
