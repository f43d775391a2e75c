//! The one error type at the HTTP edge. Every failure a client can see becomes an [`ApiError`]
//! and leaves as the Data API's body, `{"error": "...", "error_code": "..."}`, with a status a
//! client can act on. 5xx bodies never carry internals; every message is scrubbed of secrets.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bson::RawDocumentBuf;
use serde_json::{Map, Value, json};

use crate::metrics::ErrorClass;
use crate::mongo::UnknownDataSource;
use crate::mongo::error::{
    BulkFailure, MAX_TIME_EXPIRED, OpError, ServerError, Unknown, WriteConcernFailure,
};
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
    /// The metrics' class, where the code alone does not tell (see [`ApiError::class`]).
    class: Option<ErrorClass>,
}

impl ApiError {
    pub fn new(status: StatusCode, error_code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error_code,
            message: message.into(),
            retry_after: None,
            extra: None,
            class: None,
        }
    }

    /// Sets the metrics' class (a missing token is an `InvalidParameter`, but an auth error).
    pub fn classed(mut self, class: ErrorClass) -> Self {
        self.class = Some(class);
        self
    }

    /// The class the metrics count this error in.
    pub fn class(&self) -> ErrorClass {
        if let Some(class) = self.class {
            return class;
        }
        match self.error_code {
            "InvalidSession" | "Unauthorized" => ErrorClass::Auth,
            "Forbidden" => ErrorClass::Policy,
            "Overloaded" => ErrorClass::Overload,
            "OperationTimedOut" | "RequestTimeout" => ErrorClass::Timeout,
            "WriteOutcomeUnknown" if self.status == StatusCode::GATEWAY_TIMEOUT => {
                ErrorClass::Timeout
            }
            _ if self.status.is_server_error() => ErrorClass::Database,
            _ => ErrorClass::Client,
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

    /// Maps a MongoDB server error, keeping its numeric code and codeName. A duplicate key
    /// error names the key when the server reports it (`keyValue`).
    fn from_server(e: &ServerError) -> Self {
        let message = scrub(&e.message);
        let code_name = if e.code_name.is_empty() {
            known_code_name(e.code)
        } else {
            e.code_name.as_str()
        };
        let (status, error_code) = match e.code {
            11000 | 11001 => (StatusCode::CONFLICT, "DuplicateKey"),
            MAX_TIME_EXPIRED | 262 => (StatusCode::GATEWAY_TIMEOUT, "OperationTimedOut"),
            13 => (StatusCode::FORBIDDEN, "Unauthorized"),
            18 => (StatusCode::SERVICE_UNAVAILABLE, "DatabaseUnavailable"),
            // Not primary, shutting down, host unreachable, network timeout: retry later.
            6 | 7 | 89 | 91 | 189 | 10107 | 11600 | 11602 | 13435 | 13436 => {
                (StatusCode::SERVICE_UNAVAILABLE, "DatabaseUnavailable")
            }
            _ => (StatusCode::BAD_REQUEST, "MongoError"),
        };
        let key_value = e.key_value.clone().map(|kv| kv.into_relaxed_extjson());
        let message = match (error_code, &key_value) {
            ("DuplicateKey", Some(kv)) => format!("duplicate key {kv}: {message}"),
            ("DuplicateKey", None) => format!("duplicate key: {message}"),
            _ => message,
        };
        let mut err = Self::new(status, error_code, message)
            .with("code", json!(e.code))
            .with("codeName", json!(code_name));
        if let Some(kv) = key_value {
            err = err.with("keyValue", kv);
        }
        if !e.failed_indexes.is_empty() {
            err = err.with("failedIndexes", json!(e.failed_indexes));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            err.retry_after = Some(1);
        }
        err
    }

    /// A write that may or may not have been applied: its own code, no Retry-After.
    fn outcome_unknown(why: &Unknown) -> Self {
        let (status, reason) = match why {
            Unknown::Deadline(limit) => (
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the write was still in flight when its time limit of {} ms ran out",
                    limit.as_millis()
                ),
            ),
            Unknown::ConnectionLost(cause) => (
                StatusCode::BAD_GATEWAY,
                format!("the database connection failed after the write was sent ({cause})"),
            ),
        };
        Self::new(
            status,
            "WriteOutcomeUnknown",
            format!("{reason}: it may or may not have been applied; check before retrying it"),
        )
        .with("outcome", json!("unknown"))
    }
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
        64 => "WriteConcernFailed",
        _ => "",
    }
}

impl From<OpError> for ApiError {
    fn from(err: OpError) -> Self {
        match err {
            OpError::Warming => {
                Self::unavailable("Warming", "the database connection is still warming up")
            }
            OpError::Unavailable { cause } => Self::unavailable(
                "DatabaseUnavailable",
                format!("the database is unavailable: {}", scrub(&cause)),
            ),
            OpError::ConnectionFailed { cause } => Self::unavailable(
                "DatabaseUnavailable",
                format!(
                    "the database connection failed during the operation: {}",
                    scrub(&cause)
                ),
            ),
            OpError::TimedOut { limit } => Self::timeout(format!(
                "the operation exceeded its time limit of {} ms",
                limit.as_millis()
            )),
            OpError::OutcomeUnknown(why) => Self::outcome_unknown(&why),
            OpError::Refused(e) => Self::from_server(&e),
            OpError::WriteConcernFailed(failure) => {
                let WriteConcernFailure { error, result } = *failure;
                let mut api = Self::from_server(&error);
                api.status = StatusCode::BAD_GATEWAY;
                api.error_code = "WriteConcernFailed";
                api.retry_after = None;
                api.message = format!(
                    "the write was applied, but not acknowledged at the requested write concern: {}",
                    api.message
                );
                api.with("outcome", json!("applied"))
                    .with("result", raw_to_json(&result))
            }
            OpError::Bulk(failure) => {
                let BulkFailure {
                    index,
                    failed_indexes,
                    applied,
                    error,
                } = *failure;
                let mut api = Self::from(error);
                api.message = format!(
                    "operation {index} of the bulk write failed: {}",
                    api.message
                );
                api.with("failedIndex", json!(index))
                    .with("applied", raw_to_json(&applied))
                    .with("details", json!({"failedIndexes": failed_indexes}))
            }
            OpError::Invalid(message) => Self::invalid(scrub(&message)),
            OpError::Malformed => Self::new(
                StatusCode::BAD_GATEWAY,
                "DatabaseError",
                "the database sent a document the sidecar could not read",
            ),
            OpError::ShuttingDown => {
                Self::unavailable("ShuttingDown", "the sidecar is shutting down")
            }
            OpError::Unexpected(detail) => {
                tracing::error!(target: "mongo_sidecar::mongo", error = %scrub(&detail), "unexpected driver error");
                Self::new(
                    StatusCode::BAD_GATEWAY,
                    "DatabaseError",
                    "the database driver reported an unexpected error; see the sidecar's log",
                )
            }
        }
    }
}

/// A raw document as plain JSON, for an error body's extra fields.
fn raw_to_json(raw: &RawDocumentBuf) -> Value {
    let mut out = Vec::new();
    if crate::ejson::write_document(&mut out, raw, crate::ejson::OutputMode::Json).is_err() {
        return Value::Null;
    }
    serde_json::from_slice(&out).unwrap_or(Value::Null)
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
