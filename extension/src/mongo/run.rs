//! Every call to the driver: an operation's command sent with the time that is left as its
//! `maxTimeMS`, read again once after a network error, a write sent again only where the server
//! can tell a repeat (a retryable write on a replica set), and the reply shaped into the Data API's
//! answer. The driver keeps the pool, server selection, sessions, TLS and authentication.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bson::{Bson, Document, RawDocument, RawDocumentBuf, doc};
use mongodb::error::Error;
use mongodb::{Client, Cursor, Database};
use tokio::time::Instant;
use tracing::debug;

use super::client::CommandDefaults;
use super::error::{
    BulkFailure, MAX_TIME_EXPIRED, OpError, ServerError, Unknown, WriteConcernFailure, classify,
    read_retryable, write_retryable,
};
use super::ops::{self, Action, Kind, Namespace, Operation, Payload, count_bson, raw};
use super::trace;

/// What an operation gives back.
pub enum Outcome {
    /// A response document in the Data API's shape (`{"insertedId": ...}`, counts, ...).
    Document(RawDocumentBuf),
    /// `{"document": <found or null>}`.
    Found(Option<RawDocumentBuf>),
    /// A cursor, to stream as `{"documents": [...]}`.
    Documents(Box<DocumentStream>),
}

/// The time an operation may take: a deadline, and the limit it came from (for messages).
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub deadline: Instant,
    pub limit: Duration,
}

impl Budget {
    fn timed_out(&self) -> OpError {
        OpError::TimedOut { limit: self.limit }
    }

    /// `maxTimeMS` for a command sent now: what is left of the budget.
    fn max_time_ms(&self) -> Result<i64, OpError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.timed_out());
        }
        Ok((left.as_millis() as i64).max(1))
    }
}

/// One deployment's client, and what the sidecar learned about the deployment.
pub struct Connection {
    client: Client,
    defaults: CommandDefaults,
    /// The monitor's last failure: the real cause behind a server selection timeout.
    heartbeat: Arc<Mutex<Option<String>>>,
    /// A replica set or sharded cluster with sessions: writes carry a transaction number and
    /// may be sent again once.
    retryable_writes: AtomicBool,
    /// Commands the server refused `maxTimeMS` on (FerretDB, on distinct): sent without it.
    refuses_max_time: Mutex<Vec<String>>,
    txn_number: AtomicI64,
}

