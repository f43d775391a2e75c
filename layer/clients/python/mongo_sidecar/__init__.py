"""mongo_sidecar: a thin client for the mongo-sidecar Lambda extension, which serves the Atlas
Data API on localhost over one pooled MongoDB connection. Standard library only.

    from mongo_sidecar import MongoSidecar
    users = MongoSidecar().db("app").collection("users")
    user = users.find_one({"email": "ada@example.com"})
"""

from .bson_types import Binary, Code, DatetimeMS, MaxKey, MinKey, ObjectId, Regex, Timestamp
from .client import (
    BulkWriteResult,
    Collection,
    Database,
    DeleteMany,
    DeleteOne,
    DeleteResult,
    InsertManyResult,
    InsertOne,
    InsertOneResult,
    MongoSidecar,
    ReplaceOne,
    ReturnDocument,
    UpdateMany,
    UpdateOne,
    UpdateResult,
)
from .ejson import dumps as ejson_dumps
from .ejson import loads as ejson_loads
from .errors import MongoSidecarError

__version__ = "0.1.0"

__all__ = [
    "Binary",
    "BulkWriteResult",
    "Code",
    "Collection",
    "Database",
    "DatetimeMS",
    "DeleteMany",
    "DeleteOne",
    "DeleteResult",
    "InsertManyResult",
    "InsertOne",
    "InsertOneResult",
    "MaxKey",
    "MinKey",
    "MongoSidecar",
    "MongoSidecarError",
    "ObjectId",
    "Regex",
    "ReplaceOne",
    "ReturnDocument",
    "Timestamp",
    "UpdateMany",
    "UpdateOne",
    "UpdateResult",
    "ejson_dumps",
    "ejson_loads",
]
