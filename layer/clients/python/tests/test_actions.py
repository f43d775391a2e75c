"""Every action, through the client, against the real sidecar and FerretDB."""

from mongo_sidecar import (
    BulkWriteResult,
    DeleteMany,
    DeleteOne,
    InsertOne,
    ObjectId,
    ReplaceOne,
    ReturnDocument,
    UpdateMany,
    UpdateOne,
    UpdateResult,
)


def test_insert_one_returns_the_generated_id_as_an_object_id_and_find_one_finds_it(coll):
    result = coll.insert_one({"name": "ada", "born": 1815})
    assert isinstance(result.inserted_id, ObjectId)
    assert coll.find_one({"_id": result.inserted_id}) == {"_id": result.inserted_id, "name": "ada", "born": 1815}


def test_find_one_answers_none_when_nothing_matches_and_takes_projection_sort_and_skip(coll):
    assert coll.find_one({"_id": "missing"}) is None
    coll.insert_many([{"_id": 1, "n": 3, "tag": "x"}, {"_id": 2, "n": 1, "tag": "y"}, {"_id": 3, "n": 2, "tag": "z"}])
    assert coll.find_one({}, {"tag": 1, "_id": 0}, sort=[("n", 1)]) == {"tag": "y"}
    assert coll.find_one({}, sort={"n": -1}, skip=1) == {"_id": 3, "n": 2, "tag": "z"}
    assert coll.find_one(2) == {"_id": 2, "n": 1, "tag": "y"}, "a non-dict filter is an _id"


def test_find_returns_a_list_and_takes_filter_sort_skip_limit_and_projection(coll):
    coll.insert_many([{"_id": i, "n": i, "even": i % 2 == 0} for i in range(6)])
    docs = coll.find({"even": True}, {"even": 0}, sort=[("n", -1)], skip=1, limit=2)
    assert docs == [{"_id": 2, "n": 2}, {"_id": 0, "n": 0}]
    assert coll.find({"n": {"$gt": 100}}) == []
    assert coll.find(projection=["n"], sort=[("n", 1)], limit=1) == [{"_id": 0, "n": 0}]


def test_insert_many_returns_the_ids_in_order(coll):
    result = coll.insert_many([{"_id": "a"}, {"name": "generated"}, {"_id": 7}])
    assert result.inserted_ids[0] == "a"
    assert isinstance(result.inserted_ids[1], ObjectId)
    assert result.inserted_ids[2] == 7
    assert coll.count_documents({}) == 3


def test_update_one_changes_one_document_and_an_upsert_reports_its_id(coll):
    coll.insert_many([{"_id": 1, "n": 0}, {"_id": 2, "n": 0}])
    assert coll.update_one({"n": 0}, {"$inc": {"n": 5}}) == UpdateResult(1, 1, None)
    assert coll.count_documents({"n": 5}) == 1
    upserted = coll.update_one({"_id": 9}, {"$set": {"n": 9}}, upsert=True)
    assert (upserted.matched_count, upserted.modified_count, upserted.upserted_id) == (0, 0, 9)
    assert coll.find_one({"_id": 9}) == {"_id": 9, "n": 9}


def test_update_many_changes_every_matching_document(coll):
    coll.insert_many([{"_id": 1, "k": "a"}, {"_id": 2, "k": "a"}, {"_id": 3, "k": "b"}])
    result = coll.update_many({"k": "a"}, {"$set": {"seen": True}})
    assert (result.matched_count, result.modified_count) == (2, 2)
    assert sorted(coll.distinct("_id", {"seen": True})) == [1, 2]


def test_replace_one_replaces_the_whole_document(coll):
    coll.insert_one({"_id": 1, "a": 1, "b": 2})
    assert coll.replace_one({"_id": 1}, {"c": 3}).modified_count == 1
    assert coll.find_one({"_id": 1}) == {"_id": 1, "c": 3}


def test_delete_one_deletes_one_document_and_delete_many_the_rest(coll):
    coll.insert_many([{"k": 1}, {"k": 1}, {"k": 1}, {"k": 2}])
    assert coll.delete_one({"k": 1}).deleted_count == 1
    assert coll.delete_many({"k": 1}).deleted_count == 2
    assert coll.find({}, {"_id": 0}) == [{"k": 2}]


def test_aggregate_runs_a_pipeline(coll):
    coll.insert_many([{"g": "a", "n": 1}, {"g": "a", "n": 2}, {"g": "b", "n": 5}])
    groups = coll.aggregate([
        {"$match": {"n": {"$gte": 1}}},
        {"$group": {"_id": "$g", "total": {"$sum": "$n"}}},
        {"$sort": {"_id": 1}},
    ])
    assert groups == [{"_id": "a", "total": 3}, {"_id": "b", "total": 5}]


