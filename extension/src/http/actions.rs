//! The actions: each is parsed and checked into an [`Operation`] first, so bad input gets a
//! 400 without touching the database, and then executed against one collection.

use std::time::Duration;

use mongodb::bson::{Bson, Document, RawDocumentBuf, doc};
use mongodb::options::{
    AggregateOptions, CountOptions, DeleteOptions, DistinctOptions, EstimatedDocumentCountOptions,
    FindOneAndDeleteOptions, FindOneAndReplaceOptions, FindOneAndUpdateOptions, FindOneOptions,
    FindOptions, InsertManyOptions, InsertOneOptions, ReplaceOptions, UpdateOptions,
};
use mongodb::{Collection, Cursor};
use serde_json::Value;

use super::error::ApiError;
use super::request::{ActionBody, Fields, UpdateSpec, type_error};
use crate::config::{Limits, MAX_DOCUMENTS, MAX_WRITE_BATCH, Policy};
use crate::policy;

/// A request, decoded and checked, ready to run.
pub enum Operation {
    FindOne(Document, FindOneOptions),
    Find(Document, FindOptions),
    InsertOne(Document, InsertOneOptions),
    InsertMany(Vec<Document>, InsertManyOptions),
    Update {
        many: bool,
        filter: Document,
        update: UpdateSpec,
        options: UpdateOptions,
    },
    ReplaceOne(Document, Document, ReplaceOptions),
    Delete {
        many: bool,
        filter: Document,
        options: DeleteOptions,
    },
    Aggregate(Vec<Document>, AggregateOptions),
    CountDocuments(Document, CountOptions),
    EstimatedDocumentCount(EstimatedDocumentCountOptions),
    Distinct(String, Document, DistinctOptions),
    FindOneAndUpdate(Document, UpdateSpec, FindOneAndUpdateOptions),
    FindOneAndReplace(Document, Document, FindOneAndReplaceOptions),
    FindOneAndDelete(Document, FindOneAndDeleteOptions),
    BulkWrite(BulkWrite),
}

/// The action names, as they appear in the URL.
pub const ACTIONS: &[&str] = &[
    "findOne",
    "find",
    "insertOne",
    "insertMany",
    "updateOne",
    "updateMany",
    "replaceOne",
    "deleteOne",
    "deleteMany",
    "aggregate",
    "countDocuments",
    "estimatedDocumentCount",
    "distinct",
    "findOneAndUpdate",
    "findOneAndReplace",
    "findOneAndDelete",
    "bulkWrite",
];

/// Actions that only read; every other action writes.
const READ_ACTIONS: &[&str] = &[
    "findOne",
    "find",
    "countDocuments",
    "estimatedDocumentCount",
    "distinct",
];

/// What a parsed request asks for, besides the operation itself.
pub struct Parsed {
    pub operation: Operation,
    /// The request's own `maxTimeMS`, if any; the sidecar bounds it further.
    pub max_time_ms: Option<u64>,
}

/// Decodes an action's fields and applies read-only mode (the rest of the policy has looked at
/// the whole body already, see [`policy::check_request`]). `action` is one of [`ACTIONS`].
pub fn parse(
    action: &str,
    body: ActionBody,
    policy: &Policy,
    limits: &Limits,
) -> Result<Parsed, ApiError> {
    if !READ_ACTIONS.contains(&action) && action != "aggregate" {
        policy::check_write(policy, action).map_err(|d| ApiError::forbidden(d.0))?;
    }
    let mut f = body.fields;
    let max_time_ms = f.max_time_ms()?;

    let operation = match parse_write(action, &mut f)? {
        Some(write) => write,
        None => parse_read_or_batch(action, &mut f, policy, limits, max_time_ms)?,
    };
    f.finish(action)?;
    Ok(Parsed {
        operation,
        max_time_ms,
    })
}

