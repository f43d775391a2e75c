//! Every operation the sidecar runs, as a typed request, the command it becomes, and the answer
//! it gives in the Data API's shapes.
//!
//! An [`Operation`] is an [`Action`], the [`Options`] the request set and its [`Payload`]. It
//! becomes one database command ([`command`]), built as BSON with every option in its place;
//! [`super::run`] sends it with the time that is left as its `maxTimeMS`.

use std::time::Duration;

use bson::oid::ObjectId;
use bson::raw::{RawArrayBuf, RawBsonRef, RawDocument};
use bson::{Bson, Document, RawBson, RawDocumentBuf, rawdoc};

/// The actions, as the URL names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    FindOne,
    Find,
    InsertOne,
    InsertMany,
    UpdateOne,
    UpdateMany,
    ReplaceOne,
    DeleteOne,
    DeleteMany,
    Aggregate,
    CountDocuments,
    EstimatedDocumentCount,
    Distinct,
    FindOneAndUpdate,
    FindOneAndReplace,
    FindOneAndDelete,
    BulkWrite,
}

impl Action {
    pub const ALL: [Action; 17] = [
        Action::FindOne,
        Action::Find,
        Action::InsertOne,
        Action::InsertMany,
        Action::UpdateOne,
        Action::UpdateMany,
        Action::ReplaceOne,
        Action::DeleteOne,
        Action::DeleteMany,
        Action::Aggregate,
        Action::CountDocuments,
        Action::EstimatedDocumentCount,
        Action::Distinct,
        Action::FindOneAndUpdate,
        Action::FindOneAndReplace,
        Action::FindOneAndDelete,
        Action::BulkWrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::FindOne => "findOne",
            Action::Find => "find",
            Action::InsertOne => "insertOne",
            Action::InsertMany => "insertMany",
            Action::UpdateOne => "updateOne",
            Action::UpdateMany => "updateMany",
            Action::ReplaceOne => "replaceOne",
            Action::DeleteOne => "deleteOne",
            Action::DeleteMany => "deleteMany",
            Action::Aggregate => "aggregate",
            Action::CountDocuments => "countDocuments",
            Action::EstimatedDocumentCount => "estimatedDocumentCount",
            Action::Distinct => "distinct",
            Action::FindOneAndUpdate => "findOneAndUpdate",
            Action::FindOneAndReplace => "findOneAndReplace",
            Action::FindOneAndDelete => "findOneAndDelete",
            Action::BulkWrite => "bulkWrite",
        }
    }

    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The single-document writes a bulkWrite may hold.
    pub fn is_bulk_item(self) -> bool {
        matches!(
            self,
            Action::InsertOne
                | Action::UpdateOne
                | Action::UpdateMany
                | Action::ReplaceOne
                | Action::DeleteOne
                | Action::DeleteMany
        )
    }
}

/// Every option an action may take. Each action's request fills only those it accepts; the
/// command builder puts each where its command wants it. Documents stay raw BSON, as the
/// Extended JSON reader wrote them: a command is assembled from their bytes.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub filter: Option<RawDocumentBuf>,
    pub projection: Option<RawDocumentBuf>,
    pub sort: Option<RawDocumentBuf>,
    pub skip: Option<u64>,
    pub limit: Option<u64>,
    pub batch_size: Option<u32>,
    /// An index name (a string) or a key pattern (a document).
    pub hint: Option<RawBson>,
    pub collation: Option<RawDocumentBuf>,
    pub comment: Option<RawBson>,
    pub let_vars: Option<RawDocumentBuf>,
    pub bypass_document_validation: Option<bool>,
    pub allow_disk_use: Option<bool>,
    pub upsert: Option<bool>,
    pub array_filters: Option<Vec<RawDocumentBuf>>,
    /// findOneAndUpdate/Replace: return the document after the change.
    pub return_after: Option<bool>,
    pub ordered: Option<bool>,
    /// The request's own `maxTimeMS`; the sidecar bounds it further.
    pub max_time: Option<Duration>,
}

/// What an action carries besides its options.
#[derive(Clone, Debug)]
pub enum Payload {
    None,
    /// insertOne's document (with its `_id`), a replacement.
    Document(RawDocumentBuf),
    /// insertMany's documents, each with its `_id`.
    Documents(Vec<RawDocumentBuf>),
    Update(Update),
    Pipeline(Vec<RawDocumentBuf>),
    /// distinct's key.
    Key(String),
    /// bulkWrite's operations, each a single-document write.
    Bulk(Vec<Operation>),
}

/// An update: operators, or an aggregation pipeline.
#[derive(Clone, Debug)]
pub enum Update {
    Operators(RawDocumentBuf),
    Pipeline(Vec<RawDocumentBuf>),
}

