"""Malformed and hostile requests, over real sockets, against a running sidecar with a token.

Every case is generated from the tables below. Each must get a 4xx with the Data API error body
`{"error": str, "error_code": str}` whose message shows no Rust type, file path or stack; none
may get a 5xx; the process must stay up; and afterwards the sidecar must still serve a normal
insert and find, with nothing written by any of the bad requests. Requests that stop halfway or
break HTTP itself go over raw sockets: they must get a 4xx or a closed connection, never a hang.

The per-action field lists mirror the request schemas of extension/openapi.json, which a unit test
of the decoder (http/decode.rs) holds to exactly the fields the code reads;
`test_field_table_matches_the_source` fails when an action or a field is missing from the table.
"""

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from harness import REPO_ROOT
from secsupport import TOKEN, error_body_problems, raw_exchange, record_tally, running, split_response

DB = "sec_bad_input"
COLL = "c"
NS = {"dataSource": "mongodb-atlas", "database": DB, "collection": COLL}

# The tight sidecar: small body limit and short read timeouts (the minimums allowed are 1024
# bytes and 100 ms).
TIGHT_BODY_LIMIT = 2048
HEADER_TIMEOUT_MS = 400
BODY_TIMEOUT_MS = 600
TIGHT_ENV = {
    "MONGO_SIDECAR_TOKEN": TOKEN,
    "MONGO_SIDECAR_MAX_BODY_BYTES": str(TIGHT_BODY_LIMIT),
    "MONGO_SIDECAR_HEADER_TIMEOUT_MS": str(HEADER_TIMEOUT_MS),
    "MONGO_SIDECAR_BODY_TIMEOUT_MS": str(BODY_TIMEOUT_MS),
}

JS = {"body": "function() { return 1 }", "args": [], "lang": "js"}

# ---------------------------------------------------------------------------------------------
# The fields of each action (extension/openapi.json, held to the code by http/decode.rs), by kind.

ACTION_FIELDS: dict[str, dict[str, str]] = {
    "findOne": {"filter": "document", "projection": "document", "sort": "document", "skip": "count",
                "hint": "hint", "collation": "collation", "comment": "any", "let": "document"},
    "find": {"filter": "document", "projection": "document", "sort": "document", "skip": "count",
             "limit": "count", "hint": "hint", "collation": "collation", "comment": "any",
             "let": "document", "batchSize": "count"},
    "insertOne": {"document": "document", "bypassDocumentValidation": "bool", "comment": "any"},
    "insertMany": {"documents": "documents", "ordered": "bool", "bypassDocumentValidation": "bool",
                   "comment": "any"},
    "updateOne": {"filter": "document", "update": "update", "upsert": "bool", "arrayFilters": "documents",
                  "hint": "hint", "collation": "collation", "bypassDocumentValidation": "bool",
                  "comment": "any", "let": "document"},
    "replaceOne": {"filter": "document", "replacement": "replacement", "upsert": "bool", "hint": "hint",
                   "collation": "collation", "bypassDocumentValidation": "bool", "comment": "any",
                   "let": "document"},
    "deleteOne": {"filter": "document", "hint": "hint", "collation": "collation", "comment": "any",
                  "let": "document"},
    "aggregate": {"pipeline": "documents", "hint": "hint", "collation": "collation", "comment": "any",
                  "let": "document", "allowDiskUse": "bool", "bypassDocumentValidation": "bool",
                  "batchSize": "count"},
    "countDocuments": {"filter": "document", "limit": "count", "skip": "count", "hint": "hint",
                       "collation": "collation", "comment": "any"},
    "estimatedDocumentCount": {"comment": "any"},
    "distinct": {"key": "key", "filter": "document", "hint": "hint", "collation": "collation",
                 "comment": "any"},
    "findOneAndUpdate": {"filter": "document", "update": "update", "projection": "document",
                         "sort": "document", "upsert": "bool", "returnDocument": "returnDocument",
                         "arrayFilters": "documents", "hint": "hint", "collation": "collation",
                         "bypassDocumentValidation": "bool", "comment": "any", "let": "document"},
    "findOneAndReplace": {"filter": "document", "replacement": "replacement", "projection": "document",
                          "sort": "document", "upsert": "bool", "returnDocument": "returnDocument",
                          "hint": "hint", "collation": "collation", "bypassDocumentValidation": "bool",
                          "comment": "any", "let": "document"},
    "findOneAndDelete": {"filter": "document", "projection": "document", "sort": "document",
                         "hint": "hint", "collation": "collation", "comment": "any", "let": "document"},
    "bulkWrite": {"operations": "operations", "ordered": "bool", "bypassDocumentValidation": "bool",
                  "comment": "any"},
}
ACTION_FIELDS["updateMany"] = ACTION_FIELDS["updateOne"]
ACTION_FIELDS["deleteMany"] = ACTION_FIELDS["deleteOne"]
for _fields in ACTION_FIELDS.values():
    _fields["maxTimeMS"] = "maxTimeMS"  # every action takes it (http/decode.rs: options_of)

#: Fields an action cannot do without.
REQUIRED = {
    "insertOne": ["document"], "insertMany": ["documents"],
    "updateOne": ["filter", "update"], "updateMany": ["filter", "update"],
    "replaceOne": ["filter", "replacement"], "deleteOne": ["filter"], "deleteMany": ["filter"],
    "aggregate": ["pipeline"], "distinct": ["key"],
    "findOneAndUpdate": ["filter", "update"], "findOneAndReplace": ["filter", "replacement"],
    "findOneAndDelete": ["filter"], "bulkWrite": ["operations"],
}

#: A valid body for each action: the bad cases change one thing in it. None writes anything that
#: stays: the bad cases are all refused before the database, and the suite checks that at the end.
VALID = {
    "findOne": {"filter": {"_id": 1}},
    "find": {"filter": {"_id": 1}, "limit": 1},
    "insertOne": {"document": {"_id": "never"}},
    "insertMany": {"documents": [{"_id": "never"}]},
    "updateOne": {"filter": {"_id": "none"}, "update": {"$set": {"a": 1}}},
    "updateMany": {"filter": {"_id": "none"}, "update": {"$set": {"a": 1}}},
    "replaceOne": {"filter": {"_id": "none"}, "replacement": {"a": 1}},
    "deleteOne": {"filter": {"_id": "none"}},
    "deleteMany": {"filter": {"_id": "none"}},
    "aggregate": {"pipeline": [{"$match": {"_id": "none"}}]},
    "countDocuments": {"filter": {}},
    "estimatedDocumentCount": {},
    "distinct": {"key": "a"},
    "findOneAndUpdate": {"filter": {"_id": "none"}, "update": {"$set": {"a": 1}}},
    "findOneAndReplace": {"filter": {"_id": "none"}, "replacement": {"a": 1}},
    "findOneAndDelete": {"filter": {"_id": "none"}},
    "bulkWrite": {"operations": [{"deleteOne": {"filter": {"_id": "none"}}}]},
}