/// The actions that are not single-document writes.
fn parse_read_or_batch(
    action: &str,
    f: &mut Fields,
    policy: &Policy,
    limits: &Limits,
    max_time_ms: Option<u64>,
) -> Result<Operation, ApiError> {
    Ok(match action {
        "findOne" => {
            let filter = f.document("filter")?.unwrap_or_default();
            let mut o = FindOneOptions::default();
            o.projection = f.document("projection")?;
            o.sort = f.document("sort")?;
            o.skip = f.count("skip")?;
            o.hint = f.hint()?;
            o.collation = f.collation()?;
            o.comment = f.any("comment")?;
            o.let_vars = f.document("let")?;
            Operation::FindOne(filter, o)
        }
        "find" => {
            let filter = f.document("filter")?.unwrap_or_default();
            let mut o = FindOptions::default();
            o.projection = f.document("projection")?;
            o.sort = f.document("sort")?;
            o.skip = f.count("skip")?;
            o.limit = f.count("limit")?.map(|n| n.min(i64::MAX as u64) as i64);
            o.hint = f.hint()?;
            o.collation = f.collation()?;
            o.comment = f.any("comment")?;
            o.let_vars = f.document("let")?;
            o.batch_size = batch_size(f, limits)?;
            check_limit(o.limit.map(|n| n as u64), limits)?;
            Operation::Find(filter, o)
        }
        "insertMany" => {
            let documents = f.documents("documents")?;
            if documents.is_empty() {
                return Err(ApiError::invalid("documents must not be empty"));
            }
            check_batch("documents", documents.len(), limits)?;
            let mut o = InsertManyOptions::default();
            o.ordered = f.bool("ordered")?;
            o.bypass_document_validation = f.bool("bypassDocumentValidation")?;
            o.comment = f.any("comment")?;
            Operation::InsertMany(documents, o)
        }
        "aggregate" => {
            let pipeline = f.documents("pipeline")?;
            if policy::pipeline_writes(&pipeline) {
                policy::check_write(policy, action).map_err(|d| ApiError::forbidden(d.0))?;
            }
            let mut o = AggregateOptions::default();
            o.hint = f.hint()?;
            o.collation = f.collation()?;
            o.comment = f.any("comment")?;
            o.let_vars = f.document("let")?;
            o.allow_disk_use = f.bool("allowDiskUse")?;
            o.bypass_document_validation = f.bool("bypassDocumentValidation")?;
            o.batch_size = batch_size(f, limits)?;
            Operation::Aggregate(pipeline, o)
        }
        "countDocuments" => {
            let filter = f.document("filter")?.unwrap_or_default();
            let mut o = CountOptions::default();
            o.limit = f.count("limit")?;
            o.skip = f.count("skip")?;
            o.hint = f.hint()?;
            o.collation = f.collation()?;
            o.comment = f.any("comment")?;
            Operation::CountDocuments(filter, o)
        }
        "estimatedDocumentCount" => {
            let mut o = EstimatedDocumentCountOptions::default();
            o.comment = f.any("comment")?;
            Operation::EstimatedDocumentCount(o)
        }
        "distinct" => {
            let key = f.string("key")?.filter(|k| !k.is_empty()).ok_or_else(|| {
                ApiError::invalid("key is required and must be a non-empty string")
            })?;
            let filter = f.document("filter")?.unwrap_or_default();
            let mut o = DistinctOptions::default();
            o.max_time = max_time_ms.map(Duration::from_millis);
            o.hint = f.hint()?;
            o.collation = f.collation()?;
            o.comment = f.any("comment")?;
            Operation::Distinct(key, filter, o)
        }
        "findOneAndUpdate" => {
            let filter = f.required_document("filter")?;
            let update = f.update()?;
            let mut o = FindOneAndUpdateOptions::default();
            o.projection = f.document("projection")?;
            o.sort = f.document("sort")?;
            o.upsert = f.bool("upsert")?;
            o.return_document = f.return_document()?;
            o.array_filters = f.optional_documents("arrayFilters")?;
            o.hint = f.hint()?;
            o.collation = f.collation()?;
            o.bypass_document_validation = f.bool("bypassDocumentValidation")?;
            o.comment = f.any("comment")?;
            o.let_vars = f.document("let")?;
            Operation::FindOneAndUpdate(filter, update, o)
        }
        "findOneAndReplace" => {
            let filter = f.required_document("filter")?;
            let replacement = f.replacement()?;
            let mut o = FindOneAndReplaceOptions::default();
            o.projection = f.document("projection")?;
            o.sort = f.document("sort")?;
            o.upsert = f.bool("upsert")?;
            o.return_document = f.return_document()?;
            o.hint = f.hint()?;
            o.collation = f.collation()?;
            o.bypass_document_validation = f.bool("bypassDocumentValidation")?;
            o.comment = f.any("comment")?;
            o.let_vars = f.document("let")?;
            Operation::FindOneAndReplace(filter, replacement, o)
        }
        "findOneAndDelete" => {
            let filter = f.required_document("filter")?;
            let mut o = FindOneAndDeleteOptions::default();
            o.projection = f.document("projection")?;
            o.sort = f.document("sort")?;
            o.hint = f.hint()?;
            o.collation = f.collation()?;
            o.comment = f.any("comment")?;
            o.let_vars = f.document("let")?;
            Operation::FindOneAndDelete(filter, o)
        }
        "bulkWrite" => Operation::BulkWrite(BulkWrite::parse(f, limits)?),
        other => return Err(unknown_action(other)),
    })
}