impl From<&Update> for RawBson {
    fn from(update: &Update) -> RawBson {
        match update {
            Update::Operators(d) => RawBson::Document(d.clone()),
            Update::Pipeline(stages) => RawBson::Array(array(stages)),
        }
    }
}

/// A request, decoded and checked, ready to run.
#[derive(Clone, Debug)]
pub struct Operation {
    pub action: Action,
    pub options: Options,
    pub payload: Payload,
}

/// Where an operation runs.
#[derive(Clone, Debug)]
pub struct Namespace {
    pub database: String,
    pub collection: String,
}

/// Gives a document an `_id` (first, as MongoDB stores it) unless it has one, as drivers do; the
/// id is what insertOne and insertMany answer with.
pub fn with_id(document: RawDocumentBuf) -> RawDocumentBuf {
    if matches!(document.get("_id"), Ok(Some(_))) {
        return document;
    }
    let mut out = RawDocumentBuf::new();
    out.append("_id", ObjectId::new());
    for (key, value) in document.iter().flatten() {
        out.append_ref(key, value);
    }
    out
}

impl Operation {
    /// Whether running it changes data: every write action, and an aggregation whose pipeline
    /// has `$out` or `$merge` at any depth. Read-only mode and the retry of reads both ask this.
    pub fn writes(&self) -> bool {
        match self.action {
            Action::FindOne
            | Action::Find
            | Action::CountDocuments
            | Action::EstimatedDocumentCount
            | Action::Distinct => false,
            Action::Aggregate => {
                matches!(&self.payload, Payload::Pipeline(stages) if stages.iter().any(|s| writes_at_any_depth(s)))
            }
            _ => true,
        }
    }

    /// Whether the command touches more than one document: such a write stopped part-way may
    /// have changed some of them.
    pub fn many(&self) -> bool {
        matches!(
            self.action,
            Action::UpdateMany | Action::DeleteMany | Action::InsertMany
        )
    }
}

/// The command an operation becomes (not for bulkWrite, whose operations each have their own),
/// as raw BSON assembled from the request's own bytes. `maxTimeMS`, `txnNumber` and the concerns
/// are appended when it is sent.
pub fn command(op: &Operation, collection: &str) -> RawDocumentBuf {
    let o = &op.options;
    let filter = || o.filter.clone().unwrap_or_default();
    let mut cmd = RawDocumentBuf::new();
    match op.action {
        Action::FindOne | Action::Find => {
            cmd.append("find", collection);
            cmd.append("filter", filter());
            put(&mut cmd, "projection", o.projection.clone());
            put(&mut cmd, "sort", o.sort.clone());
            put(&mut cmd, "skip", o.skip.map(count));
            if op.action == Action::FindOne {
                cmd.append("limit", 1);
                cmd.append("singleBatch", true);
            } else {
                put(&mut cmd, "limit", o.limit.map(count));
                put(&mut cmd, "batchSize", o.batch_size.map(i64::from));
                put(&mut cmd, "allowDiskUse", o.allow_disk_use);
            }
        }
        Action::Aggregate => {
            let Payload::Pipeline(stages) = &op.payload else {
                unreachable!("aggregate carries a pipeline")
            };
            let mut cursor = RawDocumentBuf::new();
            put(&mut cursor, "batchSize", o.batch_size.map(i64::from));
            cmd.append("aggregate", collection);
            cmd.append("pipeline", array(stages));
            cmd.append("cursor", cursor);
            put(&mut cmd, "allowDiskUse", o.allow_disk_use);
            put(
                &mut cmd,
                "bypassDocumentValidation",
                o.bypass_document_validation,
            );
        }
        Action::CountDocuments => {
            let mut stages = RawArrayBuf::new();
            stages.push(rawdoc! {"$match": filter()});
            if let Some(n) = o.skip {
                stages.push(rawdoc! {"$skip": count(n)});
            }
            if let Some(n) = o.limit {
                stages.push(rawdoc! {"$limit": count(n)});
            }
            stages.push(rawdoc! {"$group": {"_id": 1, "n": {"$sum": 1}}});
            cmd.append("aggregate", collection);
            cmd.append("pipeline", stages);
            cmd.append("cursor", RawDocumentBuf::new());
        }
        Action::EstimatedDocumentCount => cmd.append("count", collection),
        Action::Distinct => {
            let Payload::Key(key) = &op.payload else {
                unreachable!("distinct carries a key")
            };
            cmd.append("distinct", collection);
            cmd.append("key", key.as_str());
            cmd.append("query", filter());
        }
        Action::InsertOne | Action::InsertMany => {
            let documents = match &op.payload {
                Payload::Document(d) => array(std::slice::from_ref(d)),
                Payload::Documents(ds) => array(ds),
                _ => unreachable!("inserts carry documents"),
            };
            cmd.append("insert", collection);
            cmd.append("documents", documents);
            cmd.append("ordered", o.ordered.unwrap_or(true));
            put(
                &mut cmd,
                "bypassDocumentValidation",
                o.bypass_document_validation,
            );
        }
        Action::UpdateOne | Action::UpdateMany | Action::ReplaceOne => {
            let u = match &op.payload {
                Payload::Update(update) => RawBson::from(update),
                Payload::Document(replacement) => RawBson::Document(replacement.clone()),
                _ => unreachable!("updates carry an update or a replacement"),
            };
            let mut statement =
                rawdoc! {"q": filter(), "u": u, "multi": op.action == Action::UpdateMany};
            put(&mut statement, "upsert", o.upsert);
            put(
                &mut statement,
                "arrayFilters",
                o.array_filters.as_deref().map(array),
            );
            put(&mut statement, "hint", o.hint.clone());
            put(&mut statement, "collation", o.collation.clone());
            cmd.append("update", collection);
            cmd.append("updates", rawdoc_array(statement));
            cmd.append("ordered", true);
            put(
                &mut cmd,
                "bypassDocumentValidation",
                o.bypass_document_validation,
            );
            return with_shared(cmd, o, false);
        }
        Action::DeleteOne | Action::DeleteMany => {
            let limit = i32::from(op.action == Action::DeleteOne);
            let mut statement = rawdoc! {"q": filter(), "limit": limit};
            put(&mut statement, "hint", o.hint.clone());
            put(&mut statement, "collation", o.collation.clone());
            cmd.append("delete", collection);
            cmd.append("deletes", rawdoc_array(statement));
            cmd.append("ordered", true);
            return with_shared(cmd, o, false);
        }
        Action::FindOneAndUpdate | Action::FindOneAndReplace | Action::FindOneAndDelete => {
            cmd.append("findAndModify", collection);
            cmd.append("query", filter());
            put(&mut cmd, "sort", o.sort.clone());
            put(&mut cmd, "fields", o.projection.clone());
            match &op.payload {
                Payload::Update(update) => cmd.append("update", RawBson::from(update)),
                Payload::Document(replacement) => cmd.append("update", replacement.clone()),
                _ => cmd.append("remove", true),
            }
            if op.action != Action::FindOneAndDelete {
                cmd.append("new", o.return_after.unwrap_or(false));
                put(&mut cmd, "upsert", o.upsert);
            }
            put(
                &mut cmd,
                "arrayFilters",
                o.array_filters.as_deref().map(array),
            );
            put(
                &mut cmd,
                "bypassDocumentValidation",
                o.bypass_document_validation,
            );
        }
        Action::BulkWrite => unreachable!("a bulkWrite's operations each have their own command"),
    };
    with_shared(cmd, o, true)
}

