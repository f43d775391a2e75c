"""Extended JSON v2 at the client's edge.

``dumps`` writes a request body (Python values to EJSON the sidecar reads); ``loads`` reads a
response, relaxed (``Accept: application/ejson; mode=relaxed``, what the client asks for: numbers
arrive as JSON numbers, parsed by ``json`` itself) or canonical EJSON, to Python values. The type
mapping is in the README.
"""

import base64
import datetime
import decimal
import json
import math
import re
import sys

from .bson_types import Binary, Code, DatetimeMS, MaxKey, MinKey, ObjectId, Regex, Timestamp

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_EPOCH_NAIVE = datetime.datetime(1970, 1, 1)
_ONE_MS = datetime.timedelta(milliseconds=1)
_Pattern = type(re.compile(""))

# ---------------------------------------------------------------------------------------------
# Python -> Extended JSON


def _binary(data, subtype):
    return {"$binary": {"base64": base64.b64encode(data).decode("ascii"), "subType": format(subtype, "02x")}}


def _date_ms(value):
    """Milliseconds since the epoch; a naive datetime is taken to be UTC."""
    epoch = _EPOCH_NAIVE if value.tzinfo is None or value.utcoffset() is None else _EPOCH
    return (value - epoch) // _ONE_MS


def _encode(value):
    """json.dumps ``default``: called for every value JSON has no form for."""
    if isinstance(value, datetime.datetime):
        return {"$date": {"$numberLong": str(_date_ms(value))}}
    if isinstance(value, ObjectId):
        return {"$oid": str(value)}
    if isinstance(value, decimal.Decimal):
        return {"$numberDecimal": str(value)}
    # uuid is imported only when needed (it costs a cold start milliseconds); a value can only be
    # a UUID if the caller has imported it.
    uuid = sys.modules.get("uuid")
    if uuid is not None and isinstance(value, uuid.UUID):
        return _binary(value.bytes, 4)
    if isinstance(value, Binary):
        return _binary(value, value.subtype)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _binary(bytes(value), 0)
    if isinstance(value, Regex):
        return {"$regularExpression": {"pattern": value.pattern, "options": value.flags}}
    if isinstance(value, _Pattern):
        native = Regex.from_native(value)
        return {"$regularExpression": {"pattern": native.pattern, "options": native.flags}}
    if isinstance(value, Timestamp):
        return {"$timestamp": {"t": value.time, "i": value.inc}}
    if isinstance(value, MinKey):
        return {"$minKey": 1}
    if isinstance(value, MaxKey):
        return {"$maxKey": 1}
    if isinstance(value, Code):
        return {"$code": value.code} if value.scope is None else {"$code": value.code, "$scope": value.scope}
    if isinstance(value, DatetimeMS):
        return {"$date": {"$numberLong": str(value.ms)}}
    if isinstance(value, datetime.date):
        raise TypeError(f"cannot send a date without a time ({value!r}); use a datetime")
    raise TypeError(f"cannot send a value of type {type(value).__name__}: {value!r}")


def _non_finite(value):
    """Copies containers, writing NaN and infinities as $numberDouble (JSON has no form for them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"$numberDouble": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, dict):
        return {k: _non_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_non_finite(v) for v in value]
    if isinstance(value, Code) and value.scope is not None:
        return Code(value.code, _non_finite(value.scope))
    return value


_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
# A run of 19 or more digits: the only way an int beyond 64 bits can show in the output.
_LONG_DIGITS = re.compile(r"\d{19}")


def _check_int64(value):
    """Raises OverflowError for an int beyond 64 bits, which the sidecar would read as a double."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise OverflowError(f"MongoDB integers are at most 64 bits; {value} is not (send a Decimal)")
    elif isinstance(value, dict):
        for item in value.values():
            _check_int64(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_int64(item)
    elif isinstance(value, Code) and value.scope is not None:
        _check_int64(value.scope)


# One encoder for every call (json.dumps with options builds a new one each time).
_ENCODER = json.JSONEncoder(default=_encode, allow_nan=False, separators=(",", ":"))


def dumps(value) -> str:
    """A Python value as Extended JSON text."""
    try:
        text = _ENCODER.encode(value)
    except ValueError as err:
        if "Out of range float" not in str(err):
            raise
        # Rare: a NaN or an infinity somewhere. Only then pay for a second walk.
        text = _ENCODER.encode(_non_finite(value))
    if _LONG_DIGITS.search(text):
        _check_int64(value)  # rare too: only when the text has a number (or string) that long
    return text


# ---------------------------------------------------------------------------------------------
# Extended JSON -> Python


def _iso_date(value):
    # fromisoformat reads the sidecar's "2025-01-01T00:00:00.000Z" once the Z is an offset (3.9+).
    parsed = datetime.datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] == "Z" else value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def _date(value):
    if isinstance(value, str):  # relaxed: ISO-8601
        return _iso_date(value)
    if isinstance(value, int):  # canonical {"$numberLong"}, already decoded to int
        try:
            return _EPOCH + datetime.timedelta(milliseconds=value)
        except OverflowError:
            return DatetimeMS(value)
    return None


