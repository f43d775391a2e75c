"""The Extended JSON conversions on their own, including the types FerretDB cannot store."""

import datetime
import decimal
import json
import math
import re
import uuid

import pytest

from mongo_sidecar import Binary, Code, DatetimeMS, MaxKey, MinKey, ObjectId, Regex, Timestamp
from mongo_sidecar import ejson_dumps as dumps
from mongo_sidecar import ejson_loads as loads

UTC = datetime.timezone.utc


def encode(value):
    return json.loads(dumps(value))


def test_decimal_encodes_as_number_decimal_and_decodes_to_decimal():
    assert encode({"d": decimal.Decimal("1234.5600")}) == {"d": {"$numberDecimal": "1234.5600"}}
    back = loads('{"d":{"$numberDecimal":"-0.000001E+10"}}')["d"]
    assert isinstance(back, decimal.Decimal) and back == decimal.Decimal("-0.000001E+10")
    assert loads('{"$numberDecimal":"NaN"}').is_nan()


def test_min_key_and_max_key_encode_and_decode():
    assert encode([MinKey(), MaxKey()]) == [{"$minKey": 1}, {"$maxKey": 1}]
    assert loads('[{"$minKey":1},{"$maxKey":1}]') == [MinKey(), MaxKey()]


def test_nan_and_infinities_encode_as_number_double_not_as_invalid_json():
    assert encode({"a": [float("nan"), float("inf"), float("-inf"), 1.5]}) == {"a": [
        {"$numberDouble": "NaN"}, {"$numberDouble": "Infinity"}, {"$numberDouble": "-Infinity"}, 1.5]}
    nan, inf, ninf = loads('[{"$numberDouble":"NaN"},{"$numberDouble":"Infinity"},{"$numberDouble":"-Infinity"}]')
    assert math.isnan(nan) and inf == math.inf and ninf == -math.inf


def test_int32_int64_and_double_decode_to_int_and_float():
    doc = loads('{"i":{"$numberInt":"-7"},"l":{"$numberLong":"-9223372036854775808"},"d":{"$numberDouble":"1.0"}}')
    assert doc == {"i": -7, "l": -2 ** 63, "d": 1.0}
    assert type(doc["l"]) is int and type(doc["d"]) is float