BAD_EJSON = [  # (wrapper value, what it tests); each is refused by ejson::to_bson
    ({"$oid": 1}, "$oid number"), ({"$oid": "zz"}, "$oid short"), ({"$oid": "g" * 24}, "$oid not hex"),
    ({"$oid": "a" * 25}, "$oid 25 chars"), ({"$oid": None}, "$oid null"),
    ({"$oid": "65f0a1b2c3d4e5f601234567", "x": 1}, "$oid extra key"),
    ({"$oid": "65f0a1b2c3d4e5f601234567", "$date": 0}, "two wrappers"),
    ({"$date": "yesterday"}, "$date words"), ({"$date": "2024-13-45T99:00:00Z"}, "$date impossible"),
    ({"$date": True}, "$date bool"), ({"$date": []}, "$date array"), ({"$date": 1.5}, "$date fraction"),
    ({"$date": {"$numberLong": "x"}}, "$date bad long"), ({"$date": {"$numberLong": "9223372036854775808"}}, "$date long overflow"),
    ({"$date": {"$numberDouble": "1.0"}}, "$date double"), ({"$date": 1e300}, "$date huge"),
    ({"$numberInt": "3000000000"}, "$numberInt overflow"), ({"$numberInt": "-2147483649"}, "$numberInt underflow"),
    ({"$numberInt": "1.5"}, "$numberInt fraction"), ({"$numberInt": "+1"}, "$numberInt plus"),
    ({"$numberInt": 1}, "$numberInt number"), ({"$numberInt": ""}, "$numberInt empty"),
    ({"$numberInt": " 1"}, "$numberInt space"), ({"$numberInt": "0x10"}, "$numberInt hex"),
    ({"$numberLong": "9223372036854775808"}, "$numberLong overflow"),
    ({"$numberLong": "-9223372036854775809"}, "$numberLong underflow"),
    ({"$numberLong": "1e3"}, "$numberLong exponent"), ({"$numberLong": 5}, "$numberLong number"),
    ({"$numberLong": "+5"}, "$numberLong plus"), ({"$numberLong": None}, "$numberLong null"),
    ({"$numberDouble": "inf"}, "$numberDouble inf"), ({"$numberDouble": "nan"}, "$numberDouble nan"),
    ({"$numberDouble": "1,5"}, "$numberDouble comma"), ({"$numberDouble": 1.5}, "$numberDouble number"),
    ({"$numberDouble": "0x1p3"}, "$numberDouble hex"), ({"$numberDouble": ""}, "$numberDouble empty"),
    ({"$numberDouble": "-"}, "$numberDouble minus"), ({"$numberDouble": "1e"}, "$numberDouble dangling e"),
    ({"$numberDecimal": "abc"}, "$numberDecimal words"), ({"$numberDecimal": 1}, "$numberDecimal number"),
    ({"$numberDecimal": "1.2.3"}, "$numberDecimal two points"),
    ({"$binary": {"base64": "!!", "subType": "00"}}, "$binary bad base64"),
    ({"$binary": {"base64": "AQID", "subType": "zz"}}, "$binary subtype not hex"),
    ({"$binary": {"base64": "AQID", "subType": "100"}}, "$binary subtype 3 digits"),
    ({"$binary": {"base64": "AQID", "subType": 0}}, "$binary subtype number"),
    ({"$binary": {"base64": "AQID"}}, "$binary no subtype"),
    ({"$binary": {"base64": "AQID", "subType": "00", "x": 1}}, "$binary extra key"),
    ({"$binary": "AQID"}, "$binary v1 without $type"), ({"$binary": "AQID", "$type": 0}, "$binary v1 numeric $type"),
    ({"$binary": 5}, "$binary number"),
    ({"$uuid": "nope"}, "$uuid words"), ({"$uuid": "00112233445566778899aabbccddeeff"}, "$uuid no dashes"),
    ({"$uuid": "0011223-34455-6677-8899-aabbccddeeff"}, "$uuid dashes moved"),
    ({"$uuid": "zz112233-4455-6677-8899-aabbccddeeff"}, "$uuid not hex"), ({"$uuid": 4}, "$uuid number"),
    ({"$regularExpression": {"pattern": "a", "options": "q"}}, "$regularExpression bad option"),
    ({"$regularExpression": {"pattern": 1, "options": ""}}, "$regularExpression pattern number"),
    ({"$regularExpression": {"pattern": "a"}}, "$regularExpression no options"),
    ({"$regularExpression": {"pattern": "a", "options": "", "x": 1}}, "$regularExpression extra key"),
    ({"$regularExpression": "a"}, "$regularExpression string"),
    ({"$regularExpression": {"pattern": "a\u0000b", "options": ""}}, "$regularExpression NUL"),
    ({"$timestamp": {"t": -1, "i": 1}}, "$timestamp negative"), ({"$timestamp": {"t": 4294967296, "i": 1}}, "$timestamp t overflow"),
    ({"$timestamp": {"t": 1}}, "$timestamp no i"), ({"$timestamp": {"t": "1", "i": 1}}, "$timestamp t string"),
    ({"$timestamp": 5}, "$timestamp number"), ({"$timestamp": {"t": 1, "i": 1, "x": 1}}, "$timestamp extra key"),
    ({"$timestamp": {"t": 1.5, "i": 1}}, "$timestamp fraction"),
    ({"$minKey": 2}, "$minKey 2"), ({"$minKey": "1"}, "$minKey string"), ({"$minKey": True}, "$minKey bool"),
    ({"$maxKey": 0}, "$maxKey 0"), ({"$undefined": False}, "$undefined false"), ({"$undefined": 1}, "$undefined 1"),
    ({"$symbol": 1}, "$symbol number"), ({"$code": 1}, "$code number"),
    ({"$code": "x", "$scope": 1}, "$code scope number"), ({"$code": "x", "$scope": {}, "y": 1}, "$code extra key"),
    ({"$dbPointer": {"$ref": 1, "$id": {"$oid": "65f0a1b2c3d4e5f601234567"}}}, "$dbPointer ref number"),
    ({"$dbPointer": {"$ref": "a"}}, "$dbPointer no id"), ({"$dbPointer": "a"}, "$dbPointer string"),
]


@dataclass
class Case:
    category: str
    name: str
    body: bytes | None = None
    method: str = "POST"
    path: str = "/action/find"
    headers: dict = field(default_factory=lambda: {"Content-Type": "application/json"})
    token: str | None = TOKEN
    sidecar: str = "default"
    expect: int | None = None  # a specific status; any 4xx when None
    expect_code: str | None = None
    mentions: str | None = None  # a word the error message must contain


def body_of(action: str, **changes) -> dict:
    body = {**NS, **VALID[action]}
    for key, value in changes.items():
        if value is _DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


_DROP = object()


def action_case(category, name, action, body, **kwargs) -> Case:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Case(category, f"{action}: {name}", raw, path=f"/action/{action}", **kwargs)


