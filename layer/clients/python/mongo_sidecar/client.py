"""The driver-like surface: client -> database -> collection -> one method per Data API action.

Keyword options are the action's body fields in snake_case (``max_time_ms``, ``array_filters``,
``return_document``...), sent in camelCase; options left at None are not sent. The sidecar
rejects fields an action does not take with a 400.
"""

from collections.abc import Mapping

from .transport import DEFAULT_MAX_RETRY_WAIT, Transport

_CAMEL_EXCEPTIONS = {"max_time_ms": "maxTimeMS"}


def _camel(name):
    if name in _CAMEL_EXCEPTIONS:
        return _CAMEL_EXCEPTIONS[name]
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _fields(options):
    """Keyword options as body fields, with pymongo's shorthands accepted."""
    out = {}
    for name, value in options.items():
        if value is None:
            continue
        key = _camel(name)
        if key in ("sort", "hint") and isinstance(value, (list, tuple)):
            value = dict(value)  # [("age", -1), ("name", 1)]
        elif key == "projection" and isinstance(value, (list, tuple)):
            value = {path: 1 for path in value}  # ["name", "age"]
        elif key == "returnDocument" and isinstance(value, bool):
            value = "after" if value else "before"  # pymongo's ReturnDocument.AFTER is True
        out[key] = value
    return out


class ReturnDocument:
    BEFORE = "before"
    AFTER = "after"


# bulk_write operations, in pymongo's spelling. Each is the Data API's own form, a dict such as
# {"updateOne": {"filter": ..., "update": ...}}, so plain dicts of that form work as well.


class InsertOne(dict):
    def __init__(self, document):
        super().__init__(insertOne={"document": document})


class UpdateOne(dict):
    def __init__(self, filter, update, upsert=None, array_filters=None, hint=None, collation=None):
        super().__init__(updateOne=_fields(dict(filter=filter, update=update, upsert=upsert,
                                                array_filters=array_filters, hint=hint, collation=collation)))


class UpdateMany(dict):
    def __init__(self, filter, update, upsert=None, array_filters=None, hint=None, collation=None):
        super().__init__(updateMany=_fields(dict(filter=filter, update=update, upsert=upsert,
                                                 array_filters=array_filters, hint=hint, collation=collation)))


class ReplaceOne(dict):
    def __init__(self, filter, replacement, upsert=None, hint=None, collation=None):
        super().__init__(replaceOne=_fields(dict(filter=filter, replacement=replacement, upsert=upsert,
                                                 hint=hint, collation=collation)))


class DeleteOne(dict):
    def __init__(self, filter, hint=None, collation=None):
        super().__init__(deleteOne=_fields(dict(filter=filter, hint=hint, collation=collation)))


class DeleteMany(dict):
    def __init__(self, filter, hint=None, collation=None):
        super().__init__(deleteMany=_fields(dict(filter=filter, hint=hint, collation=collation)))


def _operation(op):
    """A bulk_write operation as the Data API takes it; snake_case keys inside are accepted."""
    if not isinstance(op, Mapping) or len(op) != 1:
        raise TypeError(f"a bulk_write operation is a dict such as {{'insertOne': {{'document': ...}}}}, not {op!r}")
    (name, spec), = op.items()
    if isinstance(spec, Mapping):
        spec = _fields(spec)
    return {_camel(name): spec}


class _Result:
    """A write's outcome, with pymongo's attribute names. (Not a dataclass: importing dataclasses
    costs a Lambda cold start several milliseconds.)"""

    __slots__ = ()

    def __init__(self, *values):
        for name, value in zip(self.__slots__, values):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __repr__(self):
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"


class InsertOneResult(_Result):
    __slots__ = ("inserted_id",)


class InsertManyResult(_Result):
    __slots__ = ("inserted_ids",)


class UpdateResult(_Result):
    __slots__ = ("matched_count", "modified_count", "upserted_id")


class DeleteResult(_Result):
    __slots__ = ("deleted_count",)


class BulkWriteResult(_Result):
    """``upserted_ids`` maps the index of each upserting operation to the new document's _id."""

    __slots__ = ("inserted_count", "matched_count", "modified_count", "deleted_count", "upserted_count",
                 "upserted_ids")


def _update_result(body):
    return UpdateResult(body["matchedCount"], body["modifiedCount"], body.get("upsertedId"))