def test_relaxed_answers_as_the_sidecar_writes_them_decode_to_the_same_values():
    relaxed = loads('{"i":-7,"l":5000000000,"d":1.0,"e":1.5e+300,"z":-0.0,'
                    '"at":{"$date":"2025-01-01T00:00:00.123Z"},"old":{"$date":{"$numberLong":"-1"}},'
                    '"id":{"$oid":"65f0a1b2c3d4e5f601234567"},"inf":{"$numberDouble":"-Infinity"}}')
    canonical = loads('{"i":{"$numberInt":"-7"},"l":{"$numberLong":"5000000000"},"d":{"$numberDouble":"1.0"},'
                      '"e":{"$numberDouble":"1.5e+300"},"z":{"$numberDouble":"-0.0"},'
                      '"at":{"$date":{"$numberLong":"1735689600123"}},"old":{"$date":{"$numberLong":"-1"}},'
                      '"id":{"$oid":"65f0a1b2c3d4e5f601234567"},"inf":{"$numberDouble":"-Infinity"}}')
    assert relaxed == canonical
    assert [type(relaxed[k]) for k in ("i", "l", "d", "z")] == [int, int, float, float]
    assert math.copysign(1.0, relaxed["z"]) == -1.0
    assert relaxed["at"] == datetime.datetime(2025, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert relaxed["at"].tzinfo is UTC and relaxed["old"].tzinfo is UTC


def test_datetimes_encode_as_canonical_milliseconds_and_decode_utc_aware():
    before_epoch = datetime.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert encode(before_epoch) == {"$date": {"$numberLong": "-1"}}
    back = loads('{"$date":{"$numberLong":"86400000"}}')
    assert back == datetime.datetime(1970, 1, 2, tzinfo=UTC) and back.tzinfo is UTC
    assert loads('{"$date":"2024-01-01T00:00:00Z"}') == datetime.datetime(2024, 1, 1, tzinfo=UTC), "relaxed form"


def test_dates_outside_datetimes_range_decode_to_datetime_ms_and_encode_back():
    back = loads('{"$date":{"$numberLong":"-62135596800001"}}')
    assert back == DatetimeMS(-62135596800001)
    assert encode(back) == {"$date": {"$numberLong": "-62135596800001"}}


def test_a_date_without_time_is_refused():
    with pytest.raises(TypeError, match="datetime"):
        dumps({"d": datetime.date(2024, 1, 1)})


def test_binary_subtypes_map_to_bytes_uuid_and_binary():
    assert encode(b"hi") == {"$binary": {"base64": "aGk=", "subType": "00"}}
    assert encode(bytearray(b"hi")) == {"$binary": {"base64": "aGk=", "subType": "00"}}
    assert encode(Binary(b"hi", 0x85)) == {"$binary": {"base64": "aGk=", "subType": "85"}}
    value = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    assert encode(value) == {"$binary": {"base64": "ABEiM0RVZneImaq7zN3u/w==", "subType": "04"}}
    assert loads('{"$binary":{"base64":"ABEiM0RVZneImaq7zN3u/w==","subType":"04"}}') == value
    legacy = loads('{"$binary":{"base64":"ABEiM0RVZneImaq7zN3u/w==","subType":"03"}}')
    assert isinstance(legacy, Binary) and legacy.subtype == 3
    assert Binary(b"x", 3) != Binary(b"x", 4) and Binary(b"x", 3) != b"x"


def test_regex_flags_map_both_ways():
    assert encode(re.compile("a", re.I | re.M | re.S | re.X)) == {
        "$regularExpression": {"pattern": "a", "options": "imsx"}}
    assert loads('{"$regularExpression":{"pattern":"a","options":"xi"}}') == Regex("a", "ix")
    assert Regex("(?i)abc").try_compile().match("ABC")


def test_timestamp_code_symbol_and_undefined():
    assert encode(Timestamp(1, 2)) == {"$timestamp": {"t": 1, "i": 2}}
    assert encode(Code("x + y", {"y": float("nan")})) == {"$code": "x + y", "$scope": {"y": {"$numberDouble": "NaN"}}}
    doc = loads('{"c":{"$code":"f()","$scope":{"n":{"$numberInt":"1"}}},"p":{"$code":"g()"},'
                '"s":{"$symbol":"sym"},"u":{"$undefined":true},"t":{"$timestamp":{"t":5,"i":6}}}')
    assert doc == {"c": Code("f()", {"n": 1}), "p": Code("g()"), "s": "sym", "u": None, "t": Timestamp(5, 6)}


def test_object_id_is_hex_inside_equal_hashable_and_generated_unique():
    oid = ObjectId("65A1B2C3D4E5F60718293A4B")
    assert str(oid) == "65a1b2c3d4e5f60718293a4b"
    assert repr(oid) == "ObjectId('65a1b2c3d4e5f60718293a4b')"
    assert oid == ObjectId(str(oid)) and oid != str(oid)
    assert len({oid, ObjectId(str(oid))}) == 1
    assert ObjectId(oid.binary) == oid
    assert encode({"id": oid}) == {"id": {"$oid": "65a1b2c3d4e5f60718293a4b"}}
    with pytest.raises(TypeError):
        ObjectId("not-hex")
    a, b = ObjectId(), ObjectId()
    assert a != b and a < b
    assert abs((a.generation_time - datetime.datetime.now(UTC)).total_seconds()) < 5


def test_a_document_whose_first_key_starts_with_dollar_is_not_mistaken_for_a_wrapper():
    doc = loads('{"$oid":"65a1b2c3d4e5f60718293a4b","other":{"$numberInt":"1"}}')
    assert doc == {"$oid": "65a1b2c3d4e5f60718293a4b", "other": 1}
    assert loads('{"$numberInt":"1","a":{"$numberInt":"2"},"b":3}') == {"$numberInt": "1", "a": 2, "b": 3}


def test_a_value_of_an_unknown_type_is_refused_with_its_type_named():
    with pytest.raises(TypeError, match="set"):
        dumps({"s": {1, 2}})


@pytest.mark.parametrize("number", [2 ** 63, -(2 ** 63) - 1, 10 ** 20, 2 ** 64])
def test_an_int_beyond_64_bits_raises_overflow_error_instead_of_becoming_a_double(number):
    with pytest.raises(OverflowError):
        dumps({"nested": [{"n": number}]})


def test_the_64_bit_limits_and_long_digit_strings_are_accepted():
    assert encode({"max": 2 ** 63 - 1, "min": -(2 ** 63), "s": "12345678901234567890123"}) == {
        "max": 2 ** 63 - 1, "min": -(2 ** 63), "s": "12345678901234567890123"}