# Wrong values for each kind of field.
WRONG = {
    "document": ["a string", 1, [{}], True, None, {"$oid": "zz"}],
    "documents": [{}, "x", 1, ["x"], [1], [None], True, None, [{"$oid": "zz"}]],
    "bool": ["true", 1, 0, [], {}, None],
    "count": [-1, 1.5, "5", True, [], {}, {"$numberLong": "-1"}, 18446744073709551615,
              {"$numberDecimal": "5"}, None, 9.0e15, {"$numberDouble": "NaN"}, {"$numberInt": "-5"}],
    "maxTimeMS": [0, -1, -0.0, 1.5, "100", None, {"$numberLong": "0"}],
    "key": [1, True, [], {}, None, ""],
    "hint": [1, True, [], None, {"$oid": "zz"}],
    "collation": ["en", 1, [], None, {"locale": 1}, {"strength": 2}],
    "update": ["x", 1, True, None, {}, {"a": 1}, {"$set": {"a": 1}, "b": 2}, ["x"], [1]],
    "replacement": ["x", 1, [], None, {"$set": {"a": 1}}],
    "returnDocument": ["sideways", 1, True, None, "After"],
    "operations": [{}, "x", [], [1], [{}],
                   [{"insertOne": {"document": {}}, "deleteOne": {"filter": {}}}],
                   [{"dropCollection": {}}], [{"insertOne": "x"}], [{"insertOne": {}}],
                   [{"insertOne": {"document": {}, "extra": 1}}],
                   [{"updateOne": {"filter": {}, "update": {"a": 1}}}],
                   [{"replaceOne": {"filter": {}, "replacement": {"$set": {"a": 1}}}}],
                   [{"deleteOne": {}}], [{"deleteMany": {"filter": "x"}}],
                   [{"updateMany": {"filter": {}, "update": {"$set": {"a": 1}}, "upsert": "yes"}}],
                   [{"deleteOne": {"filter": {"a": {"$oid": "zz"}}}}]],
    "any": [{"$oid": "zz"}, {"$date": "nope"}, [{"$numberInt": "x"}]],
}


def field_type_cases() -> list[Case]:
    cases = []
    for action, fields in ACTION_FIELDS.items():
        for name, kind in fields.items():
            for value in WRONG[kind]:
                # A wrong field is named in the message (bulkWrite names the operation inside),
                # except an integer too long for 64 bits, refused with its digits before any
                # field is read.
                mentions = None if kind in ("operations", "collation") else name
                if isinstance(value, int) and len(str(abs(value))) > 19:
                    mentions = str(value)
                cases.append(action_case("wrong type", f"{name}={json.dumps(value)[:40]}", action,
                                         body_of(action, **{name: value}), expect=400,
                                         expect_code="InvalidParameter", mentions=mentions))
    return cases


SHARED_BAD = [  # (field, value) for the fields every action shares; _DROP removes the field
    ("database", _DROP), ("collection", _DROP), ("database", 1), ("database", None), ("database", []),
    ("database", {}), ("database", -0), ("collection", 1), ("collection", None), ("collection", {}),
    ("database", ""), ("database", "a.b"), ("database", "a b"), ("database", "a$b"), ("database", "a/b"),
    ("database", "a\\b"), ("database", 'a"b'), ("database", "x" * 64), ("database", "a\u0000b"),
    ("collection", ""), ("collection", "system.users"), ("collection", "a$b"), ("collection", "a\u0000b"),
    ("collection", "x" * 256), ("dataSource", 1), ("dataSource", {}), ("dataSource", []),
]
# An unknown dataSource name is not in this table: with one data source configured every name
# selects it (mongo.rs, DataSources::select), as the hosted API's cluster names must keep working.


def shared_field_cases() -> list[Case]:
    cases = []
    for action in VALID:
        for name, value in SHARED_BAD:
            label = "missing" if value is _DROP else json.dumps(value)[:30]
            cases.append(action_case("shared fields", f"{name}={label}", action,
                                     body_of(action, **{name: value}), expect=400, expect_code="InvalidParameter",
                                     mentions=name))
    return cases


def missing_and_unknown_field_cases() -> list[Case]:
    cases = []
    for action, required in REQUIRED.items():
        for name in required:
            cases.append(action_case("missing field", f"no {name}", action, body_of(action, **{name: _DROP}),
                                     expect=400, mentions=name))
    for action in VALID:
        for unknown in ["filtr", "$where", "Filter", "", "documents " if action != "insertMany" else "document"]:
            if unknown in ACTION_FIELDS[action]:
                continue
            # "$where" is denied by the policy, which reads the whole body before any field.
            expect, mentions = (403, "$where") if unknown == "$where" else (400, "unknown field")
            cases.append(action_case("unknown field", f"field {unknown!r}", action,
                                     body_of(action, **{unknown: {}}), expect=expect, mentions=mentions))
    return cases


def broken_json_cases() -> list[Case]:
    valid = json.dumps(body_of("find")).encode()
    raw = []
    raw += [(f"truncated at {n}", valid[:n]) for n in range(1, len(valid), 6)]
    raw += [(f"trailing {g!r}", valid + g) for g in [b"x", b"}", b",", b"{}", b"\x00", b"]", b" null", b"\xff"]]
    text = valid.decode()
    raw += [
        ("utf-16-le", text.encode("utf-16-le")), ("utf-16-be", text.encode("utf-16-be")),
        ("utf-16 with BOM", text.encode("utf-16")), ("utf-32", text.encode("utf-32")),
        ("utf-8 BOM", b"\xef\xbb\xbf" + valid),
        ("latin-1 byte in a string", valid.replace(b'"_id"', b'"\xe9"')),
        ("overlong utf-8", valid.replace(b'"_id"', b'"\xc0\xaf"')),
        ("utf-8 encoded surrogate", valid.replace(b'"_id"', b'"\xed\xa0\x80"')),
        ("bare continuation byte", valid.replace(b'"_id"', b'"\x80"')),
        ("lone surrogate escape in a key", valid.replace(b'"_id"', b'"\\ud800"')),
        ("lone low surrogate escape", valid.replace(b'"_id"', b'"\\udc00x"')),
        ("NUL before the body", b"\x00" + valid), ("NUL between tokens", valid.replace(b", ", b",\x00 ", 1)),
        ("raw NUL in a string", valid.replace(b'"_id"', b'"a\x00b"')), ("only NUL", b"\x00"),
        ("raw tab in a string", valid.replace(b'"_id"', b'"a\tb"')),
        ("raw newline in a string", valid.replace(b'"_id"', b'"a\nb"')),
        ("limit 1e400", valid.replace(b'"limit": 1', b'"limit": 1e400')),
        ("limit -1e400", valid.replace(b'"limit": 1', b'"limit": -1e400')),
        ("limit 1e309", valid.replace(b'"limit": 1', b'"limit": 1e309')),
        ("filter value 1e400", valid.replace(b'"_id": 1', b'"_id": 1e400')),
        ("limit 99999999999999999999", valid.replace(b'"limit": 1', b'"limit": 99999999999999999999')),
        ("limit 2^64", valid.replace(b'"limit": 1', b'"limit": 18446744073709551616')),
        ("maxTimeMS -0", valid.replace(b'"limit": 1', b'"maxTimeMS": -0')),
        ("database -0", valid.replace(f'"database": "{DB}"'.encode(), b'"database": -0')),
        ("filter value 2^64-1", valid.replace(b'"_id": 1', b'"_id": 18446744073709551615')),
        ("filter value 2^63", valid.replace(b'"_id": 1', b'"_id": 9223372036854775808')),
        ("single quotes", valid.replace(b'"', b"'")), ("unquoted keys", b"{database: 1}"),
        ("trailing comma in object", valid[:-1] + b",}"), ("trailing comma in array", b'{"a": [1,]}'),
        ("comment", b"/* hi */" + valid), ("NaN", valid.replace(b'"limit": 1', b'"limit": NaN')),
        ("Infinity", valid.replace(b'"limit": 1', b'"limit": Infinity')),
        ("hex number", valid.replace(b'"limit": 1', b'"limit": 0x10')),
        ("leading zero", valid.replace(b'"limit": 1', b'"limit": 01')),
        ("plus sign", valid.replace(b'"limit": 1', b'"limit": +1')),
        ("bare fraction", valid.replace(b'"limit": 1', b'"limit": .5')),
        ("unterminated string", b'{"database": "abc'), ("bad escape", valid.replace(b'"_id"', b'"\\x41"')),
        ("short unicode escape", valid.replace(b'"_id"', b'"\\u12"')),
        ("array root", b"[]"), ("string root", b'"find"'), ("number root", b"1"), ("null root", b"null"),
        ("true root", b"true"), ("array of the body", b"[" + valid + b"]"),
        ("two objects", valid + valid), ("unclosed object", b"{"), ("lone brace", b"}"),
        ("just a colon", b":"), ("key without value", b'{"database"}'),
    ]
    return [Case("broken JSON", name, body, expect=400, expect_code="InvalidParameter") for name, body in raw]


