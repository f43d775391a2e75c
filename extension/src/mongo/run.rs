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
use super::error::{OpError, ServerError, WriteConcernFailure, classify, read_retryable};
use super::ops::{self, Action, Namespace, Operation, count_bson, raw};

/// What an operation gives back.
pub enum Outcome {
    /// A response document in the Data API's shape (`{"insertedId": ...}`, counts, ...).
    Document(RawDocumentBuf),
    /// `{"document": <found or null>}`.
    Found(Option<RawDocumentBuf>),
    /// A cursor, to stream as `{"documents": [...]}`.
    Documents(Box<DocumentStream>),
}

/// How the server's reply becomes the Data API's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A cursor, streamed as `{"documents": [...]}`.
    Documents,
    /// A cursor's first document, as `{"document": ... | null}`.
    First,
    /// countDocuments: the first document's `n`, as `{"count": n}`.
    CountFromCursor,
    /// estimatedDocumentCount: the reply's `n`.
    Count,
    Distinct,
    Write,
    FindAndModify,
    Bulk,
}

/// Which shape an operation's answer takes.
fn kind(op: &Operation) -> Kind {
    match op.action {
        Action::FindOne => Kind::First,
        Action::Find | Action::Aggregate => Kind::Documents,
        Action::CountDocuments => Kind::CountFromCursor,
        Action::EstimatedDocumentCount => Kind::Count,
        Action::Distinct => Kind::Distinct,
        Action::FindOneAndUpdate | Action::FindOneAndReplace | Action::FindOneAndDelete => {
            Kind::FindAndModify
        }
        Action::BulkWrite => Kind::Bulk,
        _ => Kind::Write,
    }
}

/// The time an operation may take: a deadline, and the limit it came from (for messages).
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub deadline: Instant,
    pub limit: Duration,
}

impl Budget {
    pub(super) fn timed_out(&self) -> OpError {
        OpError::TimedOut { limit: self.limit }
    }

    /// `maxTimeMS` for a command sent now: what is left of the budget.
    pub(super) fn max_time_ms(&self) -> Result<i64, OpError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.timed_out());
        }
        Ok((left.as_millis() as i64).max(1))
    }
}

/// One deployment's client, and what the sidecar learned about the deployment.
pub struct Connection {
    pub(super) client: Client,
    pub(super) defaults: CommandDefaults,
    /// The monitor's last failure: the real cause behind a server selection timeout.
    heartbeat: Arc<Mutex<Option<String>>>,
    /// A replica set or sharded cluster with sessions: writes carry a transaction number and
    /// may be sent again once.
    pub(super) retryable_writes: AtomicBool,
    /// Commands the server refused `maxTimeMS` on (FerretDB, on distinct): sent without it.
    refuses_max_time: Mutex<Vec<String>>,
    pub(super) txn_number: AtomicI64,
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

    pub(super) fn classify(&self, err: &Error, write: bool, sent: bool) -> OpError {
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
        match kind(&op) {
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
                Ok(match kind(&op) {
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
        mut command: RawDocumentBuf,
        budget: Budget,
    ) -> Result<Document, OpError> {
        let name = command_name(&command);
        if let Some(rc) = &self.defaults.read_concern {
            command.append("readConcern", rc.clone());
        }
        let mut retried = false;
        loop {
            let mut sent = command.clone();
            if !self.refuses_max_time(&name) {
                sent.append("maxTimeMS", budget.max_time_ms()?);
            }
            let run = db
                .run_raw_command(sent)
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
        mut command: RawDocumentBuf,
        batch_size: Option<u32>,
        budget: Budget,
        retry: bool,
    ) -> Result<Cursor<RawDocumentBuf>, OpError> {
        if let Some(rc) = &self.defaults.read_concern {
            command.append("readConcern", rc.clone());
        }
        let mut retried = false;
        loop {
            let mut sent = command.clone();
            sent.append("maxTimeMS", budget.max_time_ms()?);
            let run = db
                .run_raw_cursor_command(sent)
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

fn command_name(command: &RawDocument) -> String {
    command
        .iter()
        .flatten()
        .next()
        .map(|(key, _)| key.to_owned())
        .unwrap_or_default()
}

pub(super) fn as_i64(value: &Bson) -> Option<i64> {
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
