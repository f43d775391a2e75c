//! How an operation can fail, in terms a client can act on. The HTTP side maps each to a status
//! and an error code; nothing here names the driver's own error types.

use std::time::Duration;

use bson::{Bson, Document, RawDocumentBuf};
use mongodb::error::{Error, ErrorKind};

use super::cause::describe;

/// Why an operation did not give its answer.
#[derive(Debug, Clone)]
pub enum OpError {
    /// The data source has not connected yet.
    Warming,
    /// The server cannot be reached; nothing was sent. `cause` says why.
    Unavailable {
        cause: String,
    },
    /// One connection failed during a read (after one retry): the server may well be there.
    ConnectionFailed {
        cause: String,
    },
    /// The time budget ran out before the operation could run, or during a read.
    TimedOut {
        limit: Duration,
    },
    /// A write that may or may not have been applied: nobody should retry it blindly.
    OutcomeUnknown(Unknown),
    /// The server answered with an error.
    Refused(Box<ServerError>),
    /// The write was applied, but not acknowledged at the requested write concern.
    WriteConcernFailed(Box<WriteConcernFailure>),
    /// A bulkWrite failed at `index`; `applied` counts what it did apply.
    Bulk(Box<BulkFailure>),
    /// The request cannot be sent as it is (too large for BSON, an argument the driver refuses).
    Invalid(String),
    /// The server's answer could not be read.
    Malformed,
    ShuttingDown,
    /// Anything else the driver reported; the log has the detail.
    Unexpected(String),
}

#[derive(Debug, Clone)]
pub enum Unknown {
    /// The deadline passed while the write was in flight.
    Deadline(Duration),
    /// The connection failed after the write was sent.
    ConnectionLost(String),
}