impl Connection {
    pub fn new(
        client: Client,
        defaults: CommandDefaults,
        heartbeat: Arc<Mutex<Option<String>>>,
    ) -> Self {
        Self {
            client,
            defaults,
            heartbeat,
            retryable_writes: AtomicBool::new(false),
            refuses_max_time: Mutex::default(),
            txn_number: AtomicI64::new(1),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Records what a `hello` reply says about the deployment.
    pub fn learn(&self, hello: &Document) {
        let replicated = hello.contains_key("setName") || hello.get_str("msg") == Ok("isdbgrid");
        let sessions = hello.contains_key("logicalSessionTimeoutMinutes");
        self.retryable_writes.store(
            replicated && sessions && self.defaults.retry_writes,
            Ordering::Relaxed,
        );
    }

    pub fn heartbeat_cause(&self) -> Option<String> {
        self.heartbeat.lock().ok().and_then(|c| c.clone())
    }

    fn classify(&self, err: &Error, write: bool, sent: bool) -> OpError {
        classify(err, write, sent, self.heartbeat_cause())
    }

    /// Runs one operation within `budget`.
    pub async fn run(
        &self,
        ns: &Namespace,
        op: Operation,
        budget: Budget,
    ) -> Result<Outcome, OpError> {
        let db = self.client.database(&ns.database);
        let retry_read = !op.writes();
        match op.kind() {
            Kind::Documents => {
                let batch = op.options.batch_size;
                let cursor = self
                    .open_cursor(
                        &db,
                        ops::command(&op, &ns.collection),
                        batch,
                        budget,
                        retry_read,
                    )
                    .await?;
                Ok(Outcome::Documents(Box::new(DocumentStream {
                    cursor,
                    budget,
                })))
            }
            Kind::First | Kind::CountFromCursor => {
                let command = ops::command(&op, &ns.collection);
                let cursor = self.open_cursor(&db, command, None, budget, true).await?;
                let mut stream = DocumentStream { cursor, budget };
                let first = if stream.advance().await? {
                    Some(stream.current().to_owned())
                } else {
                    None
                };
                Ok(match op.kind() {
                    Kind::First => Outcome::Found(first),
                    _ => {
                        let n = first.as_deref().map_or(0, |d| number(d, "n"));
                        Outcome::Document(raw(&doc! {"count": count_bson(n)}))
                    }
                })
            }
            Kind::Count => {
                let reply = self
                    .read(&db, ops::command(&op, &ns.collection), budget)
                    .await?;
                let n = u64::try_from(reply.get("n").and_then(as_i64).unwrap_or(0)).unwrap_or(0);
                Ok(Outcome::Document(raw(&doc! {"count": count_bson(n)})))
            }
            Kind::Distinct => {
                let reply = self
                    .read(&db, ops::command(&op, &ns.collection), budget)
                    .await?;
                let values = reply.get_array("values").cloned().unwrap_or_default();
                Ok(Outcome::Document(raw(&doc! {"values": values})))
            }
            Kind::Write => {
                let written = self.write(&db, &ns.collection, &op, budget).await?;
                Ok(Outcome::Document(raw(&written.answer)))
            }
            Kind::FindAndModify => {
                let reply = self
                    .send_write(&db, ops::command(&op, &ns.collection), budget, false)
                    .await?;
                let found = match reply.get("value") {
                    Some(Bson::Document(d)) => Some(raw(d)),
                    _ => None,
                };
                if let Ok(wce) = reply.get_document("writeConcernError") {
                    let mut result = doc! {"document": Bson::Null};
                    if let Some(d) = &found {
                        result.insert("document", d.to_document().unwrap_or_default());
                    }
                    return Err(OpError::WriteConcernFailed(Box::new(WriteConcernFailure {
                        error: ServerError::from_reply(wce),
                        result: raw(&result),
                    })));
                }
                Ok(Outcome::Found(found))
            }
            Kind::Bulk => self.bulk(&db, &ns.collection, op, budget).await,
        }
    }

    /// A read command, sent again once after a retryable failure.
    async fn read(
        &self,
        db: &Database,
        mut command: Document,
        budget: Budget,
    ) -> Result<Document, OpError> {
        let name = command_name(&command);
        if let Some(rc) = &self.defaults.read_concern {
            command.insert("readConcern", rc.clone());
        }
        let mut retried = false;
        loop {
            let mut sent = command.clone();
            if !self.refuses_max_time(&name) {
                sent.insert("maxTimeMS", budget.max_time_ms()?);
            }
            let run = db
                .run_command(sent)
                .optional(self.defaults.selection_criteria.clone(), |a, s| {
                    a.selection_criteria(s)
                });
            let err = match tokio::time::timeout_at(budget.deadline, run).await {
                Err(_) => return Err(budget.timed_out()),
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(err)) => err,
            };
            if self.refused_max_time(&name, &err) {
                continue;
            }
            if !retried && read_retryable(&err) {
                debug!(target: "mongo_sidecar::mongo", command = %name, error = %err, "read failed; retrying once");
                retried = true;
                continue;
            }
            return Err(self.classify(&err, false, true));
        }
    }

    /// A command that answers with a cursor (find, aggregate), opened again once after a
    /// retryable failure when `retry` (not for a pipeline that writes).
    async fn open_cursor(
        &self,
        db: &Database,
        mut command: Document,
        batch_size: Option<u32>,
        budget: Budget,
        retry: bool,
    ) -> Result<Cursor<RawDocumentBuf>, OpError> {
        if let Some(rc) = &self.defaults.read_concern {
            command.insert("readConcern", rc.clone());
        }
        let mut retried = false;
        loop {
            let mut sent = command.clone();
            sent.insert("maxTimeMS", budget.max_time_ms()?);
            let run = db
                .run_cursor_command(sent)
                .optional(batch_size, |a, n| a.batch_size(n))
                .optional(self.defaults.selection_criteria.clone(), |a, s| {
                    a.selection_criteria(s)
                });
            let err = match tokio::time::timeout_at(budget.deadline, run).await {
                Err(_) => return Err(budget.timed_out()),
                Ok(Ok(cursor)) => return Ok(cursor.with_type::<RawDocumentBuf>()),
                Ok(Err(err)) => err,
            };
            if retry && !retried && read_retryable(&err) {
                debug!(target: "mongo_sidecar::mongo", error = %err, "cursor command failed; retrying once");
                retried = true;
                continue;
            }
            return Err(self.classify(&err, !retry, true));
        }
    }

    /// A write command. On a replica set it carries a transaction number, so that after a
    /// retryable failure it can be sent once more and applied at most once. Anything that leaves
    /// the outcome open (the deadline passing with the write in flight, a connection lost after
    /// it was sent) says so.
    async fn send_write(
        &self,
        db: &Database,
        mut command: Document,
        budget: Budget,
        many: bool,
    ) -> Result<Document, OpError> {
        if let Some(wc) = &self.defaults.write_concern {
            command.insert("writeConcern", wc.clone());
        }
        // Multi-document updates and deletes are not retryable writes.
        let retryable = self.retryable_writes.load(Ordering::Relaxed) && !many;
        let mut session = None;
        if retryable {
            command.insert("txnNumber", self.txn_number.fetch_add(1, Ordering::Relaxed));
            session = Some(
                self.client
                    .start_session()
                    .await
                    .map_err(|e| self.classify(&e, true, false))?,
            );
        }
        let mut attempt = 1;
        loop {
            // After a first attempt, nothing is known about whether the write was applied.
            let may_have_run = attempt > 1;
            let mut sent = command.clone();
            sent.insert(
                "maxTimeMS",
                budget.max_time_ms().map_err(|e| {
                    if may_have_run {
                        OpError::OutcomeUnknown(Unknown::Deadline(budget.limit))
                    } else {
                        e
                    }
                })?,
            );
            let before = trace::current().map(|t| (t.checkouts(), t));
            let mut run = db.run_command(sent);
            if let Some(session) = session.as_mut() {
                run = run.session(session);
            }
            let result = tokio::time::timeout_at(budget.deadline, run).await;
            // Without a trace nothing proves the write stayed here: assume it may have left.
            let had_connection = before.is_none_or(|(n, t)| t.checkouts() > n);
            let err = match result {
                Err(_) if had_connection || may_have_run => {
                    return Err(OpError::OutcomeUnknown(Unknown::Deadline(budget.limit)));
                }
                Err(_) => return Err(budget.timed_out()),
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(err)) => err,
            };
            if retryable && attempt == 1 && write_retryable(&err) {
                debug!(target: "mongo_sidecar::mongo", error = %err, "retryable write failed; retrying once");
                attempt += 1;
                continue;
            }
            let classified = self.classify(&err, true, had_connection || may_have_run);
            return Err(match classified {
                // A multi-document write stopped by its time limit may have changed some documents.
                OpError::Refused(e) if many && e.code == MAX_TIME_EXPIRED => {
                    OpError::OutcomeUnknown(Unknown::Deadline(budget.limit))
                }
                other => other,
            });
        }
    }

