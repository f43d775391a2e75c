"""A test function that calls the sidecar as its event says, through the layer's Python client:
`{"database": "...", "finds": n, "denied": m}` makes n findOne calls and m the policy refuses.
It answers with the statuses it got."""

from mongo_sidecar import MongoSidecar, MongoSidecarError

client = MongoSidecar()


def handler(event, context):
    collection = client.db(event["database"]).collection("c")
    statuses = []
    for _ in range(event.get("finds", 0)):
        collection.find_one({"k": 1})
        statuses.append(200)
    for _ in range(event.get("denied", 0)):
        try:
            collection.find_one({"$where": "true"})
            statuses.append(200)
        except MongoSidecarError as e:
            statuses.append(e.status)
    return {"statuses": statuses}