/// The options most commands take at their top level. Updates and deletes keep `hint` and
/// `collation` in their statement instead.
fn with_shared(mut cmd: RawDocumentBuf, o: &Options, hint_and_collation: bool) -> RawDocumentBuf {
    if hint_and_collation {
        put(&mut cmd, "hint", o.hint.clone());
        put(&mut cmd, "collation", o.collation.clone());
    }
    put(&mut cmd, "comment", o.comment.clone());
    put(&mut cmd, "let", o.let_vars.clone());
    cmd
}

fn put(cmd: &mut RawDocumentBuf, key: &str, value: Option<impl Into<RawBson>>) {
    if let Some(value) = value {
        cmd.append(key, value);
    }
}

fn array(documents: &[RawDocumentBuf]) -> RawArrayBuf {
    let mut array = RawArrayBuf::new();
    for document in documents {
        array.push(document.clone());
    }
    array
}

fn rawdoc_array(document: RawDocumentBuf) -> RawArrayBuf {
    let mut array = RawArrayBuf::new();
    array.push(document);
    array
}

fn writes_at_any_depth(stage: &RawDocument) -> bool {
    fn writes(value: RawBsonRef<'_>) -> bool {
        match value {
            RawBsonRef::Document(doc) => writes_at_any_depth(doc),
            RawBsonRef::Array(items) => items.into_iter().flatten().any(writes),
            _ => false,
        }
    }
    stage
        .iter()
        .flatten()
        .any(|(key, child)| key == "$out" || key == "$merge" || writes(child))
}

/// A count as BSON: Int32 when it fits, as the Data API wrote counts.
pub fn count_bson(n: u64) -> Bson {
    i32::try_from(n).map_or_else(|_| Bson::Int64(n.min(i64::MAX as u64) as i64), Bson::Int32)
}

fn count(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}

/// A raw document from a tree; the trees here are built by the sidecar and always encode.
pub fn raw(document: &Document) -> RawDocumentBuf {
    RawDocumentBuf::from_document(document).unwrap_or_default()
}

#[cfg(test)]
mod tests;
