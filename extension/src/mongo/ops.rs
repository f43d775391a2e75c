//! Every operation the sidecar runs, as a typed request, the command it becomes, and the answer
//! it gives in the Data API's shapes.
//!
//! An [`Operation`] is an [`Action`], the [`Options`] the request set and its [`Payload`]. It
//! becomes one database command ([`command`]), built as BSON with every option in its place;
//! [`super::run`] sends it with the time that is left as its `maxTimeMS`.

use std::time::Duration;

use bson::oid::ObjectId;
use bson::{Bson, Document, RawDocumentBuf, doc};

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
/// command builder puts each where its command wants it.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub filter: Option<Document>,
    pub projection: Option<Document>,
    pub sort: Option<Document>,
    pub skip: Option<u64>,
    pub limit: Option<u64>,
    pub batch_size: Option<u32>,
    /// An index name (a string) or a key pattern (a document).
    pub hint: Option<Bson>,
    pub collation: Option<Document>,
    pub comment: Option<Bson>,
    pub let_vars: Option<Document>,
    pub bypass_document_validation: Option<bool>,
    pub allow_disk_use: Option<bool>,
    pub upsert: Option<bool>,
    pub array_filters: Option<Vec<Document>>,
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
    Document(Document),
    /// insertMany's documents, each with its `_id`.
    Documents(Vec<Document>),
    Update(Update),
    Pipeline(Vec<Document>),
    /// distinct's key.
    Key(String),
    /// bulkWrite's operations, each a single-document write.
    Bulk(Vec<Operation>),
}

/// An update: operators, or an aggregation pipeline.
#[derive(Clone, Debug)]
pub enum Update {
    Operators(Document),
    Pipeline(Vec<Document>),
}