    /// insertOne/Many, updateOne/Many, replaceOne, deleteOne/Many: sent, then the reply read.
    async fn write(
        &self,
        db: &Database,
        collection: &str,
        op: &Operation,
        budget: Budget,
    ) -> Result<Written, OpError> {
        let reply = self
            .send_write(db, ops::command(op, collection), budget, op.many())
            .await?;
        let written = Written::from_reply(op, &reply);
        if let Ok(errors) = reply.get_array("writeErrors") {
            let entries: Vec<&Document> = errors.iter().filter_map(Bson::as_document).collect();
            let mut error = entries
                .first()
                .map(|e| ServerError::from_reply(e))
                .unwrap_or_default();
            error.failed_indexes = entries
                .iter()
                .filter_map(|e| e.get("index").and_then(as_i64))
                .filter_map(|i| usize::try_from(i).ok())
                .collect();
            return Err(OpError::Refused(Box::new(error)));
        }
        if let Ok(wce) = reply.get_document("writeConcernError") {
            return Err(OpError::WriteConcernFailed(Box::new(WriteConcernFailure {
                error: ServerError::from_reply(wce),
                result: raw(&written.answer),
            })));
        }
        Ok(written)
    }

    /// bulkWrite: each operation in turn. Ordered (the default) stops at the first failure;
    /// unordered tries every operation. A write whose outcome is unknown stops it either way.
    async fn bulk(
        &self,
        db: &Database,
        collection: &str,
        op: Operation,
        budget: Budget,
    ) -> Result<Outcome, OpError> {
        let ordered = op.options.ordered.unwrap_or(true);
        let Payload::Bulk(items) = op.payload else {
            unreachable!("bulkWrite carries its operations")
        };
        let mut counts = BulkCounts::default();
        let mut failure: Option<(usize, OpError)> = None;
        let mut failed_indexes = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match self.write(db, collection, item, budget).await {
                Ok(written) => counts.add(index, &written),
                Err(error) => {
                    let stop = ordered || matches!(error, OpError::OutcomeUnknown(_));
                    failed_indexes.push(index);
                    failure.get_or_insert((index, error));
                    if stop {
                        break;
                    }
                }
            }
        }
        match failure {
            None => Ok(Outcome::Document(raw(&counts.answer()))),
            Some((index, error)) => Err(OpError::Bulk(Box::new(BulkFailure {
                index,
                failed_indexes,
                applied: raw(&counts.answer()),
                error,
            }))),
        }
    }

    fn refuses_max_time(&self, command: &str) -> bool {
        self.refuses_max_time
            .lock()
            .is_ok_and(|list| list.iter().any(|c| c == command))
    }

    /// Whether the server refused `maxTimeMS` on this command; if so, it is remembered and the
    /// command is sent again without it (the sidecar's own deadline still bounds it).
    fn refused_max_time(&self, command: &str, err: &Error) -> bool {
        let refused = matches!(
            err.kind.as_ref(),
            mongodb::error::ErrorKind::Command(e) if e.code == 9 && e.message.contains("maxTimeMS")
        );
        if refused && !self.refuses_max_time(command) {
            if let Ok(mut list) = self.refuses_max_time.lock() {
                list.push(command.to_owned());
            }
            debug!(target: "mongo_sidecar::mongo", command, "the server refuses maxTimeMS here; sending without it");
            return true;
        }
        false
    }
}