def nesting_cases() -> list[Case]:
    def nested_object(depth):
        return '{"a":' * depth + "1" + "}" * depth

    def nested_array(depth):
        return "[" * depth + "1" + "]" * depth

    def mixed(depth):
        return '{"a":[' * depth + "1" + "]}" * depth

    wrap = lambda field, inner: ('{"database": "%s", "collection": "c", "%s": %s}' % (DB, field, inner)).encode()
    cases = []
    for depth in (65, 100, 129, 1000, 10_000):
        cases += [
            Case("nesting", f"filter objects {depth} deep", wrap("filter", nested_object(depth)), expect=400),
            Case("nesting", f"filter $and arrays {depth} deep", wrap("filter", '{"$and": %s}' % nested_array(depth)), expect=400),
            Case("nesting", f"filter mixed {depth} deep", wrap("filter", mixed(depth)), expect=400),
            Case("nesting", f"pipeline {depth} deep", wrap("pipeline", "[{\"$match\": %s}]" % nested_object(depth)),
                 path="/action/aggregate", expect=400),
            Case("nesting", f"insert {depth} deep", wrap("document", nested_object(depth)),
                 path="/action/insertOne", expect=400),
        ]
    cases += [
        Case("nesting", "root array 10000 deep", nested_array(10_000).encode(), expect=400),
        Case("nesting", "root object 10000 deep", nested_object(10_000).encode(), expect=400),
        Case("nesting", "unclosed 10000 deep", ("[" * 10_000).encode(), expect=400),
        Case("nesting", "$scope 10000 deep", wrap("filter", '{"a": {"$code": "x", "$scope": %s}}' % nested_object(10_000)), expect=400),
    ]
    return cases


def bad_ejson_cases() -> list[Case]:
    cases = []
    for value, name in BAD_EJSON:
        for action, body in [
            ("find", body_of("find", filter={"a": value})),
            ("insertOne", body_of("insertOne", document={"a": value})),
            ("aggregate", body_of("aggregate", pipeline=[{"$match": {"a": {"$in": [value]}}}])),
            ("updateOne", body_of("updateOne", update={"$set": {"a": {"b": value}}})),
        ]:
            if name.startswith("$code"):
                # JavaScript code: the policy, which reads the whole body first, denies it.
                cases.append(action_case("invalid EJSON", name, action, body, expect=403, expect_code="Forbidden"))
            else:
                cases.append(action_case("invalid EJSON", name, action, body, expect=400,
                                         expect_code="InvalidParameter"))
    return cases


def body_size_cases() -> list[Case]:
    def padded(size, action="find"):
        body = json.dumps(body_of(action, comment="")).encode()
        return body.replace(b'"comment": ""', b'"comment": "' + b"x" * (size - len(body)) + b'"')

    cases = [
        Case("empty body", "empty", b"", expect=400), Case("empty body", "one space", b" ", expect=400),
        Case("empty body", "whitespace", b" \t\r\n ", expect=400),
        Case("empty body", "empty, no content type", b"", headers={}, expect=415),
    ]
    for action in ("find", "insertOne", "insertMany", "aggregate", "bulkWrite"):
        cases.append(Case("empty body", f"{action}: empty", b"", path=f"/action/{action}", expect=400))
    for size in (TIGHT_BODY_LIMIT + 1, TIGHT_BODY_LIMIT + 100, 64 * 1024, 1024 * 1024):
        cases.append(Case("oversized body", f"{size} bytes", padded(size), sidecar="tight", expect=413,
                          expect_code="PayloadTooLarge"))
        cases.append(Case("oversized body", f"{size} bytes to insertMany", padded(size, "insertMany"),
                          path="/action/insertMany", sidecar="tight", expect=413))
    cases.append(Case("oversized body", "declared 1 GB, sent 2 bytes", b"{}", sidecar="tight", expect=413,
                      headers={"Content-Type": "application/json", "Content-Length": str(10**9)}))
    return cases