class MongoSidecar:
    """A client of the sidecar.

    host, port: default MONGO_SIDECAR_HOST / MONGO_SIDECAR_PORT, else 127.0.0.1:27080.
    socket_path: a Unix socket instead of TCP; default MONGO_SIDECAR_SOCKET.
    token: default MONGO_SIDECAR_TOKEN, else AWS_SESSION_TOKEN (read at each call).
    data_source: default none sent, so the sidecar's default data source.
    timeout: seconds to wait for an answer; default None, no limit (the sidecar bounds every
        operation itself).
    max_retry_wait: longest wait, in seconds, before retrying a 503 Warming; default 1.
    """

    def __init__(self, host=None, port=None, socket_path=None, token=None, data_source=None, timeout=None,
                 max_retry_wait=DEFAULT_MAX_RETRY_WAIT):
        self._transport = Transport(host=host, port=port, socket_path=socket_path, token=token,
                                    timeout=timeout, max_retry_wait=max_retry_wait)
        self.data_source = data_source

    def db(self, name) -> "Database":
        return Database(self, name)

    __getitem__ = db

    def action(self, name, database, collection, fields=None):
        """Runs any action; ``fields`` are its body fields (camelCase) besides dataSource,
        database and collection. Returns the decoded Data API response body."""
        body = {}
        if self.data_source is not None:
            body["dataSource"] = self.data_source
        body.update(fields or {})
        body["database"] = database
        body["collection"] = collection
        return self._transport.call_action(name, body)

    @property
    def last_server_timing(self):
        """Where the sidecar spent the time of the last answer this thread received, from its
        Server-Timing header: {"queue": ms, "db": ms, "total": ms}, or None without one."""
        return self._transport.last_server_timing

    def health(self):
        """The sidecar's GET /health body: ``status`` is "ready", "warming" or "unavailable"."""
        return self._transport.health()

    def close(self):
        """Closes the kept-alive connections (the client still works: it opens new ones)."""
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Database:
    def __init__(self, client, name):
        if not isinstance(name, str) or not name:
            raise TypeError("a database name is required")
        self.client = client
        self.name = name

    def collection(self, name) -> "Collection":
        return Collection(self, name)

    __getitem__ = collection


class Collection:
    def __init__(self, database, name):
        if not isinstance(name, str) or not name:
            raise TypeError("a collection name is required")
        self.client = database.client
        self.database_name = database.name
        self.name = name

    def _run(self, action, options, **fields):
        body = _fields(options)
        body.update((k, v) for k, v in fields.items() if v is not None)
        return self.client.action(action, self.database_name, self.name, body)

    def find_one(self, filter=None, projection=None, **options) -> "dict | None":
        """The first match, or None. A filter that is not a dict is taken as an ``_id``."""
        if filter is not None and not isinstance(filter, Mapping):
            filter = {"_id": filter}
        return self._run("findOne", dict(options, projection=projection), filter=filter)["document"]

    def find(self, filter=None, projection=None, **options) -> "list[dict]":
        return self._run("find", dict(options, projection=projection), filter=filter)["documents"]

    def insert_one(self, document, **options) -> InsertOneResult:
        return InsertOneResult(self._run("insertOne", options, document=document)["insertedId"])

    def insert_many(self, documents, **options) -> InsertManyResult:
        return InsertManyResult(self._run("insertMany", options, documents=list(documents))["insertedIds"])

    def update_one(self, filter, update, **options) -> UpdateResult:
        return _update_result(self._run("updateOne", options, filter=filter, update=update))

    def update_many(self, filter, update, **options) -> UpdateResult:
        return _update_result(self._run("updateMany", options, filter=filter, update=update))

    def replace_one(self, filter, replacement, **options) -> UpdateResult:
        return _update_result(self._run("replaceOne", options, filter=filter, replacement=replacement))

    def delete_one(self, filter, **options) -> DeleteResult:
        return DeleteResult(self._run("deleteOne", options, filter=filter)["deletedCount"])

    def delete_many(self, filter, **options) -> DeleteResult:
        return DeleteResult(self._run("deleteMany", options, filter=filter)["deletedCount"])

    def aggregate(self, pipeline, **options) -> "list[dict]":
        return self._run("aggregate", options, pipeline=list(pipeline))["documents"]

    def count_documents(self, filter=None, **options) -> int:
        return self._run("countDocuments", options, filter=filter)["count"]

    def estimated_document_count(self, **options) -> int:
        return self._run("estimatedDocumentCount", options)["count"]

    def distinct(self, key, filter=None, **options) -> list:
        return self._run("distinct", options, key=key, filter=filter)["values"]

    def find_one_and_update(self, filter, update, **options) -> "dict | None":
        return self._run("findOneAndUpdate", options, filter=filter, update=update)["document"]

    def find_one_and_replace(self, filter, replacement, **options) -> "dict | None":
        return self._run("findOneAndReplace", options, filter=filter, replacement=replacement)["document"]

    def find_one_and_delete(self, filter, **options) -> "dict | None":
        return self._run("findOneAndDelete", options, filter=filter)["document"]

    def bulk_write(self, operations, **options) -> BulkWriteResult:
        body = self._run("bulkWrite", options, operations=[_operation(op) for op in operations])
        return BulkWriteResult(
            body["insertedCount"],
            body["matchedCount"],
            body["modifiedCount"],
            body["deletedCount"],
            body["upsertedCount"],
            {int(index): value for index, value in body.get("upsertedIds", {}).items()},
        )