/// The single-document writes: insertOne, updateOne, updateMany, replaceOne, deleteOne and
/// deleteMany, read the same way as actions and as bulkWrite operations. `None` for any other.
fn parse_write(kind: &str, f: &mut Fields) -> Result<Option<Operation>, ApiError> {
    Ok(Some(match kind {
        "insertOne" => {
            let document = f.required_document("document")?;
            let mut o = InsertOneOptions::default();
            o.bypass_document_validation = f.bool("bypassDocumentValidation")?;
            o.comment = f.any("comment")?;
            Operation::InsertOne(document, o)
        }
        "updateOne" | "updateMany" => {
            let filter = f.required_document("filter")?;
            let update = f.update()?;
            let mut o = UpdateOptions::default();
            o.upsert = f.bool("upsert")?;
            o.array_filters = f.optional_documents("arrayFilters")?;
            o.hint = f.hint()?;
            o.collation = f.collation()?;
            o.bypass_document_validation = f.bool("bypassDocumentValidation")?;
            o.comment = f.any("comment")?;
            o.let_vars = f.document("let")?;
            Operation::Update {
                many: kind == "updateMany",
                filter,
                update,
                options: o,
            }
        }
        "replaceOne" => {
            let filter = f.required_document("filter")?;
            let replacement = f.replacement()?;
            let mut o = ReplaceOptions::default();
            o.upsert = f.bool("upsert")?;
            o.hint = f.hint()?;
            o.collation = f.collation()?;
            o.bypass_document_validation = f.bool("bypassDocumentValidation")?;
            o.comment = f.any("comment")?;
            o.let_vars = f.document("let")?;
            Operation::ReplaceOne(filter, replacement, o)
        }
        "deleteOne" | "deleteMany" => {
            let filter = f.required_document("filter")?;
            let mut o = DeleteOptions::default();
            o.hint = f.hint()?;
            o.collation = f.collation()?;
            o.comment = f.any("comment")?;
            o.let_vars = f.document("let")?;
            Operation::Delete {
                many: kind == "deleteMany",
                filter,
                options: o,
            }
        }
        _ => return Ok(None),
    }))
}

pub fn unknown_action(name: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "ActionNotFound",
        format!(
            "unknown action {name:?}; the actions are {}",
            ACTIONS.join(", ")
        ),
    )
}

fn batch_size(f: &mut Fields, limits: &Limits) -> Result<Option<u32>, ApiError> {
    let requested = f.count("batchSize")?;
    Ok(Some(requested.map_or(limits.batch_size, |n| {
        u32::try_from(n).unwrap_or(u32::MAX).max(1)
    })))
}