def injection_cases() -> list[Case]:
    where, function = {"$where": "this.a == 1"}, {"$expr": {"$function": JS}}
    code = {"a": {"$code": "function() { return 1 }"}}
    code_scope = {"a": {"$code": "function() { return x }", "$scope": {"x": 1}}}
    filters = {
        "$where top": where, "$where with $code": {"$where": {"$code": "this.a"}},
        "$function in $expr": function, "$where in $and": {"$and": [{"a": 1}, where]},
        "$where 5 deep in $or": {"$or": [{"$and": [{"$nor": [{"$or": [{"$and": [where]}]}]}]}]},
        "$function in $elemMatch": {"a": {"$elemMatch": function}},
        "$function under $not": {"a": {"$not": {"$elemMatch": function}}},
        "$accumulator in $expr": {"$expr": {"$accumulator": {}}}, "JavaScript code value": code,
        "JavaScript code with scope": code_scope,
    }
    cases = []
    for name, flt in filters.items():
        for action in ("findOne", "find", "updateOne", "updateMany", "replaceOne", "deleteOne", "deleteMany",
                       "countDocuments", "distinct", "findOneAndUpdate", "findOneAndReplace", "findOneAndDelete"):
            cases.append(action_case("operator injection", f"filter {name}", action, body_of(action, filter=flt),
                                     expect=403, expect_code="Forbidden"))
        for op in ("updateOne", "deleteMany", "replaceOne"):
            spec = {"filter": flt, **({"update": {"$set": {"a": 1}}} if op == "updateOne" else {}),
                    **({"replacement": {"a": 1}} if op == "replaceOne" else {})}
            cases.append(action_case("operator injection", f"bulkWrite {op} filter {name}", "bulkWrite",
                                     body_of("bulkWrite", operations=[{"insertOne": {"document": {}}}, {op: spec}]),
                                     expect=403, expect_code="Forbidden"))
    updates = {
        "$function in $set": {"$set": {"a": {"$function": JS}}},
        "pipeline $function": [{"$set": {"a": {"$function": JS}}}],
        "pipeline $accumulator": [{"$set": {"a": {"$accumulator": {}}}}],
        "pipeline $where deep": [{"$set": {"a": {"$cond": [{"$and": [{"$function": JS}]}, 1, 2]}}}],
        "code value in $set": {"$set": code},
    }
    for name, update in updates.items():
        for action in ("updateOne", "updateMany", "findOneAndUpdate"):
            cases.append(action_case("operator injection", f"update {name}", action, body_of(action, update=update),
                                     expect=403, expect_code="Forbidden"))
        cases.append(action_case("operator injection", f"bulkWrite update {name}", "bulkWrite",
                                 body_of("bulkWrite", operations=[{"updateMany": {"filter": {}, "update": update}}]),
                                 expect=403, expect_code="Forbidden"))
    out, merge = {"$out": "stolen"}, {"$merge": {"into": "stolen"}}
    pipelines = {
        "$out": [out], "$merge": [merge], "$out after $match": [{"$match": {}}, out],
        "$out in $facet": [{"$facet": {"x": [out]}}], "$merge in $facet": [{"$facet": {"x": [{"$match": {}}, merge]}}],
        "$out in $lookup": [{"$lookup": {"from": "c", "pipeline": [out], "as": "x"}}],
        "$merge in $lookup": [{"$lookup": {"from": "c", "pipeline": [merge], "as": "x"}}],
        "$merge in $unionWith": [{"$unionWith": {"coll": "c", "pipeline": [merge]}}],
        "$out in $facet in $lookup": [{"$facet": {"x": [{"$lookup": {"from": "c", "pipeline": [out], "as": "y"}}]}}],
        "$merge string form": [{"$merge": "stolen"}], "$out db form": [{"$out": {"db": "other", "coll": "x"}}],
        "$where in $match": [{"$match": {"$where": "true"}}],
        "$function in $addFields": [{"$addFields": {"x": {"$function": JS}}}],
        "$accumulator in $group": [{"$group": {"_id": 1, "x": {"$accumulator": {"init": "function(){}"}}}}],
        "$where in $lookup": [{"$lookup": {"from": "c", "pipeline": [{"$match": {"$where": "1"}}], "as": "x"}}],
        "$function in $facet": [{"$facet": {"x": [{"$project": {"y": {"$function": JS}}}]}}],
        "$function in $unionWith": [{"$unionWith": {"coll": "c", "pipeline": [{"$set": {"y": {"$function": JS}}}]}}],
        "$where in $graphLookup restrict": [{"$graphLookup": {"from": "c", "startWith": "$a", "connectFromField": "a",
                                                              "connectToField": "b", "as": "x",
                                                              "restrictSearchWithMatch": where}}],
        "code value in $match": [{"$match": code}],
    }
    for name, pipeline in pipelines.items():
        cases.append(action_case("operator injection", f"pipeline {name}", "aggregate",
                                 body_of("aggregate", pipeline=pipeline), expect=403, expect_code="Forbidden"))
        cases.append(action_case("operator injection", f"app route pipeline {name}", "aggregate",
                                 body_of("aggregate", pipeline=pipeline), expect=403, expect_code="Forbidden"))
        cases[-1].path = "/app/data-abcde/endpoint/data/v1/action/aggregate"
    return cases


ACTIONS = list(VALID)


def method_and_route_cases() -> list[Case]:
    cases = []
    valid = json.dumps(body_of("find")).encode()
    for action in ACTIONS:
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            cases.append(Case("wrong method", f"{method} /action/{action}", valid, method=method,
                              path=f"/action/{action}", expect=405, expect_code="MethodNotAllowed"))
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
        cases.append(Case("wrong method", f"{method} app route", valid, method=method,
                          path="/app/x/endpoint/data/v1/action/find", expect=405))
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        cases.append(Case("wrong method", f"{method} /health", valid, method=method, path="/health", expect=405))
        cases.append(Case("wrong method", f"{method} /metrics", valid, method=method, path="/metrics", expect=405))
    cases.append(Case("wrong method", "OPTIONS /action/find", None, method="OPTIONS", expect=405))
    for path in ["/", "/action", "/action/", "/action/find/extra", "/app/x/endpoint/data/v2/action/find",
                 "/app/endpoint/data/v1/action/find", "/ACTION/find", "/health/", "/healthz", "/metrics/",
                 "/admin", "/%2e%2e/health", "/action/find/../../health", "/api/v1/action/find",
                 "/app/x/endpoint/data/v1/action/find/x", "/" + "a" * 4000, "//action/find"]:
        for method in ("GET", "POST"):
            cases.append(Case("unknown route", f"{method} {path[:40]}", valid, method=method, path=path, expect=404,
                              expect_code="NotFound"))
    for name in ["FIND", "Find", "find%20", "find%00", "drop", "dropDatabase", "runCommand", "eval",
                 "listCollections", "insert", "__proto__", "..%2Fhealth", "find.json", "findone", "aggregate%0a",
                 "bulkwrite", "watch", "mapReduce", "createIndex", "x" * 300]:
        cases.append(Case("unknown action", f"/action/{name[:40]}", valid, path=f"/action/{name}", expect=404,
                          expect_code="ActionNotFound"))
    return cases


def content_type_cases() -> list[Case]:
    valid = json.dumps(body_of("find")).encode()
    cases = []
    for action in ("find", "insertOne", "aggregate"):
        body = json.dumps(body_of(action)).encode()
        for content_type in [None, "", "text/plain", "application/xml", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x", "application/jsonx", "application/json-patch+json",
                             "application/vnd.api+json", "json", "application", "*/*", "text/json",
                             "application/ejson+zip", "application/\xe9json", "application/octet-stream"]:
            headers = {} if content_type is None else {"Content-Type": content_type}
            cases.append(Case("content type", f"{action}: {content_type!r}", body, path=f"/action/{action}",
                              headers=headers, expect=415, expect_code="UnsupportedMediaType"))
    del valid
    return cases


