//! Writes: each sent with a transaction number where the server can tell a repeat (so it may be
//! sent once more after a retryable failure), with the outcome said plainly when it cannot be
//! known, and the reply read into the Data API's answer; bulkWrite's operations in turn, with
//! the counts of what was applied.

use std::sync::atomic::Ordering;

use bson::{Bson, Document, RawDocument, RawDocumentBuf, doc};
use mongodb::Database;
use tracing::debug;

use super::error::{
    BulkFailure, MAX_TIME_EXPIRED, OpError, ServerError, Unknown, WriteConcernFailure,
    write_retryable,
};
use super::ops::{self, Action, Operation, Payload, count_bson, raw};
use super::run::{Budget, Connection, Outcome, as_i64};
use super::trace;

impl Connection {
    /// A write command. On a replica set it carries a transaction number, so that after a
    /// retryable failure it can be sent once more and applied at most once. Anything that leaves
    /// the outcome open (the deadline passing with the write in flight, a connection lost after
    /// it was sent) says so.
    pub(super) async fn send_write(
        &self,
        db: &Database,
        mut command: RawDocumentBuf,
        budget: Budget,
        many: bool,
    ) -> Result<Document, OpError> {
        if let Some(wc) = &self.defaults.write_concern {
            command.append("writeConcern", wc.clone());
        }
        // Multi-document updates and deletes are not retryable writes.
        let retryable = self.retryable_writes.load(Ordering::Relaxed) && !many;
        let mut session = None;
        if retryable {
            command.append("txnNumber", self.txn_number.fetch_add(1, Ordering::Relaxed));
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
            sent.append(
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
            let mut run = db.run_raw_command(sent);
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
    pub(super) async fn write(
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
    pub(super) async fn bulk(
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
}

/// What one write did, as its answer and as counts for a bulkWrite.
pub(super) struct Written {
    pub(super) answer: Document,
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
                doc! {"insertedId": id_of(d)}
            }
            (Action::InsertMany, Payload::Documents(ds)) => {
                written.inserted = n;
                let ids: Vec<Bson> = ds.iter().map(|d| id_of(d)).collect();
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

/// An inserted document's `_id` (the decoder gave every one an id).
fn id_of(document: &RawDocument) -> Bson {
    document
        .get("_id")
        .ok()
        .flatten()
        .and_then(|id| Bson::try_from(id.to_raw_bson()).ok())
        .unwrap_or(Bson::Null)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mongo::ops::{Options, Update};
    use bson::rawdoc;

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
                Payload::Update(Update::Operators(rawdoc! {"$set": {"a": 1}})),
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
                Payload::Document(rawdoc! {"_id": 3, "a": 1}),
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
            Payload::Update(Update::Operators(rawdoc! {"$set": {"a": 1}})),
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
