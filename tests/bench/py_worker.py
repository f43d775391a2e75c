"""One handler process of the benchmark, in Python: the layer's thin client through the sidecar
(TCP or Unix socket), or pymongo in-process straight to the database. The twin of
node_worker.js, with the same protocol on stdin and stdout (see there), run in its own
interpreter so that neither side pays for the other's imports.

    python py_worker.py '<spec>'

<spec>: {"path": "client"|"driver", "db", "small", "large", "writes", "sku", "expect";
         client: "client" (the folder holding mongo_sidecar), "port" or "socketPath", "token";
         driver: "uri"}
"""

import datetime
import json
import os
import sys
import time


def open_database(spec: dict):
    """(database, ObjectId class, close): the thin client's or pymongo's."""
    if spec["path"] == "client":
        sys.path.insert(0, spec["client"])
        from mongo_sidecar import MongoSidecar, ObjectId

        target = {"socket_path": spec["socketPath"]} if spec.get("socketPath") else {"port": spec["port"]}
        client = MongoSidecar(token=spec["token"], **target)
        return client[spec["db"]], ObjectId, client.close
    from bson import ObjectId
    from pymongo import MongoClient

    client = MongoClient(spec["uri"])
    return client[spec["db"]], ObjectId, client.close


def operations(spec: dict, db, object_id) -> dict:
    """The four operations, as a handler would call them, each checking its answer."""
    small, large, writes = db[spec["small"]], db[spec["large"]], db[spec["writes"]]
    by_sku = {"sku": spec["sku"]}
    counter = iter(range(1, 1 << 62))

    def find_one():
        if small.find_one(by_sku) is None:
            raise SystemExit(f"find_one found no document {spec['sku']}")

    def find():
        got = len(list(large.find({})))
        if got != spec["expect"]:
            raise SystemExit(f"find gave {got} documents, not {spec['expect']}")

    def insert_one():
        doc = {"_id": object_id(), "sku": f"NEW-{os.getpid()}-{next(counter)}", "name": "a new item",
               "price": 12.5, "tags": ["kitchen"], "stock": 3,
               "createdAt": datetime.datetime.now(datetime.timezone.utc)}
        if writes.insert_one(doc).inserted_id is None:
            raise SystemExit("insert_one gave no inserted_id")

    def update_one():
        matched = small.update_one(by_sku, {"$inc": {"stock": 1}}).matched_count
        if matched != 1:
            raise SystemExit(f"update_one matched {matched}")

    return {"findOne": find_one, "find": find, "insertOne": insert_one, "updateOne": update_one}


def main() -> None:
    spec = json.loads(sys.argv[1])
    db, object_id, close = open_database(spec)
    ops = operations(spec, db, object_id)

    def say(message: dict) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    say({"ready": True})
    clock = time.perf_counter_ns
    while line := sys.stdin.readline():
        command = json.loads(line)
        once = ops[command["op"]]
        for _ in range(command["warmup"]):
            once()
        say({"warm": True})
        sys.stdin.readline()  # go
        samples = [0.0] * command["n"]
        for i in range(command["n"]):
            started = clock()
            once()
            samples[i] = (clock() - started) / 1000
        say({"done": True})
        sys.stdin.readline()  # report
        say({"samples": samples})
    close()


if __name__ == "__main__":
    main()