impl From<Update> for Bson {
    fn from(update: Update) -> Bson {
        match update {
            Update::Operators(d) => Bson::Document(d),
            Update::Pipeline(p) => Bson::Array(p.into_iter().map(Bson::Document).collect()),
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
pub fn with_id(document: Document) -> Document {
    if document.contains_key("_id") {
        return document;
    }
    let mut out = Document::new();
    out.insert("_id", ObjectId::new());
    out.extend(document);
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
                matches!(&self.payload, Payload::Pipeline(stages) if stages.iter().any(writes_at_any_depth))
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

/// The command an operation becomes (not for bulkWrite, whose operations each have their own).
/// `maxTimeMS`, `txnNumber` and the concerns are added when it is sent.
pub fn command(op: &Operation, collection: &str) -> Document {
    let o = &op.options;
    let filter = || o.filter.clone().unwrap_or_default();
    let cmd = match op.action {
        Action::FindOne | Action::Find => {
            let mut cmd = doc! {"find": collection, "filter": filter()};
            put(&mut cmd, "projection", o.projection.clone());
            put(&mut cmd, "sort", o.sort.clone());
            put(&mut cmd, "skip", o.skip.map(count));
            if op.action == Action::FindOne {
                cmd.insert("limit", 1);
                cmd.insert("singleBatch", true);
            } else {
                put(&mut cmd, "limit", o.limit.map(count));
                put(&mut cmd, "batchSize", o.batch_size.map(i64::from));
                put(&mut cmd, "allowDiskUse", o.allow_disk_use);
            }
            cmd
        }
        Action::Aggregate => {
            let Payload::Pipeline(stages) = &op.payload else {
                unreachable!("aggregate carries a pipeline")
            };
            let mut cursor = Document::new();
            put(&mut cursor, "batchSize", o.batch_size.map(i64::from));
            let mut cmd =
                doc! {"aggregate": collection, "pipeline": stages.clone(), "cursor": cursor};
            put(&mut cmd, "allowDiskUse", o.allow_disk_use);
            put(
                &mut cmd,
                "bypassDocumentValidation",
                o.bypass_document_validation,
            );
            cmd
        }
        Action::CountDocuments => {
            let mut stages = vec![doc! {"$match": filter()}];
            if let Some(n) = o.skip {
                stages.push(doc! {"$skip": count(n)});
            }
            if let Some(n) = o.limit {
                stages.push(doc! {"$limit": count(n)});
            }
            stages.push(doc! {"$group": {"_id": 1, "n": {"$sum": 1}}});
            doc! {"aggregate": collection, "pipeline": stages, "cursor": {}}
        }
        Action::EstimatedDocumentCount => doc! {"count": collection},
        Action::Distinct => {
            let Payload::Key(key) = &op.payload else {
                unreachable!("distinct carries a key")
            };
            doc! {"distinct": collection, "key": key, "query": filter()}
        }
        Action::InsertOne | Action::InsertMany => {
            let documents = match &op.payload {
                Payload::Document(d) => vec![d.clone()],
                Payload::Documents(ds) => ds.clone(),
                _ => unreachable!("inserts carry documents"),
            };
            let mut cmd = doc! {"insert": collection, "documents": documents};
            cmd.insert("ordered", o.ordered.unwrap_or(true));
            put(
                &mut cmd,
                "bypassDocumentValidation",
                o.bypass_document_validation,
            );
            cmd
        }
        Action::UpdateOne | Action::UpdateMany | Action::ReplaceOne => {
            let u: Bson = match &op.payload {
                Payload::Update(update) => update.clone().into(),
                Payload::Document(replacement) => Bson::Document(replacement.clone()),
                _ => unreachable!("updates carry an update or a replacement"),
            };
            let mut statement =
                doc! {"q": filter(), "u": u, "multi": op.action == Action::UpdateMany};
            put(&mut statement, "upsert", o.upsert);
            put(&mut statement, "arrayFilters", o.array_filters.clone());
            put(&mut statement, "hint", o.hint.clone());
            put(&mut statement, "collation", o.collation.clone());
            let mut cmd = doc! {"update": collection, "updates": [statement], "ordered": true};
            put(
                &mut cmd,
                "bypassDocumentValidation",
                o.bypass_document_validation,
            );
            return with_shared(cmd, o, false);
        }
        Action::DeleteOne | Action::DeleteMany => {
            let limit = i32::from(op.action == Action::DeleteOne);
            let mut statement = doc! {"q": filter(), "limit": limit};
            put(&mut statement, "hint", o.hint.clone());
            put(&mut statement, "collation", o.collation.clone());
            let cmd = doc! {"delete": collection, "deletes": [statement], "ordered": true};
            return with_shared(cmd, o, false);
        }
        Action::FindOneAndUpdate | Action::FindOneAndReplace | Action::FindOneAndDelete => {
            let mut cmd = doc! {"findAndModify": collection, "query": filter()};
            put(&mut cmd, "sort", o.sort.clone());
            put(&mut cmd, "fields", o.projection.clone());
            match &op.payload {
                Payload::Update(update) => {
                    cmd.insert("update", Bson::from(update.clone()));
                }
                Payload::Document(replacement) => {
                    cmd.insert("update", replacement.clone());
                }
                _ => {
                    cmd.insert("remove", true);
                }
            }
            if op.action != Action::FindOneAndDelete {
                cmd.insert("new", o.return_after.unwrap_or(false));
                put(&mut cmd, "upsert", o.upsert);
            }
            put(&mut cmd, "arrayFilters", o.array_filters.clone());
            put(
                &mut cmd,
                "bypassDocumentValidation",
                o.bypass_document_validation,
            );
            cmd
        }
        Action::BulkWrite => unreachable!("a bulkWrite's operations each have their own command"),
    };
    with_shared(cmd, o, true)
}

/// The options most commands take at their top level. Updates and deletes keep `hint` and
/// `collation` in their statement instead.
fn with_shared(mut cmd: Document, o: &Options, hint_and_collation: bool) -> Document {
    if hint_and_collation {
        put(&mut cmd, "hint", o.hint.clone());
        put(&mut cmd, "collation", o.collation.clone());
    }
    put(&mut cmd, "comment", o.comment.clone());
    put(&mut cmd, "let", o.let_vars.clone());
    cmd
}

fn put(cmd: &mut Document, key: &str, value: Option<impl Into<Bson>>) {
    if let Some(value) = value {
        cmd.insert(key, value.into());
    }
}

fn writes_at_any_depth(stage: &Document) -> bool {
    fn writes(value: &Bson) -> bool {
        match value {
            Bson::Document(doc) => doc
                .iter()
                .any(|(key, child)| key == "$out" || key == "$merge" || writes(child)),
            Bson::Array(items) => items.iter().any(writes),
            _ => false,
        }
    }
    stage
        .iter()
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
mod tests {
    use super::*;

    fn op(action: Action, options: Options, payload: Payload) -> Operation {
        Operation {
            action,
            options,
            payload,
        }
    }

    #[test]
    fn every_action_has_a_name_that_reads_back() {
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.name()), Some(action));
        }
        assert_eq!(Action::from_name("drop"), None);
    }

    #[test]
    fn options_go_where_each_command_wants_them() {
        let options = Options {
            filter: Some(doc! {"a": 1}),
            hint: Some(Bson::String("a_1".into())),
            collation: Some(doc! {"locale": "en"}),
            comment: Some(Bson::String("c".into())),
            upsert: Some(true),
            ..Options::default()
        };
        let update = command(
            &op(
                Action::UpdateOne,
                options.clone(),
                Payload::Update(Update::Operators(doc! {"$set": {"b": 1}})),
            ),
            "items",
        );
        assert_eq!(
            update,
            doc! {"update": "items", "updates": [{"q": {"a": 1}, "u": {"$set": {"b": 1}}, "multi": false,
            "upsert": true, "hint": "a_1", "collation": {"locale": "en"}}], "ordered": true, "comment": "c"}
        );
        let find = command(&op(Action::FindOne, options, Payload::None), "items");
        assert_eq!(
            find,
            doc! {"find": "items", "filter": {"a": 1}, "limit": 1, "singleBatch": true,
            "hint": "a_1", "collation": {"locale": "en"}, "comment": "c"}
        );
    }

    #[test]
    fn count_documents_is_an_aggregation_and_find_one_and_delete_removes() {
        let count = command(
            &op(
                Action::CountDocuments,
                Options {
                    skip: Some(1),
                    limit: Some(5),
                    ..Options::default()
                },
                Payload::None,
            ),
            "c",
        );
        assert_eq!(
            count.get_array("pipeline").map(Vec::len).ok(),
            Some(4),
            "{count}"
        );
        let delete = command(
            &op(Action::FindOneAndDelete, Options::default(), Payload::None),
            "c",
        );
        assert_eq!(delete.get_bool("remove").ok(), Some(true));
        assert!(!delete.contains_key("new"));
    }

    #[test]
    fn an_id_is_given_first_unless_the_document_has_one() {
        let given = with_id(doc! {"a": 1});
        assert_eq!(given.keys().next().map(String::as_str), Some("_id"));
        assert!(given.get_object_id("_id").is_ok());
        assert_eq!(with_id(doc! {"a": 1, "_id": 7}), doc! {"a": 1, "_id": 7});
    }
}