/// A cursor's documents, one at a time, within the operation's budget.
pub struct DocumentStream {
    cursor: Cursor<RawDocumentBuf>,
    budget: Budget,
}

impl DocumentStream {
    /// Moves to the next document; false when the cursor is done.
    pub async fn advance(&mut self) -> Result<bool, OpError> {
        match tokio::time::timeout_at(self.budget.deadline, self.cursor.advance()).await {
            Err(_) => Err(self.budget.timed_out()),
            Ok(Ok(more)) => Ok(more),
            Ok(Err(err)) => Err(classify(&err, false, true, None)),
        }
    }

    pub fn current(&self) -> &RawDocument {
        self.cursor.current()
    }
}

/// What one write did, as its answer and as counts for a bulkWrite.
struct Written {
    answer: Document,
    inserted: u64,
    matched: u64,
    modified: u64,
    deleted: u64,
    upserted_id: Option<Bson>,
}

impl Written {
    fn from_reply(op: &Operation, reply: &Document) -> Self {
        let n = u64::try_from(reply.get("n").and_then(as_i64).unwrap_or(0)).unwrap_or(0);
        let modified =
            u64::try_from(reply.get("nModified").and_then(as_i64).unwrap_or(0)).unwrap_or(0);
        let upserted_id = reply
            .get_array("upserted")
            .ok()
            .and_then(|u| u.first())
            .and_then(Bson::as_document)
            .and_then(|u| u.get("_id").cloned());
        let mut written = Written {
            answer: Document::new(),
            inserted: 0,
            matched: 0,
            modified: 0,
            deleted: 0,
            upserted_id,
        };
        written.answer = match (op.action, &op.payload) {
            (Action::InsertOne, Payload::Document(d)) => {
                written.inserted = n;
                doc! {"insertedId": d.get("_id").cloned().unwrap_or(Bson::Null)}
            }
            (Action::InsertMany, Payload::Documents(ds)) => {
                written.inserted = n;
                let ids: Vec<Bson> = ds
                    .iter()
                    .map(|d| d.get("_id").cloned().unwrap_or(Bson::Null))
                    .collect();
                doc! {"insertedIds": ids}
            }
            (Action::DeleteOne | Action::DeleteMany, _) => {
                written.deleted = n;
                doc! {"deletedCount": count_bson(n)}
            }
            _ => {
                // An upsert that inserted counts in n, not as a match.
                written.matched = n - u64::from(written.upserted_id.is_some()).min(n);
                written.modified = modified;
                let mut answer = doc! {
                    "matchedCount": count_bson(written.matched),
                    "modifiedCount": count_bson(modified),
                };
                if let Some(id) = &written.upserted_id {
                    answer.insert("upsertedId", id.clone());
                }
                answer
            }
        };
        written
    }
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
    fn add(&mut self, index: usize, written: &Written) {
        self.inserted += written.inserted;
        self.matched += written.matched;
        self.modified += written.modified;
        self.deleted += written.deleted;
        if let Some(id) = &written.upserted_id {
            self.upserted.push((index, id.clone()));
        }
    }