fn check_limit(limit: Option<u64>, limits: &Limits) -> Result<(), ApiError> {
    match limit {
        Some(n) if limits.max_documents > 0 && n > limits.max_documents => {
            Err(ApiError::invalid(format!(
                "limit {n} is larger than the largest result the sidecar returns ({MAX_DOCUMENTS}={})",
                limits.max_documents
            )))
        }
        _ => Ok(()),
    }
}

fn check_batch(field: &str, len: usize, limits: &Limits) -> Result<(), ApiError> {
    if len > limits.max_write_batch {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "TooManyOperations",
            format!(
                "{field} has {len} entries, more than {MAX_WRITE_BATCH}={}",
                limits.max_write_batch
            ),
        ));
    }
    Ok(())
}

/// A count as BSON: Int32 when it fits, as the Data API wrote counts.
pub fn count_bson(n: u64) -> Bson {
    i32::try_from(n).map_or_else(|_| Bson::Int64(n.min(i64::MAX as u64) as i64), Bson::Int32)
}

/// The result of a write, as the Data API shapes it.
pub fn update_result(r: &mongodb::results::UpdateResult) -> Document {
    let mut out = doc! {
        "matchedCount": count_bson(r.matched_count),
        "modifiedCount": count_bson(r.modified_count),
    };
    if let Some(id) = &r.upserted_id {
        out.insert("upsertedId", id.clone());
    }
    out
}

/// What an operation's execution produced.
pub enum Outcome {
    /// A response document, written in the request's output mode.
    Document(Document),
    /// `{"document": <raw or null>}`: no conversion of the found document on the way out.
    Found(Option<RawDocumentBuf>),
    /// A cursor to stream as `{"documents": [...]}`.
    Cursor(Box<Cursor<RawDocumentBuf>>),
}

/// Runs an operation. The caller bounds it in time.
pub async fn execute(
    operation: Operation,
    coll: &Collection<RawDocumentBuf>,
    max_time: Duration,
) -> Result<Outcome, mongodb::error::Error> {
    let docs = coll.clone_with_type::<Document>();
    let max_time = Some(max_time);
    Ok(match operation {
        Operation::FindOne(filter, mut o) => {
            o.max_time = max_time;
            Outcome::Found(coll.find_one(filter).with_options(o).await?)
        }
        Operation::Find(filter, mut o) => {
            o.max_time = max_time;
            Outcome::Cursor(Box::new(coll.find(filter).with_options(o).await?))
        }
        Operation::Aggregate(pipeline, mut o) => {
            o.max_time = max_time;
            Outcome::Cursor(Box::new(
                coll.aggregate(pipeline)
                    .with_options(o)
                    .await?
                    .with_type::<RawDocumentBuf>(),
            ))
        }
        Operation::InsertMany(documents, o) => {
            let r = docs.insert_many(documents).with_options(o).await?;
            let mut ids: Vec<(usize, Bson)> = r.inserted_ids.into_iter().collect();
            ids.sort_unstable_by_key(|(i, _)| *i);
            Outcome::Document(
                doc! {"insertedIds": ids.into_iter().map(|(_, id)| id).collect::<Vec<_>>()},
            )
        }
        Operation::CountDocuments(filter, mut o) => {
            o.max_time = max_time;
            let n = coll.count_documents(filter).with_options(o).await?;
            Outcome::Document(doc! {"count": count_bson(n)})
        }
        Operation::EstimatedDocumentCount(mut o) => {
            o.max_time = max_time;
            let n = coll.estimated_document_count().with_options(o).await?;
            Outcome::Document(doc! {"count": count_bson(n)})
        }
        Operation::Distinct(key, filter, o) => {
            // Only a maxTimeMS the request set goes to the server here (FerretDB refuses the
            // option on distinct); the sidecar's own bound applies client-side regardless.
            let values = coll.distinct(key, filter).with_options(o).await?;
            Outcome::Document(doc! {"values": values})
        }
        Operation::FindOneAndUpdate(filter, update, mut o) => {
            o.max_time = max_time;
            Outcome::Found(
                coll.find_one_and_update(filter, update)
                    .with_options(o)
                    .await?,
            )
        }
        Operation::FindOneAndReplace(filter, replacement, mut o) => {
            o.max_time = max_time;
            let replacement = RawDocumentBuf::from_document(&replacement)?;
            Outcome::Found(
                coll.find_one_and_replace(filter, replacement)
                    .with_options(o)
                    .await?,
            )
        }
        Operation::FindOneAndDelete(filter, mut o) => {
            o.max_time = max_time;
            Outcome::Found(coll.find_one_and_delete(filter).with_options(o).await?)
        }
        Operation::BulkWrite(bulk) => Outcome::Document(bulk.execute(&docs).await?),
        write => Outcome::Document(match execute_write(write, &docs).await? {
            Written::Inserted(id) => doc! {"insertedId": id},
            Written::Updated(r) => update_result(&r),
            Written::Deleted(n) => doc! {"deletedCount": count_bson(n)},
        }),
    })
}

