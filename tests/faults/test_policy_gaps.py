"""Small gaps the review found in what a request may name: bulkWrite's `comment`, which the README
lists, and `system.*` collections reached through pipeline stages, though refused as a request's
own collection."""

import pytest

from support import action


def test_bulk_write_takes_a_comment(database, ferretdb, start_sidecar):
    sidecar = start_sidecar(ferretdb.uri)

    status, _, body, _ = action(sidecar, "bulkWrite", {
        "database": database, "collection": "c", "comment": "nightly import",
        "operations": [{"insertOne": {"document": {"k": 1}, "comment": "per operation"}}]})

    assert status == 200, body
    assert body["insertedCount"] == 1


@pytest.mark.parametrize("stage", [
    {"$lookup": {"from": "system.users", "localField": "a", "foreignField": "b", "as": "x"}},
    {"$lookup": {"from": {"db": "admin", "coll": "system.version"}, "as": "x", "pipeline": []}},
    {"$graphLookup": {"from": "system.js", "startWith": "$a", "connectFromField": "a",
                      "connectToField": "b", "as": "x"}},
    {"$unionWith": "system.profile"},
    {"$unionWith": {"coll": "system.views", "pipeline": []}},
    {"$facet": {"inner": [{"$unionWith": "system.users"}]}},
])
def test_system_collections_are_refused_through_pipeline_stages(stage, database, ferretdb, start_sidecar):
    sidecar = start_sidecar(ferretdb.uri)

    status, _, body, _ = action(sidecar, "aggregate", {"database": database, "collection": "c",
                                                       "pipeline": [stage]})

    assert status == 403 and body["error_code"] == "Forbidden", body
    assert "system." in body["error"]