def auth_cases() -> list[Case]:
    import base64

    basic = base64.b64encode(f"user:{TOKEN}".encode()).decode()
    missing = [  # (name, headers): no usable token -> 400 InvalidParameter, as the Data API
        ("no token", {}), ("empty apiKey", {"apiKey": ""}), ("blank apiKey", {"apiKey": "   "}),
        ("Bearer without token", {"Authorization": "Bearer "}), ("Basic", {"Authorization": f"Basic {basic}"}),
        ("token without scheme", {"Authorization": TOKEN}), ("BEARER upper case", {"Authorization": f"BEARER {TOKEN}"}),
        ("token in a cookie", {"Cookie": f"apiKey={TOKEN}"}), ("token in X-Api-Key", {"X-Api-Key-X": TOKEN}),
    ]
    wrong = [  # a token that is not the one -> 401 InvalidSession
        ("wrong apiKey", {"apiKey": "wrong"}), ("token plus a byte", {"apiKey": TOKEN + "x"}),
        ("token less a byte", {"apiKey": TOKEN[:-1]}), ("token upper case", {"apiKey": TOKEN.upper()}),
        ("wrong Bearer", {"Authorization": "Bearer wrong"}), ("wrong api-key", {"api-key": "nope"}),
        ("wrong apiKey, right Bearer", {"apiKey": "nope", "Authorization": f"Bearer {TOKEN}"}),
        ("token with NUL escape", {"apiKey": TOKEN + "%00"}), ("prefix of the token", {"apiKey": TOKEN[:4]}),
    ]
    cases = []
    for action in ("find", "insertOne", "deleteMany", "aggregate", "bulkWrite"):
        body = json.dumps(body_of(action)).encode()
        for name, headers in missing:
            cases.append(Case("token", f"{action}: {name}", body, path=f"/action/{action}", token=None,
                              headers={"Content-Type": "application/json", **headers}, expect=400,
                              expect_code="InvalidParameter"))
        for name, headers in wrong:
            cases.append(Case("token", f"{action}: {name}", body, path=f"/action/{action}", token=None,
                              headers={"Content-Type": "application/json", **headers}, expect=401,
                              expect_code="InvalidSession"))
        cases.append(Case("token", f"{action}: token in the query", body, path=f"/action/{action}?apiKey={TOKEN}",
                          token=None, expect=400))
    return cases


def proxied_cases() -> list[Case]:
    cases = []
    for action in ("find", "insertOne", "deleteMany", "aggregate"):
        body = json.dumps(body_of(action)).encode()
        for name, headers in [("X-Forwarded-For", {"X-Forwarded-For": "10.0.0.1"}),
                              ("x-forwarded-for loopback", {"x-forwarded-for": "127.0.0.1"}),
                              ("Forwarded", {"Forwarded": "for=10.0.0.1;proto=http"}),
                              ("both", {"X-Forwarded-For": "1.2.3.4", "Forwarded": "for=1.2.3.4"}),
                              ("empty X-Forwarded-For", {"X-Forwarded-For": ""})]:
            cases.append(Case("proxied", f"{action}: {name}", body, path=f"/action/{action}",
                              headers={"Content-Type": "application/json", **headers}, expect=400,
                              mentions="proxy"))
    return cases


def all_cases() -> list[Case]:
    return (field_type_cases() + shared_field_cases() + missing_and_unknown_field_cases() + broken_json_cases()
            + nesting_cases() + bad_ejson_cases() + body_size_cases() + injection_cases()
            + method_and_route_cases() + content_type_cases() + auth_cases() + proxied_cases())


# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sidecars(sidecar_bin, mongo_uri, mongo):
    mongo.drop_database(DB)
    with running(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN}) as default, running(mongo_uri, TIGHT_ENV) as tight:
        yield {"default": default, "tight": tight}


def send(sc, case: Case):
    try:
        return sc.request(case.method, case.path, case.body, token=case.token, headers=case.headers, timeout=20)
    except (BrokenPipeError, ConnectionResetError):
        # The sidecar answered (413) before reading a large body and closed the connection while
        # the body was still being sent; http.client gives up on the write. Read the answer the
        # way a careful client does: keep reading after the failed write.
        headers = {"Host": "127.0.0.1", **case.headers, "Connection": "close"}
        if case.token is not None:
            headers["apiKey"] = case.token
        body = case.body or b""
        headers.setdefault("Content-Length", str(len(body)))
        head = f"{case.method} {case.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        _, received, _ = raw_exchange(sc.port, [head.encode("latin-1") + b"\r\n", body], half_close=True, wait=20)
        status, response_headers, raw = split_response(received)
        return status or 0, response_headers, raw


def check(case: Case, status: int, headers: dict, raw: bytes) -> list[str]:
    problems = []
    if not 400 <= status < 500:
        problems.append(f"status {status}")
    elif case.expect is not None and status != case.expect:
        problems.append(f"status {status}, expected {case.expect}")
    problems += error_body_problems(status, headers, raw)
    if not problems:
        body = json.loads(raw)
        if case.expect_code and body["error_code"] != case.expect_code:
            problems.append(f"error_code {body['error_code']}, expected {case.expect_code}")
        if case.mentions and case.mentions.lower() not in body["error"].lower():
            problems.append(f"message does not mention {case.mentions!r}")
    return problems


def test_every_bad_input_gets_a_4xx_data_api_error(sidecars, mongo):
    cases = all_cases()
    keys = [(c.category, c.name, c.path, c.method, c.body, tuple(sorted(c.headers.items())), c.token) for c in cases]
    assert len(set(keys)) == len(keys), "the tables generate duplicate cases"
    assert len(cases) >= 300

    by_status, by_category, failures = Counter(), Counter(), []
    for case in cases:
        status, headers, raw = send(sidecars[case.sidecar], case)
        by_status[status] += 1
        by_category[f"{case.category} {status}"] += 1
        problems = check(case, status, headers, raw)
        if problems:
            failures.append(f"[{case.category}] {case.name}: {'; '.join(problems)} -> {raw[:200]!r}")
    record_tally("bad input, by status", by_status)
    record_tally("bad input, by category and status", by_category)
    print(f"{len(cases)} bad inputs: " + ", ".join(f"{s}: {n}" for s, n in sorted(by_status.items())))

    for name, sc in sidecars.items():
        assert sc.proc.poll() is None, f"the {name} sidecar died:\n{sc.log_text()[-3000:]}"
        assert "panic" not in sc.log_text(), sc.log_text()[-3000:]
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures[:60])
    assert not [s for s in by_status if s >= 500]

    # Nothing any bad request did reached the database.
    assert mongo[DB][COLL].count_documents({}) == 0
    assert "stolen" not in mongo[DB].list_collection_names()


# Requests that stop halfway or break HTTP itself: a 4xx or a closed connection, never a hang.

HEAD = (b"POST /action/find HTTP/1.1\r\nHost: 127.0.0.1\r\napiKey: " + TOKEN.encode()
        + b"\r\nContent-Type: application/json\r\n")
BODY = json.dumps(body_of("find")).encode()