/// What a single-document write did.
enum Written {
    Inserted(Bson),
    Updated(mongodb::results::UpdateResult),
    Deleted(u64),
}

/// Runs one of the writes [`parse_write`] reads, for an action or a bulkWrite operation.
async fn execute_write(
    operation: Operation,
    coll: &Collection<Document>,
) -> Result<Written, mongodb::error::Error> {
    Ok(match operation {
        Operation::InsertOne(document, o) => {
            Written::Inserted(coll.insert_one(document).with_options(o).await?.inserted_id)
        }
        Operation::Update {
            many: true,
            filter,
            update,
            options,
        } => Written::Updated(
            coll.update_many(filter, update)
                .with_options(options)
                .await?,
        ),
        Operation::Update {
            many: false,
            filter,
            update,
            options,
        } => Written::Updated(
            coll.update_one(filter, update)
                .with_options(options)
                .await?,
        ),
        Operation::ReplaceOne(filter, replacement, o) => Written::Updated(
            coll.replace_one(filter, replacement)
                .with_options(o)
                .await?,
        ),
        Operation::Delete {
            many: true,
            filter,
            options,
        } => Written::Deleted(
            coll.delete_many(filter)
                .with_options(options)
                .await?
                .deleted_count,
        ),
        Operation::Delete {
            many: false,
            filter,
            options,
        } => Written::Deleted(
            coll.delete_one(filter)
                .with_options(options)
                .await?
                .deleted_count,
        ),
        _ => {
            return Err(mongodb::error::Error::custom(
                "execute_write takes only single-document writes",
            ));
        }
    })
}

/// `bulkWrite`: a list of insert, update, replace and delete operations on one collection,
/// run in order. Ordered (the default) stops at the first failure; unordered runs them all.
pub struct BulkWrite {
    /// Each a single-document write, as [`parse_write`] reads it.
    operations: Vec<Operation>,
    ordered: bool,
    bypass_document_validation: Option<bool>,
}

/// Counts a bulk write has applied so far.
#[derive(Default)]
struct BulkCounts {
    inserted: u64,
    matched: u64,
    modified: u64,
    deleted: u64,
    upserted: Vec<(usize, Bson)>,
}

impl BulkCounts {
    fn record(&mut self, index: usize, written: Written) {
        match written {
            Written::Inserted(_) => self.inserted += 1,
            Written::Updated(r) => {
                self.matched += r.matched_count;
                self.modified += r.modified_count;
                if let Some(id) = r.upserted_id {
                    self.upserted.push((index, id));
                }
            }
            Written::Deleted(n) => self.deleted += n,
        }
    }

    fn to_document(&self) -> Document {
        let mut upserted_ids = Document::new();
        for (index, id) in &self.upserted {
            upserted_ids.insert(index.to_string(), id.clone());
        }
        doc! {
            "insertedCount": count_bson(self.inserted),
            "matchedCount": count_bson(self.matched),
            "modifiedCount": count_bson(self.modified),
            "deletedCount": count_bson(self.deleted),
            "upsertedCount": count_bson(self.upserted.len() as u64),
            "upsertedIds": upserted_ids,
        }
    }
}

