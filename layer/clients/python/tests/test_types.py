"""BSON types through a real insert and find: what goes in comes back as the same Python value,
and is stored as the intended BSON type (checked with $type queries on the server).

FerretDB 1.24 cannot store Decimal128, MinKey, MaxKey, NaN/Infinity, JavaScript code, symbols or
undefined; test_ejson.py covers those without a database.
"""

import datetime
import re
import uuid

import pytest

from mongo_sidecar import Binary, ObjectId, Regex, Timestamp

UTC = datetime.timezone.utc


def round_trip(coll, value, bson_type=None):
    """Inserts {_id: 1, v: value}, checks the stored BSON type, and returns what find_one reads."""
    coll.insert_one({"_id": 1, "v": value})
    if bson_type is not None:
        assert coll.count_documents({"_id": 1, "v": {"$type": bson_type}}) == 1, f"stored as {bson_type}"
    return coll.find_one({"_id": 1})["v"]


def test_an_aware_datetime_round_trips_as_utc_with_millisecond_precision(coll):
    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    when = datetime.datetime(2024, 2, 29, 18, 4, 56, 789999, tzinfo=tz)
    back = round_trip(coll, when, "date")
    assert back == datetime.datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=UTC)
    assert back.tzinfo is UTC


def test_a_naive_datetime_is_taken_as_utc(coll):
    back = round_trip(coll, datetime.datetime(1901, 12, 13, 20, 45, 52, 1000), "date")
    assert back == datetime.datetime(1901, 12, 13, 20, 45, 52, 1000, tzinfo=UTC)


def test_an_object_id_round_trips_equal_and_hashable(coll):
    oid = ObjectId("65a1b2c3d4e5f60718293a4b")
    back = round_trip(coll, oid, "objectId")
    assert isinstance(back, ObjectId)
    assert back == oid and hash(back) == hash(oid)
    assert str(back) == "65a1b2c3d4e5f60718293a4b"


@pytest.mark.parametrize("number, bson_type", [
    (42, "int"),
    (-2 ** 31, "int"),
    (2 ** 31, "long"),
    (2 ** 63 - 1, "long"),
    (-2 ** 63, "long"),
])
def test_an_int_is_stored_as_int32_or_int64_by_size_and_comes_back_as_an_int(coll, number, bson_type):
    back = round_trip(coll, number, bson_type)
    assert back == number and type(back) is int


@pytest.mark.parametrize("number", [0.1 + 0.2, 1.0, -2.5e-300, 1.7976931348623157e308])
def test_a_float_is_stored_as_a_double_and_comes_back_as_the_same_float(coll, number):
    back = round_trip(coll, number, "double")
    assert back == number and type(back) is float


def test_bytes_are_stored_as_generic_binary_and_come_back_as_bytes(coll):
    data = bytes([0, 1, 2, 253, 254, 255])
    back = round_trip(coll, data, "binData")
    assert back == data and type(back) is bytes


def test_a_uuid_is_stored_as_binary_subtype_4_and_comes_back_as_a_uuid(coll):
    value = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    assert round_trip(coll, value, "binData") == value
    assert coll.count_documents({"v": Binary(value.bytes, 4)}) == 1


def test_a_binary_of_another_subtype_round_trips_with_its_subtype(coll):
    value = Binary(b"custom", 0x80)
    back = round_trip(coll, value, "binData")
    assert isinstance(back, Binary) and back.subtype == 0x80 and back == value


def test_a_compiled_pattern_is_stored_as_a_regex_and_comes_back_as_a_regex(coll):
    back = round_trip(coll, re.compile(r"^ab+c$", re.IGNORECASE | re.MULTILINE), "regex")
    assert back == Regex(r"^ab+c$", "im")
    assert back.try_compile().match("ABBC")


def test_a_regex_with_pcre_options_round_trips(coll):
    assert round_trip(coll, Regex("a b # spaced", "xi"), "regex") == Regex("a b # spaced", "ix")


def test_a_timestamp_round_trips(coll):
    assert round_trip(coll, Timestamp(1700000000, 7), "timestamp") == Timestamp(1700000000, 7)


def test_strings_booleans_none_and_nested_documents_round_trip_unchanged(coll):
    value = {
        "text": 'héllo "quoted" \\ \n 😀 \x01',
        "yes": True,
        "no": False,
        "nothing": None,
        "nested": {"deeper": {"list": [1, "two", {"three": 3}, {}]}},  # (FerretDB: no nested arrays)
    }
    assert round_trip(coll, value, "object") == value


def test_a_tuple_is_stored_as_an_array(coll):
    assert round_trip(coll, (1, 2), "array") == [1, 2]


def test_typed_values_nested_in_lists_and_documents_are_decoded_at_every_depth(coll):
    oid = ObjectId()
    epoch = datetime.datetime(1970, 1, 1, tzinfo=UTC)
    back = round_trip(coll, {"list": [{"id": oid, "when": epoch}], "big": {"n": 2 ** 62}})
    assert back == {"list": [{"id": oid, "when": epoch}], "big": {"n": 2 ** 62}}


def test_datetimes_work_as_query_values(coll):
    coll.insert_many([
        {"_id": "q1", "at": datetime.datetime(2020, 1, 1, tzinfo=UTC)},
        {"_id": "q2", "at": datetime.datetime(2021, 1, 1, tzinfo=UTC)},
    ])
    found = coll.find({"at": {"$gt": datetime.datetime(2020, 6, 1, tzinfo=UTC)}})
    assert [d["_id"] for d in found] == ["q2"]
