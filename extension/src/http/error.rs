//! The one error type at the HTTP edge. Every failure a client can see becomes an [`ApiError`]
//! and leaves as the Data API's body, `{"error": "...", "error_code": "..."}`, with a status a
//! client can act on. 5xx bodies never carry internals; every message is scrubbed of secrets.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mongodb::bson::{Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use serde_json::{Map, Value, json};

use crate::mongo::{DataSource, NotReady, UnknownDataSource};
use crate::redact::scrub;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_code: &'static str,
    pub message: String,
    /// Seconds, for 503s a client may retry.
    pub retry_after: Option<u32>,
    /// More fields for the body: a MongoDB error's `code` and `codeName`, or what a partly
    /// applied write did apply.
    /// Boxed: most errors have none, and errors travel in every `Result` of the request path.
    pub extra: Option<Box<Map<String, Value>>>,
}

impl ApiError {
    pub fn new(status: StatusCode, error_code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error_code,
            message: message.into(),
            retry_after: None,
            extra: None,
        }
    }

    /// 400: the request is invalid; the message says which field and why.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidParameter", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    pub fn unavailable(error_code: &'static str, message: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, error_code, message);
        err.retry_after = Some(1);
        err
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "OperationTimedOut", message)
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra
            .get_or_insert_with(Box::default)
            .insert(key.to_owned(), value);
        self
    }

    /// Maps a driver error. Errors that mean the server cannot be reached mark the data
    /// source unavailable, so the next requests fail fast while it recovers.
    pub fn from_mongo(err: &mongodb::error::Error, source: &DataSource) -> Self {
        match err.kind.as_ref() {
            ErrorKind::Command(e) => Self::from_server(e.code, &e.code_name, &e.message, None),
            ErrorKind::Write(WriteFailure::WriteError(e)) => Self::from_server(
                e.code,
                e.code_name.as_deref().unwrap_or(""),
                &e.message,
                e.details.as_ref(),
            ),
            ErrorKind::Write(WriteFailure::WriteConcernError(e)) => {
                Self::from_server(e.code, &e.code_name, &e.message, None)
            }
            ErrorKind::InsertMany(e) => {
                let errors = e.write_errors.as_deref().unwrap_or_default();
                let api = match (errors.first(), &e.write_concern_error) {
                    (Some(w), _) => Self::from_server(
                        w.code,
                        w.code_name.as_deref().unwrap_or(""),
                        &w.message,
                        w.details.as_ref(),
                    ),
                    (None, Some(wc)) => {
                        Self::from_server(wc.code, &wc.code_name, &wc.message, None)
                    }
                    (None, None) => Self::invalid("the insert failed"),
                };
                // Which documents were not inserted; with ordered inserts, none after the
                // first of these was attempted.
                let failed: Vec<usize> = errors.iter().map(|w| w.index).collect();
                api.with("failedIndexes", json!(failed))
            }
            ErrorKind::ServerSelection { .. } => {
                let message = "the database is unavailable: no server answered within the server selection timeout";
                source.mark_unavailable("no server answered within the server selection timeout");
                Self::unavailable("DatabaseUnavailable", message)
            }
            // One connection failed, not necessarily the server: the driver has already
            // discarded it, so only this request fails. (FerretDB, for one, drops the
            // connection on a BSON type it does not support.)
            ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. } => Self::unavailable(
                "DatabaseUnavailable",
                "the database connection failed during the operation",
            ),
            ErrorKind::Authentication { .. } => Self::unavailable(
                "DatabaseUnavailable",
                "the sidecar could not authenticate to the database; check the connection string's credentials",
            ),
            ErrorKind::InvalidArgument { message, .. } => Self::invalid(scrub(message)),
            ErrorKind::BsonSerialization(_) => Self::invalid(
                "the request cannot be encoded as BSON (too large, or a key MongoDB does not accept)",
            ),
            ErrorKind::Shutdown => {
                Self::unavailable("ShuttingDown", "the sidecar is shutting down")
            }
            _ => {
                tracing::error!(error = %scrub(&err.to_string()), "unexpected driver error");
                Self::new(
                    StatusCode::BAD_GATEWAY,
                    "DatabaseError",
                    "the database driver reported an unexpected error; see the sidecar's log",
                )
            }
        }
    }

    /// Maps a MongoDB server error, keeping its numeric code and codeName. A duplicate key
    /// error names the key when the server reports it (`keyValue` in the error's details).
    pub fn from_server(
        code: i32,
        code_name: &str,
        message: &str,
        details: Option<&Document>,
    ) -> Self {
        let message = scrub(message);
        let code_name = if code_name.is_empty() {
            known_code_name(code)
        } else {
            code_name
        };
        let (status, error_code) = match code {
            11000 | 11001 => (StatusCode::CONFLICT, "DuplicateKey"),
            50 | 262 => (StatusCode::GATEWAY_TIMEOUT, "OperationTimedOut"),
            13 => (StatusCode::FORBIDDEN, "Unauthorized"),
            18 => (StatusCode::SERVICE_UNAVAILABLE, "DatabaseUnavailable"),
            // Not primary, shutting down, host unreachable, network timeout: retry later.
            6 | 7 | 89 | 91 | 189 | 10107 | 11600 | 11602 | 13435 | 13436 => {
                (StatusCode::SERVICE_UNAVAILABLE, "DatabaseUnavailable")
            }
            _ => (StatusCode::BAD_REQUEST, "MongoError"),
        };
        let key_value = details
            .and_then(|d| d.get_document("keyValue").ok())
            .map(|kv| Bson::Document(kv.clone()).into_relaxed_extjson());
        let message = match (error_code, &key_value) {
            ("DuplicateKey", Some(kv)) => format!("duplicate key {kv}: {message}"),
            ("DuplicateKey", None) => format!("duplicate key: {message}"),
            _ => message,
        };
        let mut err = Self::new(status, error_code, message)
            .with("code", json!(code))
            .with("codeName", json!(code_name));
        if let Some(kv) = key_value {
            err = err.with("keyValue", kv);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            err.retry_after = Some(1);
        }
        err
    }
}

/// Whether the server answered (with an error): proof that it is there.
pub fn server_answered(err: &mongodb::error::Error) -> bool {
    matches!(
        err.kind.as_ref(),
        ErrorKind::Command(_) | ErrorKind::Write(_) | ErrorKind::InsertMany(_)
    ) || err
        .get_custom::<super::actions::BulkWriteFailure>()
        .is_some()
}

/// Names for the codes a server may send without one.
fn known_code_name(code: i32) -> &'static str {
    match code {
        11000 => "DuplicateKey",
        50 => "MaxTimeMSExpired",
        121 => "DocumentValidationFailure",
        13 => "Unauthorized",
        2 => "BadValue",
        9 => "FailedToParse",
        14 => "TypeMismatch",
        _ => "",
    }
}

impl From<NotReady> for ApiError {
    fn from(err: NotReady) -> Self {
        match err {
            NotReady::Warming => Self::unavailable("Warming", err.to_string()),
            NotReady::Unavailable(_) => {
                Self::unavailable("DatabaseUnavailable", scrub(&err.to_string()))
            }
        }
    }
}

impl From<UnknownDataSource> for ApiError {
    fn from(err: UnknownDataSource) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "DataSourceNotFound",
            err.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.message));
        body.insert("error_code".into(), Value::String(self.error_code.into()));
        if let Some(extra) = self.extra {
            body.extend(*extra);
        }
        let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
        let mut response = (self.status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