RAW_CASES = {  # name -> (chunks, half_close, pause between chunks)
    "Content-Length 1000, 10 bytes, then close": ([HEAD + b"Content-Length: 1000\r\n\r\n", BODY[:10]], True, 0),
    "half the headers, then close": ([HEAD[: len(HEAD) // 2]], True, 0),
    "request line only, then close": ([b"POST /action/find HTTP/1.1\r\n"], True, 0),
    "headers, no body, then close": ([HEAD + b"Content-Length: 50\r\n\r\n"], True, 0),
    "chunked, cut mid-chunk, then close": ([HEAD + b"Transfer-Encoding: chunked\r\n\r\n40\r\n" + BODY[:10]], True, 0),
    "not HTTP": ([b"GARBAGE\r\n\r\n"], False, 0),
    "HTTP/0.9": ([b"GET /health\r\n"], False, 0),
    "HTTP/2 preface": ([b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"], False, 0),
    "HTTP/1.0 POST without Content-Length": ([HEAD.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n" + BODY], True, 0),
    "Content-Length and Transfer-Encoding": ([HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"], False, 0),
    "Content-Length not a number": ([HEAD + b"Content-Length: abc\r\n\r\n"], False, 0),
    "negative Content-Length": ([HEAD + b"Content-Length: -1\r\n\r\n"], False, 0),
    "two different Content-Lengths": ([HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef"], False, 0),
    "Content-Length over 2^64": ([HEAD + b"Content-Length: 99999999999999999999999\r\n\r\n"], False, 0),
    "chunk size not hex": ([HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"], False, 0),
    "chunk size overflow": ([HEAD + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n"], False, 0),
    "chunked body over the limit": ([HEAD + b"Transfer-Encoding: chunked\r\n\r\n1000\r\n" + b"a" * 4096 + b"\r\n0\r\n\r\n"], False, 0),
    "unknown Transfer-Encoding": ([HEAD + b"Transfer-Encoding: gzip\r\n\r\n" + BODY], True, 0),
    "500 KB header": ([HEAD + b"X-Big: " + b"a" * 500_000 + b"\r\n\r\n"], False, 0),
    "200 headers": ([HEAD + b"".join(b"X-%d: a\r\n" % i for i in range(200)) + b"\r\n"], False, 0),
    "NUL in a header name": ([HEAD + b"X-A\x00: a\r\nContent-Length: 2\r\n\r\n{}"], False, 0),
    "header without a colon": ([HEAD + b"NoColonHere\r\nContent-Length: 2\r\n\r\n{}"], False, 0),
    "obsolete line folding": ([HEAD + b"X-A: a\r\n b\r\nContent-Length: 2\r\n\r\n{}"], False, 0),
    "bare LF line ends": ([HEAD.replace(b"\r\n", b"\n") + b"Content-Length: 2\n\n{}"], True, 0),
    "space before the colon": ([HEAD + b"Content-Length : 2\r\n\r\n{}"], False, 0),
    "bad HTTP version": ([b"POST /action/find HTTP/9.9\r\nHost: x\r\n\r\n"], False, 0),
    "absolute-form URI to another host": ([HEAD.replace(b"/action/find", b"http://evil.example/action/find") + b"Content-Length: 2\r\n\r\n{}"], True, 0),
    "CONNECT": ([b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n"], False, 0),
    "Expect: 100-continue, no body": ([HEAD + b"Expect: 100-continue\r\nContent-Length: 40\r\n\r\n"], True, 0),
    "pipelined bad requests": ([(HEAD + b"Content-Length: 2\r\n\r\n[]") * 3], True, 0),
}

# A connection that has sent nothing at all is not here: since 11ed3c9 an idle connection (also a
# kept-alive one between requests) is deliberately not timed; only a request head that has
# started to arrive is.
TIMEOUT_CASES = {  # name -> (chunks, pause); each stalls: the sidecar must end the connection
    "half the headers, then stall": ([HEAD[:30]], 0),
    "headers, then stall before the body": ([HEAD + b"Content-Length: 100\r\n\r\n"], 0),
    "10 of 100 body bytes, then stall": ([HEAD + b"Content-Length: 100\r\n\r\n", BODY[:10]], 0),
    "chunked, then stall mid-chunk": ([HEAD + b"Transfer-Encoding: chunked\r\n\r\n10\r\nabc"], 0),
    "headers dripped a byte at a time": ([bytes([b]) for b in HEAD[:60]], 0.05),
    "body dripped a byte at a time": ([HEAD + b"Content-Length: 100\r\n\r\n"] + [b" "] * 60, 0.05),
}


def test_requests_that_stop_halfway_or_break_http_get_a_4xx_or_a_close(sidecars):
    tight = sidecars["tight"]
    outcomes, failures = Counter(), []
    for name, (chunks, half_close, pause) in RAW_CASES.items():
        elapsed, received, ended = raw_exchange(tight.port, chunks, half_close=half_close, pause=pause, wait=5)
        status, headers, body = split_response(received)
        outcome = status if status is not None else ended
        outcomes[outcome] += 1
        if ended == "hang" and status is None:
            # (A connection kept alive after a complete answer is fine: it waits for the next
            # request, and idle connections are not timed.)
            failures.append(f"{name}: no answer and no close after {elapsed:.1f} s")
        elif status is not None and not 400 <= status < 500:
            failures.append(f"{name}: status {status}: {received[:200]!r}")
        elif status is not None and body:
            # hyper's own answers to unparseable HTTP have no body; ours must be the Data API's.
            failures += [f"{name}: {p}" for p in error_body_problems(status, headers, body)]
    record_tally("raw-socket requests (status or how the connection ended)", outcomes)
    assert tight.proc.poll() is None, tight.log_text()[-3000:]
    assert not failures, "\n".join(failures)


def test_stalled_connections_are_timed_out(sidecars):
    """HEADER_TIMEOUT_MS / BODY_TIMEOUT_MS set low: a stalled connection is answered 408 or
    closed soon after the timeout, never held open."""
    tight = sidecars["tight"]
    limit = (max(HEADER_TIMEOUT_MS, BODY_TIMEOUT_MS) + 1500) / 1000
    outcomes, failures = Counter(), []
    for name, (chunks, pause) in TIMEOUT_CASES.items():
        elapsed, received, ended = raw_exchange(tight.port, chunks, pause=pause, wait=limit + 3)
        status, headers, body = split_response(received)
        outcomes[status if status is not None else ended] += 1
        if ended == "hang" or elapsed > limit:
            failures.append(f"{name}: still open after {elapsed:.1f} s (limit {limit:.1f} s)")
        if status is not None:
            if status != 408:
                failures.append(f"{name}: status {status}, expected 408 or a close")
            failures += [f"{name}: {p}" for p in error_body_problems(status, headers, body)]
        if elapsed < min(HEADER_TIMEOUT_MS, BODY_TIMEOUT_MS) / 1000 * 0.8:
            failures.append(f"{name}: ended after {elapsed:.2f} s, before any timeout could fire")
    record_tally("stalled connections (status or how the connection ended)", outcomes)
    assert not failures, "\n".join(failures)


def test_the_sidecar_still_serves_correctly_afterwards(sidecars, mongo):
    """Runs after the bad inputs (file order): both sidecars are alive and answer a normal
    insert and find with the right data."""
    for name, sc in sidecars.items():
        assert sc.proc.poll() is None, f"{name} died"
        doc = {"_id": f"after-{name}", "n": 42, "nested": {"list": [1, "two", None]}}
        status, body = sc.action("insertOne", {**NS, "collection": f"after_{name}", "document": doc}, token=TOKEN)
        assert (status, body) == (200, {"insertedId": f"after-{name}"})
        status, body = sc.action("find", {**NS, "collection": f"after_{name}", "filter": {}}, token=TOKEN)
        assert (status, body) == (200, {"documents": [doc]})
        status, _, _ = sc.request("GET", "/health")
        assert status == 200
        assert "panic" not in sc.log_text()


def test_field_table_matches_the_source():
    """The table above mirrors the request schemas of openapi.json (which the decoder's own unit
    test holds to the code): every action, and every field each takes besides the shared ones."""
    openapi = json.loads((REPO_ROOT / "extension/openapi.json").read_text())
    schemas = openapi["components"]["schemas"]
    shared = {"dataSource", "database", "collection", "maxTimeMS"}
    documented = {name[0].lower() + name[1:-len("Request")]: set(schema["properties"]) - shared
                  for name, schema in schemas.items() if name.endswith("Request")}
    assert set(documented) == set(VALID) == set(ACTION_FIELDS)
    for action, fields in ACTION_FIELDS.items():
        assert set(fields) - {"maxTimeMS"} == documented[action], action


# Regression tests for defects this suite found (each failed before its fix).


def test_duplicate_keys_are_rejected(sidecars):
    """`{"database": "a", ..., "database": "b"}` is ambiguous: a proxy or the handler's own
    validation may read the first, the sidecar acts on the last."""
    sc = sidecars["default"]
    bodies = [
        b'{"database": "%s", "collection": "c", "database": "other"}' % DB.encode(),
        b'{"database": "%s", "collection": "c", "filter": {"a": 1, "a": 2}}' % DB.encode(),
        b'{"database": "%s", "collection": "c", "limit": 1, "limit": 0}' % DB.encode(),
    ]
    statuses = [sc.request("POST", "/action/find", b, token=TOKEN,
                           headers={"Content-Type": "application/json"})[0] for b in bodies]
    assert statuses == [400, 400, 400]


def test_a_nul_byte_in_a_key_is_a_400_everywhere(sidecars):
    """A key BSON cannot hold is the client's error wherever it appears. (Before 13fe9df the same
    key in a filter, an update or a pipeline reached the driver, which reported it as an invalid
    server reply: 502 DatabaseError.)"""
    sc = sidecars["default"]
    key = "a\u0000b"
    results = {}
    for action, body in [
        ("insertOne", body_of("insertOne", document={key: 1})),
        ("find", body_of("find", filter={key: 1})),
        ("deleteOne", body_of("deleteOne", filter={key: 1})),
        ("updateOne", body_of("updateOne", update={"$set": {key: 1}})),
        ("aggregate", body_of("aggregate", pipeline=[{"$match": {key: 1}}])),
    ]:
        results[action] = sc.action(action, body, token=TOKEN)[0]
    assert results == dict.fromkeys(results, 400)


def test_malformed_number_strings_are_rejected(sidecars):
    """Extended JSON decimals are digit strings; the bson crate's lenient parser turns "" or "-"
    into 0 and "inf"/"snan" into special values, and "1e999" silently becomes Infinity.

    The oracle never reaches the database: the filter is converted first, then the unknown
    field `zz` is refused. A message about the unknown field means the wrapper was accepted."""
    sc = sidecars["default"]
    accepted = []
    for value in [{"$numberDecimal": s} for s in ["", ".", "-", "+", "e5", "-+1", "inf", "snan"]] + [
        {"$numberDouble": s} for s in ["1e999", "-1e999", "1e-999"]
    ]:
        status, body = sc.action("find", {**NS, "filter": {"a": value}, "zz": 1}, token=TOKEN)
        assert status == 400
        if "unknown field" in body["error"]:
            accepted.append(value)
    assert accepted == []


def test_integers_outside_64_bits_are_refused_in_both_directions(sidecars):
    """2^63 is refused ("out of range for a 64-bit integer") and so is any 20-digit integer,
    but -2^63-1 .. -9999999999999999999 pass the digit count and serde_json reads them as
    doubles: -9223372036854775809 is stored as -9223372036854775808.0."""
    sc = sidecars["default"]
    results = {}
    for literal in ["9223372036854775808", "-9223372036854775809", "-9999999999999999999"]:
        body = b'{"database": "%s", "collection": "c", "filter": {"a": %s}, "zz": 1}' % (DB.encode(), literal.encode())
        status, _, raw = sc.request("POST", "/action/find", body, token=TOKEN,
                                    headers={"Content-Type": "application/json"})
        results[literal] = "accepted" if "unknown field" in json.loads(raw)["error"] else "refused"
    assert results == dict.fromkeys(results, "refused")


RAW_VALUE_KEY = "$serde_json::private::RawValue"


def test_a_json_string_is_never_parsed_as_json(sidecars, mongo):
    """axum turns on serde_json's `raw_value` feature, under which an object whose key is
    `$serde_json::private::RawValue` (also spelled with \\u escapes) is replaced by the JSON text
    in its string. So operators and whole requests can travel inside strings, past anything that
    inspects the JSON before the sidecar, and past the sidecar's own pre-parse checks. The sidecar
    now reads bodies with its own strict reader, to which no key means anything."""
    sc = sidecars["default"]
    coll = "raw_value"
    mongo[DB][coll].insert_many([{"_id": 1, "a": 5}, {"_id": 2, "a": -5}])
    headers = {"Content-Type": "application/json"}
    base = {**NS, "collection": coll}
    smuggled = {
        "operator in a string": json.dumps({**base, "filter": {"a": {RAW_VALUE_KEY: '{"$gt": 0}'}}}).encode(),
        "escaped key": json.dumps({**base, "filter": {"a": {RAW_VALUE_KEY: '{"$gt": 0}'}}}).encode().replace(
            b'"$serde', b'"\\u0024serde'),
        "whole request in a string": json.dumps({RAW_VALUE_KEY: json.dumps({**base, "filter": {"_id": 1}})}).encode(),
    }
    decoded = {}
    for name, body in smuggled.items():
        status, _, raw = sc.request("POST", "/action/find", body, token=TOKEN, headers=headers)
        decoded[name] = status == 200 and json.loads(raw) == {"documents": [{"_id": 1, "a": 5}]}
    mongo[DB][coll].drop()
    assert decoded == dict.fromkeys(decoded, False)


def raw_value_layers(layers: int, width: int = 120) -> bytes:
    """A find whose filter nests `layers` RawValue strings, each holding `width` arrays: every
    layer gets serde_json's full recursion budget (128) again."""
    text = "1"
    for _ in range(layers):
        text = "[" * width + json.dumps({RAW_VALUE_KEY: text}) + "]" * width
    return json.dumps({**NS, "filter": {"a": "HERE"}}).replace('"HERE"', text).encode()


def test_nesting_hidden_in_strings_cannot_crash_the_sidecar(start_sidecar, mongo_uri):
    sc = start_sidecar(mongo_uri, {"MONGO_SIDECAR_TOKEN": TOKEN})
    outcomes = {}
    for layers in (4, 8, 12, 16):
        try:
            status, _, raw = sc.request("POST", "/action/find", raw_value_layers(layers), token=TOKEN,
                                        headers={"Content-Type": "application/json"})
        except OSError as e:
            status, raw = type(e).__name__, b""
        outcomes[layers] = (status, sc.proc.poll() is None)
        if sc.proc.poll() is not None:
            break
    assert outcomes == {n: (400, True) for n in (4, 8, 12, 16)}, (outcomes, sc.log_text()[-300:])