/// A bulk write that failed part-way: what failed, and what was applied before and after.
#[derive(Debug, thiserror::Error)]
#[error("operation {index} of the bulk write failed: {source}")]
pub struct BulkWriteFailure {
    pub index: usize,
    pub source: mongodb::error::Error,
    /// The counts of what was applied, as a response document.
    pub applied: Document,
    pub failed_indexes: Vec<usize>,
}

const BULK_KINDS: &str = "insertOne, updateOne, updateMany, replaceOne, deleteOne or deleteMany";

impl BulkWrite {
    fn parse(f: &mut Fields, limits: &Limits) -> Result<Self, ApiError> {
        let items = match f.raw("operations") {
            None => {
                return Err(ApiError::invalid(
                    "operations is required and must be an array",
                ));
            }
            Some(Value::Array(items)) => items,
            Some(other) => return Err(type_error("operations", "an array", &other)),
        };
        if items.is_empty() {
            return Err(ApiError::invalid("operations must not be empty"));
        }
        check_batch("operations", items.len(), limits)?;
        let mut operations = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let at = format!("operations[{i}]");
            let Value::Object(map) = item else {
                return Err(type_error(
                    &at,
                    "a document such as {\"insertOne\": {...}}",
                    &item,
                ));
            };
            let mut entries = map.into_iter();
            let (Some((kind, spec)), None) = (entries.next(), entries.next()) else {
                return Err(ApiError::invalid(format!(
                    "{at} must have exactly one key: {BULK_KINDS}"
                )));
            };
            let Value::Object(spec) = spec else {
                return Err(type_error(&format!("{at}.{kind}"), "a document", &spec));
            };
            let mut op = Fields::new(spec);
            let Some(operation) = parse_write(&kind, &mut op)? else {
                return Err(ApiError::invalid(format!(
                    "{at} has the unknown operation {kind:?}; use {BULK_KINDS}"
                )));
            };
            op.finish(&format!("{at}.{kind}"))?;
            operations.push(operation);
        }
        Ok(Self {
            operations,
            ordered: f.bool("ordered")?.unwrap_or(true),
            bypass_document_validation: f.bool("bypassDocumentValidation")?,
        })
    }

    async fn execute(self, coll: &Collection<Document>) -> Result<Document, mongodb::error::Error> {
        let mut counts = BulkCounts::default();
        let mut first_failure: Option<(usize, mongodb::error::Error)> = None;
        let mut failed_indexes = Vec::new();
        for (index, operation) in self.operations.into_iter().enumerate() {
            let operation = with_default_bypass(operation, self.bypass_document_validation);
            match execute_write(operation, coll).await {
                Ok(written) => counts.record(index, written),
                Err(err) => {
                    failed_indexes.push(index);
                    first_failure.get_or_insert((index, err));
                    if self.ordered {
                        break;
                    }
                }
            }
        }
        match first_failure {
            None => Ok(counts.to_document()),
            Some((index, source)) => Err(mongodb::error::Error::custom(BulkWriteFailure {
                index,
                source,
                applied: counts.to_document(),
                failed_indexes,
            })),
        }
    }
}

/// The bulk write's `bypassDocumentValidation`, for an operation that does not set its own.
fn with_default_bypass(operation: Operation, bypass: Option<bool>) -> Operation {
    match operation {
        Operation::InsertOne(document, mut o) => {
            o.bypass_document_validation = o.bypass_document_validation.or(bypass);
            Operation::InsertOne(document, o)
        }
        Operation::Update {
            many,
            filter,
            update,
            mut options,
        } => {
            options.bypass_document_validation = options.bypass_document_validation.or(bypass);
            Operation::Update {
                many,
                filter,
                update,
                options,
            }
        }
        Operation::ReplaceOne(filter, replacement, mut o) => {
            o.bypass_document_validation = o.bypass_document_validation.or(bypass);
            Operation::ReplaceOne(filter, replacement, o)
        }
        other => other,
    }
}