def test_count_documents_counts_matches_and_honours_limit_and_skip(coll):
    coll.insert_many([{"i": i} for i in range(5)])
    assert coll.count_documents({}) == 5
    assert coll.count_documents({"i": {"$lt": 2}}) == 2
    assert coll.count_documents({}, skip=1, limit=3) == 3


def test_estimated_document_count_counts_the_collection(coll):
    coll.insert_many([{}, {}, {}])
    assert coll.estimated_document_count() == 3


def test_distinct_returns_the_distinct_values_under_a_filter(coll):
    coll.insert_many([{"c": "red", "n": 1}, {"c": "blue", "n": 2}, {"c": "red", "n": 3}, {"c": "green", "n": 0}])
    assert sorted(coll.distinct("c", {"n": {"$gt": 0}})) == ["blue", "red"]


def test_find_one_and_update_returns_the_document_before_or_after(coll):
    coll.insert_one({"_id": 1, "n": 1})
    assert coll.find_one_and_update({"_id": 1}, {"$inc": {"n": 1}}) == {"_id": 1, "n": 1}
    # (FerretDB 1.24 does not implement a projection on findAndModify.)
    after = coll.find_one_and_update({"_id": 1}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER)
    assert after == {"_id": 1, "n": 3}
    assert coll.find_one_and_update({"_id": 2}, {"$set": {"n": 0}}, upsert=True, return_document=True) == {
        "_id": 2, "n": 0}
    assert coll.find_one_and_update({"_id": "none"}, {"$set": {"n": 0}}) is None


def test_find_one_and_replace_replaces_the_first_document_in_sort_order(coll):
    coll.insert_many([{"_id": 1, "n": 2}, {"_id": 2, "n": 1}])
    after = coll.find_one_and_replace({}, {"replaced": True}, sort=[("n", 1)], return_document="after")
    assert after == {"_id": 2, "replaced": True}
    assert coll.find_one({"_id": 1}) == {"_id": 1, "n": 2}


def test_find_one_and_delete_returns_the_deleted_document(coll):
    coll.insert_many([{"_id": 1, "n": 1}, {"_id": 2, "n": 2}])
    assert coll.find_one_and_delete({}, sort={"n": -1}) == {"_id": 2, "n": 2}
    assert coll.count_documents({}) == 1
    assert coll.find_one_and_delete({"_id": "none"}) is None


def test_bulk_write_runs_mixed_operations_and_reports_counts_and_upserted_ids_by_index(coll):
    coll.insert_many([{"_id": 1, "n": 1}, {"_id": 2, "n": 2}, {"_id": 3, "n": 3}])
    result = coll.bulk_write([
        InsertOne({"_id": 4, "n": 4}),
        UpdateOne({"_id": 1}, {"$set": {"n": 10}}),
        UpdateMany({"n": {"$gte": 3}}, {"$set": {"big": True}}),
        ReplaceOne({"_id": 2}, {"n": 20}),
        DeleteOne({"_id": 3}),
        {"updateOne": {"filter": {"_id": 5}, "update": {"$set": {"n": 5}}, "upsert": True}},
        DeleteMany({"n": {"$gt": 100}}),
    ])
    assert result == BulkWriteResult(1, 5, 5, 1, 1, {5: 5})
    assert coll.find({}, sort={"_id": 1}) == [
        {"_id": 1, "n": 10, "big": True},
        {"_id": 2, "n": 20},
        {"_id": 4, "n": 4, "big": True},
        {"_id": 5, "n": 5},
    ]


def test_snake_case_options_reach_the_sidecar_in_camel_case(coll):
    coll.insert_many([{"_id": i} for i in range(3)], ordered=False, bypass_document_validation=True)
    # batch_size -> batchSize, max_time_ms -> maxTimeMS; the sidecar rejects unknown fields, so a
    # wrong spelling would fail the call. (FerretDB 1.24 does not implement arrayFilters.)
    assert coll.find({}, sort=[("_id", 1)], batch_size=1, max_time_ms=5000) == [{"_id": 0}, {"_id": 1}, {"_id": 2}]
    assert coll.count_documents({}, max_time_ms=5000) == 3


def test_a_client_generated_object_id_matches_in_a_filter_but_its_hex_string_does_not(coll):
    oid = ObjectId()
    assert coll.insert_one({"_id": oid}).inserted_id == oid
    assert coll.find_one({"_id": ObjectId(str(oid))}) == {"_id": oid}
    assert coll.find_one({"_id": str(oid)}) is None


def test_client_and_database_support_item_access(client):
    coll = client["client_py"]["item_access"]
    coll.delete_many({})
    coll.insert_one({"_id": 1})
    assert client.db("client_py").collection("item_access").find_one({}) == {"_id": 1}
