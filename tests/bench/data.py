"""The documents the benchmark reads, written straight into FerretDB with pymongo.

Every document has the same shape (an item of a shop: sku, name, price, tags, dates), padded to
a target BSON size, so "~200 B" and "~500 B" mean what they say.
"""

import datetime

import bson
from pymongo import MongoClient

DATABASE = "bench"
SMALL = "small"  # findOne and updateOne by sku: documents of ~200 B
LARGE = "large"  # find of 1,000 documents of ~500 B
STREAM = "stream"  # one find of everything: 100,000 documents of ~500 B (~50 MB)

SMALL_COUNT = 100
SMALL_BYTES = 200
LARGE_BYTES = 500
LARGE_COUNT = 1000
INSERT_BATCH = 1000


def sku(seq: int) -> str:
    return f"SKU-{seq:08d}"


def item(seq: int, size: int) -> dict:
    """An item document of about `size` bytes of BSON."""
    created = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(minutes=seq)
    doc = {
        "_id": bson.ObjectId(),
        "seq": seq,
        "sku": sku(seq),
        "name": f"item number {seq}",
        "price": 10 + (seq % 400) / 4,
        "tags": ["kitchen", "tea"] if seq % 2 else ["garden"],
        "stock": seq % 97,
        "createdAt": created,
        "notes": "",
    }
    doc["notes"] = "n" * max(0, size - len(bson.encode(doc)))
    return doc


def fill(client: MongoClient, collection: str, count: int, size: int) -> list[bson.ObjectId]:
    """(Re)creates `collection` with `count` documents of ~`size` bytes; returns their ids."""
    coll = client[DATABASE][collection]
    coll.drop()
    ids = []
    for start in range(0, count, INSERT_BATCH):
        batch = [item(seq, size) for seq in range(start, min(count, start + INSERT_BATCH))]
        coll.insert_many(batch, ordered=False)
        ids += [doc["_id"] for doc in batch]
    return ids


def bson_size(size: int) -> int:
    return len(bson.encode(item(0, size)))