    fn answer(&self) -> Document {
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

fn command_name(command: &Document) -> String {
    command.keys().next().cloned().unwrap_or_default()
}

fn as_i64(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    }
}

fn number(doc: &RawDocument, key: &str) -> u64 {
    let value = match doc.get(key) {
        Ok(Some(bson::RawBsonRef::Int32(n))) => i64::from(n),
        Ok(Some(bson::RawBsonRef::Int64(n))) => n,
        Ok(Some(bson::RawBsonRef::Double(f))) => f as i64,
        _ => 0,
    };
    u64::try_from(value).unwrap_or(0)
}

/// Applies a setter only when there is a value for it (the driver's action builders take values,
/// not options).
trait Optional: Sized {
    fn optional<T>(self, value: Option<T>, set: impl FnOnce(Self, T) -> Self) -> Self {
        match value {
            Some(value) => set(self, value),
            None => self,
        }
    }
}

impl<A> Optional for A {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mongo::ops::{Options, Update};

    fn op(action: Action, payload: Payload) -> Operation {
        Operation {
            action,
            options: Options::default(),
            payload,
        }
    }

    #[test]
    fn a_write_reply_becomes_the_data_api_answer() {
        let upsert = Written::from_reply(
            &op(
                Action::UpdateOne,
                Payload::Update(Update::Operators(doc! {"$set": {"a": 1}})),
            ),
            &doc! {"n": 1, "nModified": 0, "upserted": [{"index": 0, "_id": 7}], "ok": 1.0},
        );
        assert_eq!(
            upsert.answer,
            doc! {"matchedCount": 0, "modifiedCount": 0, "upsertedId": 7}
        );
        let insert = Written::from_reply(
            &op(
                Action::InsertOne,
                Payload::Document(doc! {"_id": 3, "a": 1}),
            ),
            &doc! {"n": 1, "ok": 1.0},
        );
        assert_eq!(insert.answer, doc! {"insertedId": 3});
        let delete = Written::from_reply(
            &op(Action::DeleteMany, Payload::None),
            &doc! {"n": Bson::Int64(5), "ok": 1.0},
        );
        assert_eq!(delete.answer, doc! {"deletedCount": 5});
    }

    #[test]
    fn bulk_counts_add_up_and_name_upserts_by_index() {
        let mut counts = BulkCounts::default();
        let update = op(
            Action::UpdateOne,
            Payload::Update(Update::Operators(doc! {"$set": {"a": 1}})),
        );
        counts.add(
            0,
            &Written::from_reply(&update, &doc! {"n": 1, "nModified": 1}),
        );
        counts.add(
            3,
            &Written::from_reply(
                &update,
                &doc! {"n": 1, "nModified": 0, "upserted": [{"index": 0, "_id": "x"}]},
            ),
        );
        assert_eq!(
            counts.answer(),
            doc! {"insertedCount": 0, "matchedCount": 1, "modifiedCount": 1, "deletedCount": 0,
            "upsertedCount": 1, "upsertedIds": {"3": "x"}}
        );
    }
}