/// A server's error: its code, name and message, and for a write the key it collided on and
/// which of the documents failed.
#[derive(Debug, Clone, Default)]
pub struct ServerError {
    pub code: i32,
    pub code_name: String,
    pub message: String,
    pub key_value: Option<Bson>,
    pub failed_indexes: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct WriteConcernFailure {
    pub error: ServerError,
    /// The write's own answer, as it would have been.
    pub result: RawDocumentBuf,
}

#[derive(Debug, Clone)]
pub struct BulkFailure {
    pub index: usize,
    pub failed_indexes: Vec<usize>,
    /// The counts of what was applied, as a bulkWrite answer.
    pub applied: RawDocumentBuf,
    pub error: OpError,
}

/// MaxTimeMSExpired: the server stopped the operation at its `maxTimeMS`.
pub const MAX_TIME_EXPIRED: i32 = 50;

impl ServerError {
    /// From a `writeErrors` or `writeConcernError` entry of a write's reply.
    pub fn from_reply(entry: &Document) -> Self {
        let code = entry.get("code").and_then(Bson::as_i32).unwrap_or_default();
        Self {
            code,
            code_name: entry.get_str("codeName").unwrap_or_default().to_owned(),
            message: entry.get_str("errmsg").unwrap_or_default().to_owned(),
            key_value: entry.get("keyValue").cloned().or_else(|| {
                entry
                    .get_document("errInfo")
                    .ok()
                    .and_then(|info| info.get("keyValue").cloned())
            }),
            failed_indexes: Vec::new(),
        }
    }
}

/// What happened to the data source, as an operation's error shows it.
pub enum SourceVerdict {
    /// The server answered: it is there.
    Answered,
    /// It cannot be reached at all: requests should fail fast until it is back.
    Unreachable(String),
    /// Nothing to conclude (one connection failed, the budget ran out).
    Unknown,
}

impl OpError {
    pub fn verdict(&self) -> SourceVerdict {
        match self {
            OpError::Refused(_) | OpError::WriteConcernFailed(_) => SourceVerdict::Answered,
            OpError::Bulk(failure) => failure.error.verdict(),
            OpError::Unavailable { cause } => SourceVerdict::Unreachable(cause.clone()),
            _ => SourceVerdict::Unknown,
        }
    }
}

/// Classifies a driver error. `sent`: the command had its connection (for a write: it may have
/// reached the server). `heartbeat`: the monitor's last failure, the real cause of a server
/// selection timeout.
pub fn classify(err: &Error, write: bool, sent: bool, heartbeat: Option<String>) -> OpError {
    match err.kind.as_ref() {
        ErrorKind::Command(e) => OpError::Refused(Box::new(ServerError {
            code: e.code,
            code_name: e.code_name.clone(),
            message: e.message.clone(),
            ..ServerError::default()
        })),
        ErrorKind::ServerSelection { .. } => OpError::Unavailable {
            cause: heartbeat.unwrap_or_else(|| describe(err, None)),
        },
        ErrorKind::Authentication { .. } | ErrorKind::DnsResolve { .. } => OpError::Unavailable {
            cause: describe(err, None),
        },
        ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => {
            let cause = describe(err, None);
            if write && sent {
                OpError::OutcomeUnknown(Unknown::ConnectionLost(cause))
            } else if write {
                // The write never had its connection: it was not sent.
                OpError::Unavailable { cause }
            } else {
                OpError::ConnectionFailed { cause }
            }
        }
        ErrorKind::InvalidArgument { message, .. } => {
            OpError::Invalid(crate::redact::scrub(message))
        }
        ErrorKind::BsonSerialization(_) => OpError::Invalid(
            "the request cannot be encoded as BSON (too large, or a key MongoDB does not accept)"
                .to_owned(),
        ),
        ErrorKind::BsonDeserialization(_) | ErrorKind::InvalidResponse { .. } => OpError::Malformed,
        ErrorKind::Shutdown => OpError::ShuttingDown,
        _ => OpError::Unexpected(describe(err, None)),
    }
}

/// Whether a read that failed this way may be sent once more: a network error, or a server
/// saying it is not the primary, is shutting down or is overloaded. (The retryable reads
/// specification's list.)
pub fn read_retryable(err: &Error) -> bool {
    match err.kind.as_ref() {
        ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => true,
        ErrorKind::Command(e) => RETRYABLE_CODES.contains(&e.code),
        _ => err.contains_label("RetryableError"),
    }
}

/// Whether a write that failed this way may be sent again with the same transaction number (the
/// server then applies it at most once).
pub fn write_retryable(err: &Error) -> bool {
    err.contains_label("RetryableWriteError")
        || matches!(
            err.kind.as_ref(),
            ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. }
        )
        || matches!(err.kind.as_ref(), ErrorKind::Command(e) if RETRYABLE_CODES.contains(&e.code))
}

/// Not primary, shutting down, host unreachable, network timeout, and their kin.
const RETRYABLE_CODES: &[i32] = &[
    6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13388, 13435, 13436,
];

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn a_network_error_on_a_write_that_had_its_connection_leaves_the_outcome_unknown() {
        let err = Error::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(matches!(
            classify(&err, true, true, None),
            OpError::OutcomeUnknown(Unknown::ConnectionLost(_))
        ));
        assert!(matches!(
            classify(&err, true, false, None),
            OpError::Unavailable { .. }
        ));
        assert!(matches!(
            classify(&err, false, true, None),
            OpError::ConnectionFailed { .. }
        ));
        assert!(read_retryable(&err) && write_retryable(&err));
    }

    #[test]
    fn a_reply_entry_keeps_the_servers_code_name_and_key() {
        let entry =
            doc! {"index": 0, "code": 11000, "errmsg": "E11000 dup", "keyValue": {"sku": "A"}};
        let e = ServerError::from_reply(&entry);
        assert_eq!((e.code, e.message.as_str()), (11000, "E11000 dup"));
        assert_eq!(e.key_value, Some(Bson::Document(doc! {"sku": "A"})));
    }
}