def _binary_value(data, subtype):
    if data is None or subtype is None:
        return None
    raw = base64.b64decode(data)
    subtype = int(subtype, 16)
    if subtype == 0:
        return raw
    if subtype == 4 and len(raw) == 16:
        import uuid

        return uuid.UUID(bytes=raw)
    return Binary(raw, subtype)


def _regex(value):
    if isinstance(value, dict) and isinstance(value.get("pattern"), str):
        return Regex(value["pattern"], value.get("options", ""))
    return None


def _timestamp(value):
    if isinstance(value, dict) and "t" in value and "i" in value:
        return Timestamp(value["t"], value["i"])
    return None


def _binary_wrapper(value):
    return _binary_value(value.get("base64"), value.get("subType")) if isinstance(value, dict) else None


def _string(convert):
    return lambda value: convert(value) if isinstance(value, str) else None


# Single-key wrappers: each returns the decoded value, or None when the shape does not match
# (the object is then an ordinary document). Inner wrappers are already decoded: object_hook
# runs innermost first, so `{"$date": {"$numberLong": "1"}}` arrives here as `{"$date": 1}`.
_WRAPPERS = {
    "$numberInt": _string(int),
    "$numberLong": _string(int),
    "$numberDouble": _string(float),
    "$numberDecimal": _string(decimal.Decimal),
    "$oid": _string(ObjectId),
    "$date": _date,
    "$binary": _binary_wrapper,
    "$uuid": _string(lambda text: __import__("uuid").UUID(text)),
    "$regularExpression": _regex,
    "$timestamp": _timestamp,
    "$minKey": lambda value: MinKey() if value == 1 else None,
    "$maxKey": lambda value: MaxKey() if value == 1 else None,
    "$symbol": _string(str),
    "$code": _string(Code),
}

_UNDEFINED = object()


def _object_hook(obj):
    # Called for every object of an answer: documents, and the wrappers relaxed EJSON keeps
    # (ObjectId, dates) or canonical adds (numbers). The common ones first, each in as few steps
    # as Python allows; everything else below.
    size = len(obj)
    if size == 1:
        key, value = next(iter(obj.items()))
        value_type = type(value)
        if value_type is str:
            if key == "$oid":
                return ObjectId(value)
            if key == "$date":
                return _iso_date(value)
            if key == "$numberInt" or key == "$numberLong":
                return int(value)
            if key == "$numberDouble":
                return float(value)
        elif value_type is int and key == "$date":
            try:
                return _EPOCH + datetime.timedelta(0, *_seconds_and_microseconds(value))
            except OverflowError:
                return DatetimeMS(value)
        if key[:1] != "$":
            return obj
    elif size != 2:
        return obj
    return _other_wrapper(obj, size)


def _seconds_and_microseconds(ms):
    seconds, rest = divmod(ms, 1000)
    return seconds, rest * 1000


def _other_wrapper(obj, size):
    key = next(iter(obj))
    if key[:1] != "$":
        return obj
    value = obj[key]
    if size == 2:
        if key == "$code" and "$scope" in obj and isinstance(value, str):
            return Code(value, obj["$scope"])
        if key == "$binary" and "$type" in obj and isinstance(value, str):  # v1
            return _binary_value(value, obj["$type"])
        return obj
    if key == "$undefined":
        return None if value is True else obj
    convert = _WRAPPERS.get(key)
    if convert is None:
        return obj  # $dbPointer, or a document with a $-prefixed field
    decoded = convert(value)
    # Wrappers never decode to None except $undefined, handled above.
    return obj if decoded is None else decoded


def loads(text):
    """Extended JSON text (str or bytes) as Python values."""
    return json.loads(text, object_hook=_object_hook)
